"""Run one comparison end to end: `python experiments/run.py experiments/configs/emoji32_cpu.yaml`."""

import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.checkpoint import CheckpointError  # noqa: E402
from cstylegan.cli import Command  # noqa: E402
from cstylegan.config import ConfigError  # noqa: E402
from cstylegan.data import DatasetError  # noqa: E402
from cstylegan.devices import pick_device  # noqa: E402
from cstylegan.metrics.errors import MetricError  # noqa: E402
from experiments.matrix import run_matrix  # noqa: E402
from experiments.report import write_report  # noqa: E402
from experiments.spec import SpecError, load_spec  # noqa: E402
from experiments.trainings import RunnerError  # noqa: E402

ERRORS = (SpecError, RunnerError, DatasetError, CheckpointError, ConfigError, MetricError)


@click.command(cls=Command)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Run folders, per-class data, runs.json, evaluations.json.  [default: training-runs/experiments/NAME]")
@click.option("--results", type=click.Path(file_okay=False),
              help="Where the tables and pictures go.  [default: experiments/results/NAME]")
@click.option("--device", type=str, help="Override the config's device: cpu, cuda, auto.")
def main(config, workdir, results, device):
    """Train and measure every method of a comparison config, then write its report.

    \b
    Methods: per-style transfer (a base model, one fine-tune per class), transfer + layer
    swap at each split resolution, and each conditional model (StyleGAN2, StyleGAN3).
    Every method is measured with the same metrics, seeds and sample counts.
    Resumable: run the same command again after a crash or kill; finished trainings and
    measurements are kept in the work folder and skipped.

    \b
    Example:
      python datasets/emoji.py --out all_styles32.zip --resolution 32
      python experiments/run.py experiments/configs/emoji32_cpu.yaml
    """
    started = time.time()
    try:
        spec = load_spec(config)
        if device:
            spec.device = device
        name = spec.name
        workdir = Path(workdir or Path("training-runs") / "experiments" / name)
        results = Path(results or Path(__file__).resolve().parent / "results" / name)

        def say(line: str) -> None:
            click.echo(f"[{name} {time.strftime('%H:%M:%S')}] {line}", err=False)

        say(f"methods: {', '.join(spec.method_names())}; work folder {workdir}")
        methods, dataset = run_matrix(spec, workdir, say)
        seconds = {"training (all methods, this and earlier invocations)": sum(
            {run["run_dir"]: run["wall_s"] for m in methods for run in m.runs}.values()),
            "this invocation (training + metrics + report)": time.time() - started}
        write_report(spec, Path(config), methods, dataset.class_names, pick_device(spec.device), seconds, results, say)
    except ERRORS as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

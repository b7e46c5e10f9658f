"""Run a comparison unit by unit: `python experiments/run.py experiments/configs/emoji32_cpu.yaml --only cond_sg2`."""

import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.runtime.cli import Command, FiniteFloat, bool_option  # noqa: E402
from cstylegan.runtime.devices import pick_device  # noqa: E402
from experiments.matrix import conditional_config, final_fakes_per_class, open_data, run_unit  # noqa: E402
from experiments.plan import estimate, plan_lines  # noqa: E402
from experiments.report import unit_status, write_summary, write_unit_outputs  # noqa: E402
from experiments.spec import SpecError, load_spec  # noqa: E402
from experiments.trainings import Workspace  # noqa: E402


def swap_source(spec) -> str:
    """The conditional model whose swap_grid.png is drawn: the first StyleGAN2 one, else the first."""
    names = [method.name for method in spec.conditional]
    stylegan2 = [name for name in names if not conditional_config(spec, name).cfg.startswith("stylegan3")]
    return (stylegan2 or names or [None])[0]


@click.command(cls=Command)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--only", help="Comma list of units to run start to finish (training, metrics, samples, rows): "
              "transfer (with its layer swaps) and/or conditional method names.  [default: every unit not done]")
@bool_option("--plan", default=False, help="Print each unit's kimg, the img/s measured on this machine, the expected "
              "hours and whether it is done; train nothing.")
@click.option("--max-hours", type=FiniteFloat(min=0, min_open=True),
              help="Refuse to start a unit that would run past this many hours from now (from the measured speeds).")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Run folders, per-class data, runs.json, evaluations.json.  [default: training-runs/experiments/NAME]")
@click.option("--results", type=click.Path(file_okay=False),
              help="Where the tables and pictures go.  [default: experiments/results/NAME]")
@click.option("--device", type=str, help="Override the config's device: cpu, cuda, auto.")
def main(config, only, plan, max_hours, workdir, results, device):
    """Train and measure the methods of a comparison config, unit by unit, and merge the results.

    \b
    Units: `transfer` (a base model, one fine-tune per class, and the layer-swapped blends)
    and each conditional model (StyleGAN2, StyleGAN3). Every method is measured with the
    same metrics, seeds and sample counts. A finished unit writes its rows, curve and
    samples to the results folder (methods/<method>.json, samples_<method>.png); the table,
    fid_curves.png and sg2_vs_sg3.md are then drawn again from every unit's files there, so
    units run in separate sittings, even on separate machines, merge into one table. Units
    whose results are there for this config are skipped. Kill-safe: run the same command
    again and an unfinished training continues from its newest snapshot.

    \b
    Example:
      python datasets/emoji.py --out portraits32.zip --resolution 32
      python experiments/run.py experiments/configs/emoji32_cpu.yaml --plan
      python experiments/run.py experiments/configs/emoji32_cpu.yaml --only cond_sg2 --max-hours 2.5
    """
    started = time.time()
    spec = load_spec(config)
    if device:
        spec.device = device
    workdir = Path(workdir or Path("training-runs") / "experiments" / spec.name)
    results = Path(results or Path(__file__).resolve().parent / "results" / spec.name)

    def say(line: str) -> None:
        click.echo(f"[{spec.name} {time.strftime('%H:%M:%S')}] {line}")

    units = spec.parse_units(only)
    dataset, workspace = open_data(spec), Workspace(workdir)
    if plan:
        click.echo("\n".join(plan_lines(spec, workspace, dataset, results, say)))
        return
    ran = False
    for unit in units:
        status = unit_status(spec, unit, results)
        if status == "done":
            say(f"{unit}: done, results in {results}/methods/ (delete them to run it again)")
            continue
        if max_hours:
            left = max_hours - (time.time() - started) / 3600
            expected = estimate(spec, unit, workspace, dataset, say)
            if expected["hours"] > left:
                raise SpecError(f"unit {unit} would take about {expected['hours']:.1f} h ({expected['kimg']:g} kimg "
                                f"at {expected['img_per_s']:.1f} img/s, then metrics) but --max-hours leaves "
                                f"{left:.1f} h; give it a longer slot or lower its kimg")
        say(f"{unit}: {status}; methods {', '.join(spec.units()[unit])}; work folder {workdir}")
        unit_start = time.time()
        methods = run_unit(spec, unit, workspace, dataset, say)
        write_unit_outputs(spec, methods, dataset.class_names, final_fakes_per_class(spec, dataset),
                           pick_device(spec.device), time.time() - unit_start, swap_source(spec), results)
        write_summary(spec, Path(config), results, say)
        ran = True
    if not ran:
        write_summary(spec, Path(config), results, say)


if __name__ == "__main__":
    main()

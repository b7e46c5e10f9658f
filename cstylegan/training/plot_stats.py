"""`python -m cstylegan.training.plot_stats RUN_DIR`: a run's losses, ADA p and metrics
against kimg in one PNG, for a machine without TensorBoard (reads stats.jsonl in either
format and every metric-*.jsonl beside it)."""

from pathlib import Path

import click

from cstylegan.metrics.report import read_metric_jsonl
from cstylegan.runtime.cli import Command
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import refuse_overwriting_inputs
from cstylegan.training.progress import read_stats

PANELS = [
    ("losses", ["Loss/G/loss", "Loss/D/loss"]),
    ("regularisation", ["Loss/r1_penalty", "Loss/pl_penalty", "Loss/G/ds"]),
    ("augmentation", ["Progress/augment", "Progress/ada_rt"]),
]
# Metric results drawn as curves: the one number of each metric (per-class values would crowd the panel).
HEADLINE_KEYS = ("fid", "kid", "fid_per_class_mean", "kid_per_class_mean", "class_acc_mean", "precision", "recall",
                 "fid50k_full", "kid50k_full", "fid50k", "kid50k", "pr50k3_full_precision", "pr50k3_full_recall")


def metric_curves(run_dir: Path) -> dict:
    """{result key: [(kimg, value), ...]} of the headline keys in every metric-*.jsonl of the run."""
    curves = {}
    for path in sorted(run_dir.glob("metric-*.jsonl")):
        for line in read_metric_jsonl(path):
            for key, value in line["results"].items():
                if key in HEADLINE_KEYS and line.get("kimg") is not None:
                    curves.setdefault(key, []).append((line["kimg"], value))
    return {key: sorted(points) for key, points in curves.items()}


def check_out(run_dir: Path, out: Path) -> None:
    """Before reading: --out is none of the files it reads, and a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    inputs = {str(path): path for path in [run_dir / "stats.jsonl", *sorted(run_dir.glob("metric-*.jsonl"))]}
    refuse_overwriting_inputs({"--out": out}, inputs)
    if out.suffix.lower().lstrip(".") not in FigureCanvasBase.get_supported_filetypes():
        raise UserError(f"--out {out}: {out.suffix or 'no suffix'} is not a format matplotlib writes; end the name "
                        "in .png (or .pdf, .svg, .jpg)")


def plot_stats(run_dir, out=None) -> Path:
    run_dir = Path(run_dir)
    path = Path(out) if out else run_dir / "stats.png"
    check_out(run_dir, path)
    records = read_stats(run_dir / "stats.jsonl")
    if not records:
        raise UserError(f"{run_dir} has no stats.jsonl with a finished tick; give a run folder of train.py")
    from matplotlib.figure import Figure  # here: matplotlib adds half a second to start-up

    metrics = metric_curves(run_dir)
    panels = [(title, [k for k in keys if any(k in r for r in records)]) for title, keys in PANELS]
    panels = [(title, keys) for title, keys in panels if keys]
    figure = Figure(figsize=(6, 2.6 * (len(panels) + bool(metrics))))
    axes = figure.subplots(len(panels) + bool(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            points = [(r["Progress/kimg"], r[key]) for r in records if key in r]
            ax.plot(*zip(*points), label=key, linewidth=1.2)
        ax.set_title(title, fontsize=9)
    if metrics:
        for key, points in metrics.items():
            axes[-1].plot(*zip(*points), marker="o", markersize=3, label=key)
        axes[-1].set_title("metrics", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("kimg")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


@click.command(cls=Command)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write.  [default: RUN_DIR/stats.png]")
def main(run_dir, out):
    """Draw RUN_DIR's losses, ADA p and metrics against kimg into one PNG."""
    click.echo(f"Wrote {plot_stats(run_dir, out)}")


if __name__ == "__main__":
    main()

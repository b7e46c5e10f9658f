"""Metric results on disk and on screen: JSON lines per metric (as NVlabs' metric-*.jsonl),
a plain-text table, and fid.png (FID against kimg, one line per class)."""

import json
import math
import time
from pathlib import Path

from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.nvlabs_names import metric_of_key

# Result keys whose metric is not the part before the first "/".
METRIC_OF_KEY = {
    "precision": "pr",
    "recall": "pr",
    "kid_std": "kid",
    "fid_per_class_mean": "fid_per_class",
    "kid_per_class_std": "kid_per_class",
    "kid_per_class_mean": "kid_per_class",
    "class_acc_mean": "class_acc",
    "class_acc_real_heldout": "class_acc",
}


def group_by_metric(results: dict) -> dict:
    """{metric name: {key: value}}, e.g. fid_per_class/ghibli_male and fid_per_class_mean under
    fid_per_class, kid50k_full_std under kid50k_full."""
    groups = {}
    for key, value in results.items():
        prefix = key.split("/")[0]
        metric = metric_of_key(key) or METRIC_OF_KEY.get(prefix, prefix)
        groups.setdefault(metric, {})[key] = value
    return groups


def write_metric_jsonl(run_dir, results: dict, kimg, snapshot_name: str, out=None, settings=None,
                       num_gpus: int = 1) -> list:
    """Append one line per metric to run_dir/metric-<name>.jsonl (or every line to `out`); returns the files.

    A line: {"metric", "results", "kimg", "snapshot", "timestamp", "settings"}; `settings` holds
    what the numbers depend on (num_gen, seed, ...), so lines made differently can be told apart.
    NVlabs' fields too, for their tools: "total_time" (seconds, from `results.seconds` when
    it has them), "total_time_str", "num_gpus" (processes) and "snapshot_pkl".
    """
    written = []
    seconds = getattr(results, "seconds", {})
    for metric, values in group_by_metric(results).items():
        path = Path(out) if out is not None else Path(run_dir) / f"metric-{metric}.jsonl"
        total_time = seconds.get(metric)
        line = {"metric": metric, "results": values, "kimg": kimg, "snapshot": snapshot_name,
                "timestamp": time.time(), "settings": settings or {}, "total_time": total_time,
                "total_time_str": None if total_time is None else nvlabs_time_str(total_time),
                "num_gpus": num_gpus, "snapshot_pkl": snapshot_name}
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as file:
            file.write(json.dumps(line) + "\n")
        if path not in written:
            written.append(path)
    return written


def read_metric_jsonl(path) -> list:
    """Every line of a metric-*.jsonl file, [] when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_fid(run_dir) -> Path:
    """run_dir/fid.png: FID against kimg, one line per class, the per-class mean and the overall FID."""
    run_dir = Path(run_dir)
    curves = {}
    for name in ("fid", "fid_per_class"):
        for line in read_metric_jsonl(run_dir / f"metric-{name}.jsonl"):
            for key, value in line["results"].items():
                curves.setdefault(key, []).append((line["kimg"], value))
    if not curves:
        raise MetricError(f"no metric-fid.jsonl or metric-fid_per_class.jsonl in {run_dir}; compute fid or fid_per_class first")
    from matplotlib.figure import Figure  # here: matplotlib adds half a second to every command's start-up

    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for key, points in sorted(curves.items(), key=lambda item: item[0] in ("fid", "fid_per_class_mean")):
        points.sort()
        label = key.removeprefix("fid_per_class/")
        overall = key in ("fid", "fid_per_class_mean")
        axes.plot(*zip(*points), marker="o", markersize=3, label=label,
                  linewidth=2.5 if overall else 1.2, color="black" if key == "fid" else None,
                  linestyle="--" if key == "fid_per_class_mean" else "-")
    axes.set_xlabel("kimg")
    axes.set_ylabel("FID")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = run_dir / "fid.png"
    figure.savefig(path, dpi=100)
    return path


def nvlabs_time_str(seconds: float) -> str:
    """NVlabs' time format (their total_time_str): 45s, 3m 20s, 2h 05m, 1d 03h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    return f"{s // 86400}d {s // 3600 % 24:02d}h"


def format_table(results: dict) -> str:
    """Two aligned columns, metric key and value."""
    width = max(len(key) for key in results)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for key, value in results.items():
        text = "nan" if math.isnan(value) else f"{value:.5g}"
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)

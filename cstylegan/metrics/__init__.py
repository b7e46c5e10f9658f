"""Metrics of a generator against its data: FID, KID, per-class FID, precision/recall and
class consistency, on TF-Inception features read from disk (never downloaded).

    from cstylegan.metrics import compute_metrics
    results = compute_metrics(G, dataset, ["fid", "fid_per_class"], num_gen=10000)

See docs/metrics.md; the command line is `python -m cstylegan.metrics --help`.
"""

from cstylegan.metrics.compute import METRICS, compare_folders, compute_metrics
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.report import plot_fid, write_metric_jsonl

__all__ = ["METRICS", "MetricError", "compare_folders", "compute_metrics", "plot_fid", "write_metric_jsonl"]

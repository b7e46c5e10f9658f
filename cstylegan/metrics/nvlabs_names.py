"""NVlabs' metric names, as our metrics with their sample counts and their Inception resize.

`fid50k_full` is our `fid` with 50,000 fakes against every real image, features made the way
NVlabs' Inception file makes them (inception.py, recipe "nvlabs"), so that the number can be
set beside a published one. Their result keys are kept too (`pr50k3_full_precision`, ...).
As theirs, the non-`_full` names take x-flipped reals when the data set is mirrored
(`mirror=True`). Two differences remain, both stated in docs/metrics.md: precision/recall
uses Inception features where NVlabs use VGG16 (whose weights no installable package
ships), and the non-`_full` names ignore the training set's --subset.
"""

from dataclasses import dataclass
from typing import Optional

NO_METRICS = "none"  # NVlabs' --metrics=none


@dataclass(frozen=True)
class NvlabsMetric:
    metric: str  # ours: fid, kid, pr, eqt_int, eqt_frac, eqr, ppl_w_inception or ppl_z_inception
    num_gen: int  # fakes
    max_reals: Optional[int]  # the first this many real images of the data; None: all
    mirrored: bool = False  # NVlabs take the training set's options: x-flipped reals with --mirror


NVLABS_METRICS = {
    "fid50k_full": NvlabsMetric("fid", 50_000, None),
    "kid50k_full": NvlabsMetric("kid", 50_000, 1_000_000),
    "pr50k3_full": NvlabsMetric("pr", 50_000, 200_000),
    "fid50k": NvlabsMetric("fid", 50_000, 50_000, mirrored=True),
    "kid50k": NvlabsMetric("kid", 50_000, 50_000, mirrored=True),
    "eqt50k_int": NvlabsMetric("eqt_int", 50_000, None),
    "eqt50k_frac": NvlabsMetric("eqt_frac", 50_000, None),
    "eqr50k": NvlabsMetric("eqr", 50_000, None),
    "ppl2_wend_inception": NvlabsMetric("ppl_w_inception", 50_000, None),  # not their ppl2_wend: path_length.py
    "ppl_zend_inception": NvlabsMetric("ppl_z_inception", 50_000, None),
}
NVLABS_RECIPE = "nvlabs"  # the Inception resize every NVlabs name uses

# Our result keys -> the suffix NVlabs' key adds to the metric's name ("" = the name itself).
KEY_SUFFIXES = {"fid": "", "kid": "", "kid_std": "_std", "precision": "_precision", "recall": "_recall", "eqt_int": "",
                "eqt_frac": "", "eqr": "", "ppl_w_inception": "", "ppl_z_inception": ""}


def with_nvlabs_keys(name: str, results: dict) -> dict:
    """Our results of NVLABS_METRICS[name] under NVlabs' keys: fid -> fid50k_full, precision -> pr50k3_full_precision."""
    return {name + KEY_SUFFIXES[key]: value for key, value in results.items()}


def metric_of_key(key: str) -> Optional[str]:
    """The NVlabs name a result key belongs to (kid50k_full_std -> kid50k_full), else None."""
    for name in NVLABS_METRICS:
        if key == name or (key.startswith(name + "_") and key.removeprefix(name) in KEY_SUFFIXES.values()):
            return name
    return None

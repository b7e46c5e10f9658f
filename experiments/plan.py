"""How long each unit of a comparison will take on this machine, from measured speeds.

Training speed is measured by running the unit's own training for three short ticks
(train.py, the real loop with augmentation and data loading) and reading the last tick's
img/s; metric speed by timing Inception (with its clean resize) on real-sized images. Both
are kept in <workdir>/speeds.json for the machine and settings they were measured with.
"""

import datetime
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from cstylegan.config import save_yaml
from cstylegan.metrics.inception import extract_features, load_inception
from cstylegan.runtime.devices import pick_device
from cstylegan.training.progress import read_stats
from experiments.matrix import speed_config, unit_kimg
from experiments.report import plain, unit_status
from experiments.trainings import REPO, RunnerError

MEASURED_TICKS = 3  # the last one is timed: the first holds start-up and warm-up
INCEPTION_BATCH = 16


def machine() -> str:
    return f"{platform.node()} {platform.processor() or platform.machine()} {torch.get_num_threads()} threads"


def _cached(workspace, key: str, settings: dict, measure) -> float:
    speeds = workspace.read_json("speeds.json", {})
    entry = speeds.get(key)
    settings = plain({**settings, "machine": machine()})
    if entry is None or entry["settings"] != settings:
        entry = {"settings": settings, "img_per_s": measure()}
        speeds[key] = entry
        workspace.write_json("speeds.json", speeds)
    return entry["img_per_s"]


def training_img_per_s(workspace, key: str, config, say) -> float:
    """img/s of this training config on this machine: three ticks of four minibatches, the last one timed."""
    def measure():
        outdir = workspace.root / "speed" / key
        shutil.rmtree(outdir, ignore_errors=True)
        batch = config.batch or 32
        tick = 4 * batch / 1000
        probe = replace(config, outdir=str(outdir), kimg=MEASURED_TICKS * tick, tick=tick, snap=10**6, metrics=[],
                        resume=None, nkimg=0)
        outdir.mkdir(parents=True)
        save_yaml(probe, outdir / "probe.yaml")
        say(f"{key}: measuring its training speed ({MEASURED_TICKS} short ticks of train.py)")
        result = subprocess.run([sys.executable, str(REPO / "train.py"), "--config", str(outdir / "probe.yaml")],
                                cwd=REPO, capture_output=True, text=True)
        stats = sorted(outdir.glob("*/stats.jsonl"))
        if result.returncode != 0 or not stats:
            raise RunnerError(f"measuring the speed of {key} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        img_per_s = read_stats(stats[0])[-1]["Timing/img_per_s"]
        shutil.rmtree(outdir)
        return img_per_s

    return _cached(workspace, key, {"config": config.to_dict()}, measure)


def inception_img_per_s(workspace, resolution: int, device) -> float:
    """Fakes per second through Inception (clean resize to 299 px included), on this machine."""
    def measure():
        net = load_inception(None, device)
        images = np.random.default_rng(0).integers(0, 256, (INCEPTION_BATCH, 3, resolution, resolution), dtype=np.uint8)
        extract_features(net, [images], INCEPTION_BATCH, device=device, progress=False)  # warm-up
        start = time.perf_counter()
        extract_features(net, [images, images], 2 * INCEPTION_BATCH, device=device, progress=False)
        return 2 * INCEPTION_BATCH / (time.perf_counter() - start)

    return _cached(workspace, f"inception_{resolution}", {"device": str(device)}, measure)


def metric_images(spec, unit: str, num_classes: int) -> int:
    """Fakes the unit's metrics put through Inception: each curve point, then each final model."""
    final = spec.num_gen + num_classes * (spec.num_gen_per_class or 0)
    if unit == "transfer":
        points = max(1, round(spec.transfer.finetune_kimg / spec.transfer.snap_kimg))
        swaps = len(spec.transfer.swap_split_res)
        return (points + swaps) * num_classes * spec.curve_num_gen_per_class + (1 + swaps) * final
    method = spec.conditional_named(unit)
    points = max(1, round(method.kimg / method.snap_kimg))
    return points * num_classes * spec.curve_num_gen_per_class + final


def estimate(spec, unit: str, workspace, dataset, say) -> dict:
    """kimg, measured img/s and the expected hours (training, metrics, both) of one unit."""
    kimg = unit_kimg(spec, unit, len(dataset.class_names))
    img_per_s = training_img_per_s(workspace, unit, speed_config(spec, unit), say)
    fakes = metric_images(spec, unit, len(dataset.class_names))
    inception = inception_img_per_s(workspace, dataset.resolution, pick_device(spec.device))
    train_h, metric_h = kimg * 1000 / img_per_s / 3600, fakes / inception / 3600
    return dict(unit=unit, kimg=kimg, img_per_s=img_per_s, train_h=train_h, fakes=fakes, metric_h=metric_h,
                hours=train_h + metric_h)


def plan_lines(spec, workspace, dataset, results, say) -> list:
    """One line per unit: kimg, img/s measured here, expected hours, and whether it is done."""
    units = spec.units()
    width = max(len("unit"), *(len(unit) for unit in units))
    lines = [f"{'unit':<{width}} {'kimg':>7} {'img/s':>7} {'training':>9} {'metrics':>9} {'total':>9}  status"]
    for unit in units:
        e = estimate(spec, unit, workspace, dataset, say)
        train, metrics, total = (hours_minutes_seconds(e[key]) for key in ("train_h", "metric_h", "hours"))
        lines.append(f"{unit:<{width}} {e['kimg']:>7g} {e['img_per_s']:>7.1f} {train:>9} {metrics:>9} {total:>9}  "
                     f"{unit_status(spec, unit, results)}")
    return lines


def hours_minutes_seconds(hours: float) -> str:
    """h:mm:ss, so that a unit of seconds does not read as 0.00 h."""
    return str(datetime.timedelta(seconds=round(hours * 3600)))

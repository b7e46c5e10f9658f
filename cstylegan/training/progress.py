"""Where a run is: images shown, minibatches, ticks, and the numbers of the current tick,
turned into one stats.jsonl record and one progress line per tick.

A record is in NVlabs' format, so that their plotting scripts read our runs: every number
is `{"num", "mean", "std"}` under NVlabs' names (`Loss/G/loss`, `Progress/kimg`,
`Timing/sec_per_kimg`, `Resources/peak_gpu_mem_gb`, ...), plus a `timestamp`. A loss's num
and std are over the minibatch values of the tick in every process; a single reading such
as the kimg has num 1 and std 0.
"""

import json
import math
import time
from pathlib import Path

import torch

from cstylegan.runtime.devices import peak_memory_gb

# (label, stats key) of the optional numbers on a progress line.
TICK_EXTRAS = [("r1", "Loss/r1_penalty"), ("pl", "Loss/pl_penalty"), ("ds", "Loss/G/ds"), ("p", "Progress/augment"),
               ("rt", "Progress/ada_rt"), ("blur", "Progress/blur_sigma"), ("labels", "Progress/label_weight")]
# Keys of the flat records that stats.jsonl held before it took NVlabs' format; read_stats renames them.
OLD_KEYS = {"tick": "Progress/tick", "kimg": "Progress/kimg", "time_s": "Timing/total_sec",
            "sec_per_kimg": "Timing/sec_per_kimg", "img_per_s": "Timing/img_per_s",
            "peak_mem_gb": "Resources/peak_gpu_mem_gb", "augment_p": "Progress/augment", "ada_rt": "Progress/ada_rt",
            "blur_sigma": "Progress/blur_sigma", "label_weight": "Progress/label_weight"}


class Progress:
    """The counters the loop advances; one owner instead of variables shared by closures."""

    def __init__(self, cur_nimg: int, total_nimg: int, tick_kimg: float):
        self.cur_nimg, self.total_nimg, self.tick_kimg = cur_nimg, total_nimg, tick_kimg
        self.batch_idx = 0
        self.tick = 0
        self.stats: dict = {}
        self.start_time = self.tick_start_time = time.time()
        self.tick_start_nimg = cur_nimg

    @property
    def done(self) -> bool:
        return self.cur_nimg >= self.total_nimg

    @property
    def elapsed(self) -> float:
        return time.time() - self.start_time

    def add_stats(self, stats: dict) -> None:
        for name, value in stats.items():
            self.stats.setdefault(name, []).append(value)

    def advance(self, batch: int) -> None:
        self.cur_nimg += batch
        self.batch_idx += 1

    @property
    def tick_ends(self) -> bool:
        return self.done or self.cur_nimg >= self.tick_start_nimg + self.tick_kimg * 1000

    def end_tick(self, device, processes, readings: dict) -> dict:
        """This tick's record: progress, speed and memory, each statistic summarised over the
        tick and the processes, then `readings` (more single numbers); and a new tick begun."""
        now = time.time()
        tick_nimg, tick_sec = self.cur_nimg - self.tick_start_nimg, now - self.tick_start_time
        single = {
            "Progress/tick": self.tick,
            "Progress/kimg": self.cur_nimg / 1000,
            "Timing/total_sec": now - self.start_time,
            "Timing/sec_per_tick": tick_sec,
            "Timing/sec_per_kimg": tick_sec / tick_nimg * 1000,
            "Timing/img_per_s": tick_nimg / tick_sec,
            "Resources/peak_gpu_mem_gb": peak_memory_gb(device),
            **readings,
        }
        record = {name: {"num": 1, "mean": value, "std": 0.0} for name, value in single.items()}
        for name, values in self.stats.items():
            values = torch.stack(values).to(torch.float64)
            mean, square = processes.mean(values.mean()).item(), processes.mean(values.square().mean()).item()
            record[name] = {"num": len(values) * processes.world, "mean": mean,
                            "std": math.sqrt(max(square - mean * mean, 0.0))}
        record["timestamp"] = time.time()
        self.tick += 1
        self.stats = {}
        self.tick_start_time, self.tick_start_nimg = time.time(), self.cur_nimg
        return record


def means(record: dict) -> dict:
    """{name: mean} of one stats.jsonl record (and its timestamp), in either format."""
    return {OLD_KEYS.get(name, name): value["mean"] if isinstance(value, dict) else value
            for name, value in record.items()}


def read_stats(path) -> list:
    """Every record of a stats.jsonl file as {name: mean}; [] when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    return [means(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def progress_line(record: dict) -> str:
    value = means(record)
    return (f"tick {value['Progress/tick']:<4d} kimg {value['Progress/kimg']:<8.1f} "
            f"time {format_seconds(value['Timing/total_sec']):<10s} sec/kimg {value['Timing/sec_per_kimg']:<7.2f} "
            f"img/s {value['Timing/img_per_s']:<7.1f} G {value.get('Loss/G/loss', float('nan')):.3f}  "
            f"D {value.get('Loss/D/loss', float('nan')):.3f}"
            + "".join(f"  {label} {value[key]:.3g}" for label, key in TICK_EXTRAS if key in value)
            + f"  mem {value['Resources/peak_gpu_mem_gb']:.2f} GB")


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"

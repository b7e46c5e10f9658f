"""Where a run is: images shown, minibatches, ticks, and the numbers of the current tick,
turned into one stats.jsonl record and one progress line per tick."""

import time

import torch

from cstylegan.runtime.devices import peak_memory_gb

# (label, stats key) of the optional numbers on a progress line.
TICK_EXTRAS = [("r1", "Loss/r1_penalty"), ("pl", "Loss/pl_penalty"), ("ds", "Loss/G/ds"), ("p", "augment_p"),
               ("rt", "ada_rt"), ("blur", "blur_sigma"), ("labels", "label_weight")]


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

    def end_tick(self, device, mean, extras: dict) -> dict:
        """This tick's record (speed, memory, each statistic averaged over the tick and the
        processes, then `extras`), and a new tick begun."""
        now = time.time()
        tick_nimg = self.cur_nimg - self.tick_start_nimg
        record = {
            "tick": self.tick,
            "kimg": self.cur_nimg / 1000,
            "time_s": now - self.start_time,
            "sec_per_kimg": (now - self.tick_start_time) / tick_nimg * 1000,
            "img_per_s": tick_nimg / (now - self.tick_start_time),
            "peak_mem_gb": peak_memory_gb(device),
            **{name: mean(torch.stack(values).mean()).item() for name, values in self.stats.items()},
            **extras,
        }
        self.tick += 1
        self.stats = {}
        self.tick_start_time, self.tick_start_nimg = time.time(), self.cur_nimg
        return record


def progress_line(record: dict) -> str:
    return (f"tick {record['tick']:<4d} kimg {record['kimg']:<8.1f} time {format_seconds(record['time_s']):<10s} "
            f"sec/kimg {record['sec_per_kimg']:<7.2f} img/s {record['img_per_s']:<7.1f} "
            f"G {record.get('Loss/G/loss', float('nan')):.3f}  D {record.get('Loss/D/loss', float('nan')):.3f}"
            + "".join(f"  {label} {record[key]:.3g}" for label, key in TICK_EXTRAS if key in record)
            + f"  mem {record['peak_mem_gb']:.2f} GB")


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"

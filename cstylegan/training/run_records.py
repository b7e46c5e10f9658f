"""What a run records as it goes, besides its log: stats.jsonl per tick and, where the
`tensorboard` package is installed, TensorBoard event files with the same numbers, the
metrics and the fakes grid of every snapshot (NVlabs write the scalars the same way,
with the kimg as the step)."""

import contextlib
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image


class WarnOnce:
    """Runs writes that may meet a full disk: the first OSError of a failing stretch gives one
    warning (`message(error)`), the next ones none, until a write succeeds again."""

    def __init__(self, warn, message):
        self.warn, self.message, self.failing = warn, message, False

    def run(self, write) -> None:
        try:
            write()
        except OSError as error:
            if not self.failing:
                self.warn(self.message(error))
            self.failing = True
        else:
            self.failing = False


class LineFile:
    """A text file that each line is appended to on its own (opened, written, closed): a full
    disk costs that line and one warning, never the run, and nothing is left open on a crash."""

    def __init__(self, path: Path, warn):
        self.path = Path(path)
        self.guard = WarnOnce(warn, lambda error: f"Warning: could not append to {self.path} "
                              f"({error.strerror or error}); its lines are lost until there is space again, "
                              "training goes on")

    def append(self, line: str) -> None:
        def write():
            with open(self.path, "a") as file:
                file.write(line + "\n")

        self.guard.run(write)


def open_event_writer(run_dir: Path, say):
    """A TensorBoard SummaryWriter on the run folder, or None (saying why) without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("TensorBoard: not installed, so no event files (pip install tensorboard); stats.jsonl has the numbers")
        return None
    return SummaryWriter(str(run_dir))


class RunRecords:
    """Opened in the main process only; `files` (an ExitStack) closes them whatever happens."""

    def __init__(self, run_dir: Path, say, files: contextlib.ExitStack):
        self.run_dir, self.say = run_dir, say
        self.events_guard = WarnOnce(say, lambda error: f"Warning: could not write TensorBoard events in {run_dir} "
                                     f"({error.strerror or error}); stats.jsonl keeps the numbers, training goes on")
        self.stats_file = LineFile(run_dir / "stats.jsonl", say)
        self.events = open_event_writer(run_dir, say)
        if self.events is not None:
            files.callback(self.write_events, lambda events: events.close(), flush=False)

    def tick(self, record: dict) -> None:
        """One stats.jsonl line (progress.py's record) and its scalars."""
        self.stats_file.append(json.dumps(record))
        step = int(record["Progress/kimg"]["mean"])

        def write(events):
            for name, value in record.items():
                if name != "timestamp":
                    events.add_scalar(name, value["mean"], step, walltime=record["timestamp"])

        self.write_events(write)

    def metrics(self, results: dict, kimg: float) -> None:
        def write(events):
            for name, value in results.items():
                events.add_scalar(f"Metrics/{name}", value, int(kimg), walltime=time.time())

        self.write_events(write)

    def fakes(self, grid: Image.Image, kimg: float) -> None:
        """The fakes grid just written (a PIL image), as an image at this kimg."""
        self.write_events(lambda events: events.add_image("Fakes", np.asarray(grid.convert("RGB")), int(kimg),
                                                          dataformats="HWC"))

    def write_events(self, write, flush: bool = True) -> None:
        """write(events), then flush them to the event file. A full disk costs those records
        (stats.jsonl keeps the numbers) and one warning until there is room again, not the run."""
        if self.events is None:
            return

        def write_and_flush():
            write(self.events)
            if flush:
                self.events.flush()

        self.events_guard.run(write_and_flush)

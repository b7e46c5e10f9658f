"""The training runs of a comparison, each done once.

Every run is `python train.py --config <key>.yaml` in its own process (so its peak memory
is its own and a crash cannot take the runner down), with its run folders under
<workdir>/<key>/. A finished run is recorded in <workdir>/runs.json and skipped next time
(unless the settings in <workdir>/<key>.yaml have changed: then it starts again); an
unfinished one (killed, or its time slot ran out) continues from its newest snapshot
(`--resume auto`).
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from cstylegan.config import TrainConfig, load_yaml, save_yaml
from cstylegan.data.dataset import ImageDataset
from cstylegan.data.writer import write_dataset_zip
from cstylegan.runtime.errors import UserError
from cstylegan.snapshots.checkpoint import snapshot_kimg, snapshots_newest_first
from cstylegan.training.progress import read_stats

REPO = Path(__file__).resolve().parents[1]


class RunnerError(UserError):
    """A step of the comparison failed; the message says which and where its log is."""


def run_record(outdir: Path) -> dict:
    """What a finished training left in its run folders (one, or more when it was continued):
    the newest snapshot of each kimg, the kimg reached, the training seconds of every
    invocation added up (each run folder's last tick time), and the peak memory."""
    run_dirs = sorted(path for path in outdir.glob("*/") if (path / "stats.jsonl").is_file())
    stats = [read_stats(run_dir / "stats.jsonl") for run_dir in run_dirs]
    stats = [lines for lines in stats if lines]
    if not stats:
        raise RunnerError(f"no finished tick under {outdir}; see its log.txt")
    snapshots = {snapshot_kimg(path): str(path) for run_dir in run_dirs
                 for path in sorted(run_dir.glob("network-snapshot-*.pt"), key=snapshot_kimg)}
    return dict(run_dir=str(run_dirs[-1]), snapshots=sorted(snapshots.items()), kimg=stats[-1][-1]["Progress/kimg"],
                wall_s=sum(lines[-1]["Timing/total_sec"] for lines in stats),
                peak_mem_gb=max(line["Resources/peak_gpu_mem_gb"] for lines in stats for line in lines))


class Workspace:
    """<workdir>: run folders, the per-class data sets, runs.json and evaluations.json."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.runs = self.read_json("runs.json", {})

    def read_json(self, name: str, default):
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else default

    def write_json(self, name: str, values) -> None:
        """Replace <workdir>/<name> atomically, so a kill never leaves half a record."""
        temporary = self.root / f".{name}.tmp"
        temporary.write_text(json.dumps(values, indent=1))
        os.replace(temporary, self.root / name)

    def train(self, key: str, config: TrainConfig, say) -> dict:
        """Run one training unless runs.json says it finished; returns its record:
        run_dir, snapshots [(kimg, path)], kimg, wall_s, peak_mem_gb."""
        outdir, config_path = self.root / key, self.root / f"{key}.yaml"
        config = replace(config, outdir=str(outdir))
        if config_path.is_file() and load_yaml(config_path) != config:
            say(f"{key}: its settings changed since {outdir} was trained; starting it again")
            shutil.rmtree(outdir, ignore_errors=True)
            self.runs.pop(key, None)
        save_yaml(config, config_path)
        record = self.runs.get(key)
        if record and all(Path(path).is_file() for _, path in record["snapshots"]):
            say(f"{key}: finished earlier ({record['kimg']:g} kimg), skipped")
            return record
        started = snapshots_newest_first(outdir)
        if started:
            # The first invocation's resolved config.yaml keeps what a fresh start derived
            # (e.g. a fine-tune's ada_kimg); --resume auto takes its newest snapshot.
            run_dir = started[0].parent
            say(f"{key}: continuing the unfinished run in {run_dir} from its newest snapshot")
            arguments = ["--config", str(run_dir / "config.yaml"), "--resume", "auto", "--kimg", str(config.kimg)]
        else:
            shutil.rmtree(outdir, ignore_errors=True)  # a run killed before its first snapshot
            say(f"{key}: training {config.kimg:g} kimg on {config.data} -> {outdir}")
            arguments = ["--config", str(config_path)]
        result = subprocess.run([sys.executable, str(REPO / "train.py"), *arguments], cwd=REPO)
        if result.returncode != 0:
            raise RunnerError(f"training {key} failed (exit {result.returncode}); see {outdir}/*/log.txt, "
                              "fix it and run again: finished runs are kept, unfinished ones continue")
        record = run_record(outdir)
        self.runs[key] = record
        self.write_json("runs.json", self.runs)
        return record

    def class_data(self, data: str, class_name: str) -> str:
        """A zip of one class's images (unlabelled) for a per-style fine-tune, written once."""
        path = self.root / "data" / f"{class_name}.zip"
        if not path.is_file():
            dataset = ImageDataset(data, use_labels=True)
            images = [dataset[i][0].transpose(1, 2, 0) for i in dataset.indices_of(class_name)]
            write_dataset_zip(path, {class_name: images})
        return str(path)

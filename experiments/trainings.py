"""The training runs of a comparison, each done once.

Every run is `python train.py --config <key>.yaml` in its own process (so its peak memory
is its own and a crash cannot take the runner down), with its run folder under
<workdir>/<key>/. A finished run is recorded in <workdir>/runs.json and skipped next time;
an unfinished one is removed and started again.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from cstylegan.checkpoint import snapshot_kimg
from cstylegan.config import TrainConfig, save_yaml
from cstylegan.data import ImageDataset
from cstylegan.dataset_writer import write_dataset_zip

REPO = Path(__file__).resolve().parents[1]


class RunnerError(RuntimeError):
    """A step of the comparison failed; the message says which and where its log is."""


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
        record = self.runs.get(key)
        if record and all(Path(path).is_file() for _, path in record["snapshots"]):
            say(f"{key}: finished earlier ({record['kimg']:g} kimg), skipped")
            return record
        outdir = self.root / key
        if outdir.exists():
            say(f"{key}: removing the unfinished run in {outdir} and starting it again")
            shutil.rmtree(outdir)
        config_path = self.root / f"{key}.yaml"
        save_yaml(replace(config, outdir=str(outdir)), config_path)
        say(f"{key}: training {config.kimg:g} kimg on {config.data} -> {outdir}")
        start = time.time()
        result = subprocess.run([sys.executable, str(REPO / "train.py"), "--config", str(config_path)], cwd=REPO)
        wall_s = time.time() - start
        run_dirs = sorted(outdir.glob("*/")) if outdir.exists() else []
        if result.returncode != 0 or len(run_dirs) != 1:
            raise RunnerError(f"training {key} failed (exit {result.returncode}); see {outdir}/*/log.txt, "
                              "fix it and run again: finished runs are kept")
        run_dir = run_dirs[0]
        stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
        snapshots = sorted((snapshot_kimg(path), str(path)) for path in run_dir.glob("network-snapshot-*.pt"))
        record = dict(run_dir=str(run_dir), snapshots=snapshots, kimg=stats[-1]["kimg"], wall_s=wall_s,
                      peak_mem_gb=max(line["peak_mem_gb"] for line in stats))
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

"""Where a run starts from, in one object: nothing (None), a snapshot whose weights it takes
(`--resume FILE`, transfer learning), or its own newest snapshot, which it continues where
it stopped (`--resume auto`: image count, optimisers, ADA p and random state too)."""

import dataclasses
from pathlib import Path
from typing import Optional

from cstylegan.config import CONTINUE_RESUME, TrainConfig
from cstylegan.data.dataset import data_size
from cstylegan.data.labels import LabelSpace
from cstylegan.snapshots import checkpoint
from cstylegan.training.build import same_architecture
from cstylegan.training.rng_state import restore_rng


@dataclasses.dataclass(frozen=True)
class Resume:
    path: Path
    snapshot: dict
    continuing: bool

    @staticmethod
    def find(config: TrainConfig, log, dataset) -> Optional["Resume"]:
        """The newest readable snapshot under --outdir for --resume auto, when it is of this very
        run (data, classes, architecture), else the --resume file, else None."""
        if config.resume in CONTINUE_RESUME:
            path, snapshot = checkpoint.newest_valid_snapshot(config.outdir, log)
            if snapshot is None:
                log(f"--resume {config.resume}: no snapshot under {config.outdir}/ yet; starting from scratch")
                return None
            other = why_another_run(snapshot, config, dataset)
            if other:
                log(f"--resume {config.resume}: {path} is of another run ({other}); starting from scratch")
                return None
            return Resume(Path(path), snapshot, continuing=True)
        if config.resume:
            return Resume(Path(config.resume), checkpoint.load_snapshot(config.resume), continuing=False)
        return None

    @property
    def ada_p(self) -> float:
        return float(self.snapshot["ada_p"])

    def restore_optimisers(self, G_opt, D_opt, G_kwargs: dict, label_space) -> bool:
        """Load the file's optimiser states when it has them for these very networks and labels."""
        if ("G_opt" not in self.snapshot or not same_architecture(self.snapshot["G_kwargs"], G_kwargs)
                or LabelSpace.of_snapshot(self.snapshot) != label_space):
            return False
        G_opt.load_state_dict(self.snapshot["G_opt"])
        D_opt.load_state_dict(self.snapshot["D_opt"])
        return True

    def restore_random_state(self, generators: dict) -> bool:
        """Continue the random streams where the file left them (older files have none)."""
        if "rng" not in self.snapshot:
            return False
        restore_rng(self.snapshot["rng"], generators)
        return True


# Settings that make a run's networks; --resume auto continues only a snapshot that agrees on
# each one the user gave (a setting left to the preset agrees with whatever it resolved to).
ARCHITECTURE_SETTINGS = ("cfg", "cbase", "cmax", "map_depth", "z_dim", "w_dim", "dbackbone", "labels")


def why_another_run(snapshot: dict, config: TrainConfig, dataset) -> Optional[str]:
    """Why the snapshot is not of the run `config` describes (None when it is): another data
    set, or the same file changed since, other classes, or another architecture."""
    trained = snapshot["config"]
    data = trained.get("data")
    if data is not None and Path(data).resolve() != Path(config.data).resolve():
        return f"trained on {data}, not {config.data}"
    size = data_size(config.data)
    if snapshot["data_size"] not in (None, size):
        return f"{config.data} has changed since: {snapshot['data_size']} bytes then, {size} now"
    classes = list(dataset.class_names) if config.cond else []
    if list(snapshot["class_names"]) != classes:
        return f"its classes are {snapshot['class_names'] or 'none'}, this run's {classes or 'none'}"
    for name in ARCHITECTURE_SETTINGS:
        given = getattr(config, name)
        if given is not None and name in trained and trained[name] != given:
            return f"--{name.replace('_', '-')} {trained[name]} there, {given} here"
    return None


def start_nimg(config: TrainConfig, resume: Optional[Resume]) -> int:
    """The resume file's image count, unless --nkimg sets one; --resume auto ignores --nkimg,
    also when it finds nothing to continue (`config` as given, before --resume is resolved)."""
    if config.nkimg is not None and config.resume not in CONTINUE_RESUME:
        return int(config.nkimg * 1000)
    return int(resume.snapshot["cur_nimg"] or 0) if resume is not None else 0

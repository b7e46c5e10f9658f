"""Where a run starts from, in one object: nothing (None), a snapshot whose weights it takes
(`--resume FILE`, transfer learning), or its own newest snapshot, which it continues where
it stopped (`--resume auto`: image count, optimisers, ADA p and random state too)."""

import dataclasses
from pathlib import Path
from typing import Optional

from cstylegan.config import CONTINUE_RESUME, TrainConfig
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
    def find(config: TrainConfig, log) -> Optional["Resume"]:
        """The newest readable snapshot under --outdir for --resume auto, else the --resume file, else None."""
        if config.resume in CONTINUE_RESUME:
            path, snapshot = checkpoint.newest_valid_snapshot(config.outdir, log)
            if snapshot is None:
                log(f"--resume {config.resume}: no snapshot under {config.outdir}/ yet; starting from scratch")
                return None
            return Resume(Path(path), snapshot, continuing=True)
        if config.resume:
            return Resume(Path(config.resume), checkpoint.load_snapshot(config.resume), continuing=False)
        return None

    @property
    def ada_p(self) -> float:
        return float(self.snapshot.get("ada_p", 0.0))

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


def start_nimg(config: TrainConfig, resume: Optional[Resume]) -> int:
    """The resume file's image count, unless --nkimg sets one; --resume auto ignores --nkimg,
    also when it finds nothing to continue (`config` as given, before --resume is resolved)."""
    if config.nkimg is not None and config.resume not in CONTINUE_RESUME:
        return int(config.nkimg * 1000)
    return int(resume.snapshot.get("cur_nimg", 0)) if resume is not None else 0

"""Our snapshots: tensors and plain data only, written atomically, loaded without pickled code.

A snapshot is a dict that `torch.load(weights_only=True)` accepts:
    G, G_ema, D            state dicts (NVlabs parameter names)
    G_opt, D_opt           optimiser state dicts (absent in export-only files)
    G_family               "stylegan2" or "stylegan3": which Generator class G_kwargs are for
    D_backbone             "resnet" or "vit": which Discriminator class D_kwargs are for
    G_kwargs, D_kwargs     constructor arguments, NVlabs names
    config                 the run's TrainConfig as a dict
    class_names            index -> class name ([] for an unconditional model)
    attributes             {attribute: [value, ...]} for a model trained with --labels attributes
    label_names            the dimensions of a model trained on vector labels
    cur_nimg               images shown so far (None in a blend of two models)
    data_size              the training data file's size in bytes, to tell a changed data set
    ada_p                  augmentation probability (0 without ADA)
    rng                    random generator states (cstylegan.training.rng_state), for --resume auto
    format                 "cstylegan-snapshot-1"
    augment_pipe           augmentation tensors (NVlabs imports only)
The per-class w_avg lives in G_ema's state dict as `mapping.w_avg_per_class`.

`load_snapshot` is the one reader: it fills the keys that older files may lack (`with_defaults`),
so code after it indexes keys instead of repeating their defaults. `open_for_inference` is
what every tool that draws (generate.py, the web page, the projector, the metrics, the
comparison) opens a file with.
"""

import errno
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from cstylegan.data.classes import check_class_names, class_names_or_default
from cstylegan.data.labels import LabelSpace
from cstylegan.networks import DISCRIMINATORS, GENERATORS
from cstylegan.runtime.files import disk_is_full, user_file_mode
from cstylegan.snapshots.format import FORMAT, CheckpointError
from cstylegan.snapshots.nvlabs_pickle import load_nvlabs_pickle

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d+)\.pt$")


def save_snapshot(path, snapshot: dict) -> None:
    """Write to a temporary file in the same folder, then rename: never half a file. Any
    failed write is an OSError (ENOSPC on a full disk), whatever torch.save's zip writer made
    of it, and the file gets the permissions of any file the user writes."""
    path = Path(path)
    snapshot = dict(snapshot, format=FORMAT)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            try:
                torch.save(snapshot, file)
            except RuntimeError as error:  # a short write surfaces as "unexpected pos ..." from the zip writer
                code = errno.ENOSPC if disk_is_full(path.parent) else errno.EIO
                raise OSError(code, os.strerror(code), str(path)) from error
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, user_file_mode())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_snapshot(path, map_location="cpu") -> dict:
    """Load one of our snapshots, refusing anything that is not plain tensors and data.

    An NVlabs `.pkl` is converted to the same layout (cstylegan.snapshots.nvlabs_pickle), without
    running the code stored in it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"network file not found: {path}")
    if path.suffix.lower() == ".pkl":
        return with_defaults(load_nvlabs_pickle(path))
    try:
        snapshot = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        # torch's message opens with advice to retry with weights_only=False, i.e. to run the
        # file's code: never quote it. A blocked GLOBAL means the file holds code.
        if "GLOBAL" in str(error):
            raise CheckpointError(f"{path} holds pickled objects beyond tensors (code could run if it were "
                                  "loaded), so it was not loaded; pass a network-snapshot-*.pt written by train.py "
                                  "or an NVlabs .pkl") from None
        text = str(error).strip()
        reason = ("not a torch file of plain tensors" if "Weights only load failed" in text
                  else text.splitlines()[0] if text else type(error).__name__)
        raise CheckpointError(
            f"cannot read {path} as a cstylegan snapshot ({reason}); "
            "pass a network-snapshot-*.pt written by train.py or an NVlabs .pkl"
        ) from None
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cstylegan snapshot; pass a network-snapshot-*.pt written by train.py")
    return check_label_names(check_fields(with_defaults(snapshot), path), path)


# What drawing reads from a snapshot, with its type; and the whole numbers G_kwargs must hold.
DRAWING_FIELDS = {"G_kwargs": dict, "G_ema": dict, "class_names": list}
OPTIONAL_FIELDS = {"attributes": dict, "label_names": list, "config": dict}
G_SIZES = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
WHOLE_SNAPSHOT = "pass a network-snapshot-*.pt written by train.py"


def check_fields(snapshot: dict, path) -> dict:
    """The snapshot, if what drawing reads is there with the right types; else a one-line
    error naming the field (a hand-made or damaged file carries our format marker too)."""
    for key, kind in {**DRAWING_FIELDS, **OPTIONAL_FIELDS}.items():
        if key not in snapshot and key in DRAWING_FIELDS:
            raise CheckpointError(f"{path} has no {key}, so it is no whole snapshot; {WHOLE_SNAPSHOT}")
        if key in snapshot and snapshot[key] is not None and not isinstance(snapshot[key], kind):
            raise CheckpointError(f"{path}: its {key} is a {type(snapshot[key]).__name__}, not a {kind.__name__}; "
                                  f"{WHOLE_SNAPSHOT}")
    if snapshot["G_family"] not in GENERATORS:
        raise CheckpointError(f"{path}: unknown G_family {snapshot['G_family']!r} (known: {', '.join(GENERATORS)}); "
                              f"{WHOLE_SNAPSHOT}")
    for key in G_SIZES:
        value = snapshot["G_kwargs"].get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{path}: its G_kwargs {key} is {value!r}, not a whole number; {WHOLE_SNAPSHOT}")
    if not all(isinstance(value, torch.Tensor) for value in snapshot["G_ema"].values()):
        raise CheckpointError(f"{path}: its G_ema holds other things than tensors; {WHOLE_SNAPSHOT}")
    return snapshot


def check_label_names(snapshot: dict, path) -> dict:
    """The snapshot, if its class names and attribute values can each be a folder name (they
    become folders in generate.py); a one-line error naming the first that cannot."""
    check_class_names(snapshot["class_names"], path)
    for attribute, values in snapshot["attributes"].items():
        check_class_names(values, f"{path}: attribute {attribute!r}", "value")
    return snapshot


def with_defaults(snapshot: dict) -> dict:
    """Every key a reader may find missing, filled in: files written before the key existed,
    and files that never hold it (an export, a blend, an NVlabs import). Readers index."""
    filled = {"G_family": "stylegan2", "D_backbone": "resnet", "class_names": [], "attributes": {},
              "label_names": [], "config": {}, "cur_nimg": None, "ada_p": 0.0, "data_size": None, **snapshot}
    for key, empty in (("attributes", {}), ("label_names", []), ("config", {})):
        filled[key] = filled[key] or empty  # older files stored None for "none"
    return filled


def generator_from(snapshot: dict, device="cpu", source="the snapshot"):
    """A loaded snapshot's G_ema, ready to draw images with. G_kwargs that build no generator
    (an unknown argument, a bad value) or weights that do not fit it are the file's fault, so
    a one-line error naming `source`, not a traceback."""
    try:
        G = GENERATORS[snapshot["G_family"]](**snapshot["G_kwargs"])
        G.load_state_dict(snapshot["G_ema"])
    except (TypeError, ValueError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(f"{source}: its G_kwargs and G_ema do not make a generator ({reason}); "
                              f"{WHOLE_SNAPSHOT}") from None
    return G.to(device).eval().requires_grad_(False)


def discriminator_from(snapshot: dict, device="cpu"):
    """A loaded snapshot's D (residual or ViT, as trained), frozen; None for a file without D."""
    if "D" not in snapshot:
        return None
    D = DISCRIMINATORS[snapshot["D_backbone"]](**snapshot["D_kwargs"])
    D.load_state_dict(snapshot["D"])
    return D.to(device).eval().requires_grad_(False)


@dataclass
class Opened:
    """What drawing from a snapshot needs."""
    G: torch.nn.Module              # G_ema, frozen, in eval mode
    labels: LabelSpace              # its classes and their label vectors
    D: Optional[torch.nn.Module]    # only when asked for and the file has one
    cur_nimg: Optional[int]         # images shown in training (None for a blend)
    config: dict                    # the run's TrainConfig as a dict ({} when the file has none)

    @property
    def class_names(self) -> list:
        """One per class it can draw (class0, class1, ... when the file names none; with
        attribute labels every combination of their values)."""
        return list(self.labels.class_names)


def open_for_inference(path, device="cpu", with_D: bool = False) -> Opened:
    """Open a snapshot or NVlabs .pkl to draw from: G_ema, its label space and, if asked, D."""
    snapshot = load_snapshot(path)
    G = generator_from(snapshot, device, path)
    D = discriminator_from(snapshot, device) if with_D else None
    return Opened(G, drawing_labels(snapshot), D, snapshot["cur_nimg"], snapshot["config"])


def drawing_labels(snapshot: dict) -> LabelSpace:
    """The label space to draw a loaded snapshot with: its own, its classes named class0,
    class1, ... when the file names none."""
    names = class_names_or_default(snapshot["class_names"], snapshot["G_kwargs"]["c_dim"])
    return LabelSpace.of(names, snapshot["attributes"], snapshot["label_names"])


GENERATOR_ONLY_KEYS = ("G_family", "G_kwargs", "class_names", "attributes", "label_names", "cur_nimg", "config")


def export_generator(snapshot: dict, path) -> Path:
    """Write only what drawing needs: G_ema in float16 (half the bytes; drawing casts it back
    to float32), its constructor arguments, class names, kimg and config. generate.py, the
    web page and the projector open it like any snapshot (no D: the projector's D distance
    is then unavailable)."""
    small = {key: snapshot[key] for key in GENERATOR_ONLY_KEYS}
    small["G_ema"] = {name: tensor.half() if tensor.is_floating_point() else tensor
                      for name, tensor in snapshot["G_ema"].items()}
    save_snapshot(path, small)
    return Path(path)


def snapshot_kimg(path) -> int:
    """The kimg in a snapshot file name, -1 if the name has none."""
    match = SNAPSHOT_PATTERN.search(Path(path).name)
    return int(match.group(1)) if match else -1


def snapshots_newest_first(root) -> list:
    """Every network-snapshot-*.pt in the run folders under `root`: the newest run folder
    first (their names start with a running number), and in it the highest kimg first."""
    return sorted(Path(root).glob("*/network-snapshot-*.pt"), key=lambda p: (p.parent.name, snapshot_kimg(p)),
                  reverse=True)


def newest_snapshot(root) -> Path:
    """The most recent snapshot below `root`, for generate.py without --network."""
    found = snapshots_newest_first(root)
    if not found:
        raise CheckpointError(f"no network-snapshot-*.pt under {Path(root)}/; train first or pass --network PATH")
    return found[0]


def newest_valid_snapshot(outdir, say=print):
    """The newest snapshot under `outdir` that loads, for `--resume auto`; unreadable ones
    are named and skipped. (None, None) if there is none."""
    for path in snapshots_newest_first(outdir):
        try:
            return path, load_snapshot(path)
        except CheckpointError as error:
            say(f"Skipping {path}: {error}")
    return None, None

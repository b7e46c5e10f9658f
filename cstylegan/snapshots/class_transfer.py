"""Carrying trained weights into a network whose class list differs.

NVlabs' code refuses to resume when the labels change ("The size of tensor a (1024) must
match the size of tensor b (512)"). Only a few tensors depend on the classes; this
file adapts exactly those and copies the rest:

- `mapping.embed.weight` (G and D): one column per class. Columns of class names
  present in both lists are copied (unnamed NVlabs classes `classN` by index); new
  classes keep their fresh initialisation.
- G `mapping.fc0.weight`: its input is z, or z and the label embedding. From an
  unconditional network the z part is copied and the embedding part starts at zero,
  so that every class first draws exactly the pretrained model's images. The copied
  weights are rescaled by sqrt(new inputs / old inputs) because the equalised learning
  rate divides the weight by sqrt(inputs) at run time.
- G `mapping.w_avg_per_class`: rows of shared classes copied; new rows start at the
  global w_avg, which is where every class's w lies while its embedding is zero.
- D `b4.out.*`: one output for an unconditional D, `cmap_dim` for a projection D; it
  is re-initialised when that changes, as is a D mapping network that did not exist.

Everything else must have the same shape on both sides, or the networks differ in more
than their classes and the transfer is refused.
"""

import math

import torch

from cstylegan.snapshots.checkpoint import CheckpointError

CLASS_COLUMNS = "mapping.embed.weight"
CLASS_ROWS = "mapping.w_avg_per_class"
MAPPING_INPUT = "mapping.fc0.weight"


def _shared_classes(source_classes, target_classes) -> list:
    """(source index, target index) for each class name present in both lists. Unnamed
    source classes (`class0`, `class1`, ... as in NVlabs pickles) are matched by index."""
    if source_classes == [f"class{i}" for i in range(len(source_classes))]:
        return [(i, i) for i in range(min(len(source_classes), len(target_classes)))]
    return [(source_classes.index(name), i) for i, name in enumerate(target_classes) if name in source_classes]


def _resize_mapping_input(source: torch.Tensor, target: torch.Tensor, z_dim: int) -> torch.Tensor:
    """Keep the z columns (rescaled for the new fan-in); label-embedding columns start at zero."""
    adapted = torch.zeros_like(target)
    scale = math.sqrt(target.shape[1] / source.shape[1])
    adapted[:, :z_dim] = source[:, :z_dim] * scale
    return adapted


def _transfer_class_rows(source: dict, fresh: torch.Tensor, shared) -> str:
    """Per-class w_avg: shared classes keep theirs, new ones start at the global w_avg."""
    kept = {dst for _, dst in shared}
    new_rows = [i for i in range(fresh.shape[0]) if i not in kept]
    fresh[new_rows] = source["mapping.w_avg"].to(fresh.dtype)
    for src, dst in shared:
        fresh[dst] = source[CLASS_ROWS][src].to(fresh.dtype)
    return f"kept {len(kept)} class rows, {len(new_rows)} new rows start at the global w_avg"


def transfer_state(source: dict, source_classes, target: torch.nn.Module, target_classes, name: str) -> list:
    """Load `source` (a state dict) into `target`, adapting class-dependent tensors.

    Returns one report line per tensor that was not a plain copy.
    """
    source_classes, target_classes = list(source_classes), list(target_classes)
    same_classes = source_classes == target_classes
    shared = _shared_classes(source_classes, target_classes)
    z_dim = getattr(target, "z_dim", 0)
    state = target.state_dict()
    report = []
    for key, fresh in state.items():
        if key == CLASS_ROWS and not same_classes:
            report.append(f"{name}.{key}: " + _transfer_class_rows(source, fresh, shared))
            continue
        if key not in source:
            report.append(f"{name}.{key}: re-initialised (not in the source network)")
            continue
        old = source[key].to(fresh.dtype)
        if key == CLASS_COLUMNS and not same_classes:
            for src, dst in shared:
                fresh[:, dst] = old[:, src]
            report.append(f"{name}.{key}: kept {len(shared)} of {len(target_classes)} class columns, others re-initialised")
        elif old.shape == fresh.shape:
            fresh.copy_(old)
        elif key == MAPPING_INPUT and old.shape[0] == fresh.shape[0]:
            fresh.copy_(_resize_mapping_input(old, fresh, z_dim))
            report.append(f"{name}.{key}: {'widened' if fresh.shape[1] > old.shape[1] else 'narrowed'} "
                          f"from {old.shape[1]} to {fresh.shape[1]} inputs (label embedding starts at zero)")
        elif key.startswith("b4.out."):
            report.append(f"{name}.{key}: re-initialised ({tuple(old.shape)} -> {tuple(fresh.shape)}, projection output)")
        else:
            raise CheckpointError(
                f"cannot transfer {name}.{key}: shape {tuple(old.shape)} in the source, {tuple(fresh.shape)} here; "
                "the networks differ in more than their classes (check the resolution and --cfg)"
            )
    dropped = sorted(set(source) - set(state))
    if dropped:
        report.append(f"{name}: dropped {', '.join(dropped)} (not in this network)")
    target.load_state_dict(state)
    return report

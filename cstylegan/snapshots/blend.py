"""Layer swapping between two generators, one fine-tuned from the other (Pinkney & Adler 2020, "Resolution dependent GAN interpolation for
controllable image synthesis between domains"): the coarse synthesis layers come from
the `lower` network, whose pose and shape you want, the fine ones from the `higher`
network, whose texture and colour you want, and the mapping network from `lower`:

    python -m cstylegan.snapshots.blend --lower A.pt --higher B.pt --split-res 16 --out blended.pt \
        --preview preview.png --seeds 0-7 --class twemoji_male

Each synthesis tensor gets a weight t and becomes lerp(lower, higher, t). Its position is
log2 of its block's resolution for StyleGAN2 (`synthesis.b16.*` is at 4, to-RGB included
with its block) and the layer index for StyleGAN3 (`synthesis.L5_*` is at 5, the
Fourier-feature input `synthesis.input.*` at -1). With split s (log2 of --split-res, or
--split-layer) a hard split gives t = 0 for position <= s and 1 above; --blend-width W
gives t = sigmoid((position - s) / W), so the layer at the split itself is a 50/50 mix.

The swap between two classes of one conditional generator is `generation/class_swap.py`.
"""

import math
import re
from pathlib import Path

import click
import numpy as np
import torch

from cstylegan.data.classes import UnknownClassError
from cstylegan.generation.drawer import Drawer
from cstylegan.generation.image_grid import save_grid
from cstylegan.generation.seeds import parse_seeds
from cstylegan.runtime.cli import FINITE, Command
from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import refuse_overwriting_inputs, require_image_suffix
from cstylegan.snapshots.checkpoint import drawing_labels, generator_from, load_snapshot, save_snapshot

SG2_BLOCK = re.compile(r"synthesis\.b(\d+)\.")
SG3_LAYER = re.compile(r"synthesis\.L(\d+)_")


class BlendError(UserError):
    """Two networks or a split that cannot be blended; the message says what to change."""


def layer_position(name: str, family: str):
    """Where a state-dict tensor sits along the synthesis network: log2 of the block
    resolution (StyleGAN2), the layer index (StyleGAN3, the input at -1), or None for a
    tensor outside synthesis (the mapping network), which always comes from `lower`."""
    if not name.startswith("synthesis."):
        return None
    if family == "stylegan2":
        match = SG2_BLOCK.match(name)
        if match:
            return int(math.log2(int(match.group(1))))
    elif family == "stylegan3":
        if name.startswith("synthesis.input."):
            return -1
        match = SG3_LAYER.match(name)
        if match:
            return int(match.group(1))
    raise BlendError(f"cannot place {name} of a {family} network along the synthesis layers")


def blend_generators(lower_snapshot: dict, higher_snapshot: dict, split_res=None, split_layer=None, width=None,
                     lower_name=None, higher_name=None) -> dict:
    """A snapshot whose G and G_ema are the blend of the two networks' G_ema.

    StyleGAN2 splits at a block resolution (`split_res`), StyleGAN3 at a layer index
    (`split_layer`). Class names, G_kwargs and the mapping (with its per-class w_avg) are
    `lower`'s. The snapshot's `blend` entry records the inputs and the split.
    """
    family = _check_same_architecture(lower_snapshot, higher_snapshot)
    split = _split_position(family, lower_snapshot["G_ema"], split_res, split_layer)
    if width is not None and not width > 0:
        raise BlendError(f"--blend-width must be > 0, got {width}")
    lower, higher = lower_snapshot["G_ema"], higher_snapshot["G_ema"]
    blended = {}
    for name, tensor in lower.items():
        position = layer_position(name, family)
        if position is None:
            blended[name] = tensor.clone()
        elif width is None:
            blended[name] = (tensor if position <= split else higher[name]).clone()
        else:
            t = 1 / (1 + math.exp(-(position - split) / width))
            blended[name] = torch.lerp(tensor, higher[name], t)
    note = dict(lower=lower_name, higher=higher_name, width=width,
                split=split_res if family == "stylegan2" else split_layer,
                split_by="res" if family == "stylegan2" else "layer")
    return dict(G=blended, G_ema=blended, G_family=family, G_kwargs=lower_snapshot["G_kwargs"],
                class_names=list(lower_snapshot["class_names"]), attributes=lower_snapshot["attributes"],
                label_names=lower_snapshot["label_names"], blend=note)


def _check_same_architecture(lower: dict, higher: dict) -> str:
    """The common family; c_dim may differ because the mapping comes from `lower` alone."""
    family = lower["G_family"]
    other = higher["G_family"]
    if family != other:
        raise BlendError(f"cannot blend a {family} network (lower) with a {other} network (higher)")
    a = {k: v for k, v in lower["G_kwargs"].items() if k != "c_dim"}
    b = {k: v for k, v in higher["G_kwargs"].items() if k != "c_dim"}
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            raise BlendError(f"the networks differ in {key}: {a.get(key)!r} (lower) vs {b.get(key)!r} (higher); "
                             "blending needs the same architecture, e.g. a network and one fine-tuned from it")
    return family


def _split_position(family: str, state: dict, split_res, split_layer) -> int:
    """The split as a position (see layer_position), after checking it suits the network."""
    positions = sorted({layer_position(name, family) for name in state} - {None})
    if family == "stylegan2":
        choices = ", ".join(str(2 ** p) for p in positions)
        if split_layer is not None:
            raise BlendError(f"--split-layer is for StyleGAN3 networks; this is StyleGAN2: "
                             f"use --split-res (one of {choices})")
        if split_res is None or split_res < 1 or math.log2(split_res) not in positions:
            given = "none given" if split_res is None else f"{split_res} is not one of them"
            raise BlendError(f"--split-res must be one of this network's resolutions {choices}; {given}")
        return int(math.log2(split_res))
    last = positions[-1]
    if split_res is not None:
        raise BlendError(f"--split-res is for StyleGAN2 networks; this is StyleGAN3: "
                         f"use --split-layer K (0-{last}; layers L0 ... L<K> come from --lower)")
    if split_layer is None or not 0 <= split_layer <= last:
        given = "none given" if split_layer is None else f"got {split_layer}"
        raise BlendError(f"--split-layer must be a layer index 0-{last}; {given}")
    return split_layer


def preview_class(snapshot: dict, class_spec, role: str):
    """The index of the preview's class in one network's own class list (a fine-tuned
    network may order or name its classes differently); None for an unconditional network."""
    c_dim = snapshot["G_kwargs"]["c_dim"]
    if c_dim == 0:
        return None
    labels = drawing_labels(snapshot)
    if class_spec is None:
        raise BlendError(f"the {role} network is conditional: pass --class NAME (one of {', '.join(labels.class_names)})")
    try:
        indices = labels.resolve(class_spec)
    except UnknownClassError as error:
        raise BlendError(f"{role} network: {error}") from None
    if len(indices) != 1:
        raise BlendError(f"--class {class_spec!r}: the preview draws one class; name one")
    return indices[0]


def save_preview(path, rows: list, seeds: list, device) -> None:
    """One labelled row per (label, snapshot, class index or None), the same seeds in every row."""
    tiles = []
    for _, snapshot, class_index in rows:
        drawer = Drawer(generator_from(snapshot, device), device, label_space=drawing_labels(snapshot))
        tiles.append(drawer.images(drawer.ws(seeds, class_index)))
    save_grid(np.concatenate(tiles), path, columns=len(seeds), row_labels=[label for label, _, _ in rows])


def check_outputs(lower_path, higher_path, out_path, preview_path) -> None:
    """Before any work: neither output may be an input (nor the preview the blended snapshot),
    and the preview must be an image file."""
    inputs = {"--lower": lower_path, "--higher": higher_path}
    refuse_overwriting_inputs({"--out": out_path}, inputs)
    if preview_path:
        refuse_overwriting_inputs({"--preview": preview_path}, {**inputs, "--out": out_path})
        require_image_suffix("--preview", preview_path)


@click.command(cls=Command)
@click.option("--lower", "lower_path", required=True,
              help="Network whose coarse layers (pose, shape) and mapping are kept.")
@click.option("--higher", "higher_path", required=True,
              help="Network fine-tuned from --lower whose fine layers (texture, colour) are taken.")
@click.option("--split-res", type=int, help="StyleGAN2: blocks at or below this resolution come from --lower.")
@click.option("--split-layer", type=int, help="StyleGAN3: layers L0 ... L<K> come from --lower.")
@click.option("--blend-width", type=FINITE,
              help="Soft blend: t = sigmoid((position - split) / W) instead of a hard split.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Snapshot to write.")
@click.option("--preview", "preview_path", type=click.Path(dir_okay=False),
              help="Also write a grid: rows lower, higher, blended for the same seeds.")
@click.option("--seeds", default="0-7", show_default=True, help="Seeds of the preview: 0-7, 1,5,9 or a mix.")
@click.option("--class", "class_spec", help="Class of the preview (conditional networks).")
@click.option("--device", default="auto", show_default=True, help="Device of the preview: cpu, cuda or auto.")
def main(lower_path, higher_path, split_res, split_layer, blend_width, out_path, preview_path, seeds, class_spec,
         device):
    """Blend two generators by layer: coarse layers from --lower, fine ones from --higher."""
    check_outputs(lower_path, higher_path, out_path, preview_path)
    lower, higher = load_snapshot(lower_path), load_snapshot(higher_path)
    blended = blend_generators(lower, higher, split_res, split_layer, blend_width,
                               lower_name=str(lower_path), higher_name=str(higher_path))
    if preview_path:
        seed_list = parse_seeds(seeds)
        device = pick_device(device)
        class_lower = preview_class(lower, class_spec, "lower")
        class_higher = preview_class(higher, class_spec, "higher")
        if class_spec is not None and class_lower is None and class_higher is None:
            raise BlendError("--class given, but both networks are unconditional; drop --class")
    save_snapshot(out_path, blended)
    click.echo(f"Wrote {out_path}")
    if preview_path:
        split = f"@{split_res}" if split_res is not None else f"@L{split_layer}"
        width = f" w={blend_width:g}" if blend_width is not None else ""
        rows = [(f"lower: {Path(lower_path).name}", lower, class_lower),
                (f"higher: {Path(higher_path).name}", higher, class_higher),
                (f"blended {split}{width}", blended, class_lower)]
        save_preview(preview_path, rows, seed_list, device)
        click.echo(f"Wrote {preview_path}")


if __name__ == "__main__":
    main()

"""Draw images of chosen classes: `python generate.py --class ghibli_male --seeds 0-63`."""

import sys
from pathlib import Path

import click
import numpy as np
import torch

from cstylegan.blend import class_swap_ws
from cstylegan.checkpoint import CheckpointError, load_generator, newest_snapshot
from cstylegan.cli import Command
from cstylegan.classes import UnknownClassError, resolve_classes
from cstylegan.devices import pick_device
from cstylegan.image_grid import save_grid, to_uint8
from cstylegan.networks.stylegan3 import set_input_transform
from cstylegan.seeds import parse_seeds, seed_z

DEFAULT_RUNS = "training-runs"


@click.command(cls=Command)
@click.option("--network", "network_path", type=str,
              help=f"Snapshot to draw from.  [default: newest under {DEFAULT_RUNS}/]")
@click.option("--class", "class_spec", type=str,
              help="Class name, index, comma list, or all (conditional networks only).")
@click.option("--seeds", type=str, default="0-7", show_default=True, help="Seeds: 0-63, 1,5,9 or a mix.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: 1 = none, smaller = closer to the average face.")
@click.option("--trunc-center", type=click.Choice(["class", "global"]), default="class", show_default=True,
              help="Truncate toward the class's own average w, or the global one as NVlabs does.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--translate", default="0,0", show_default=True,
              help="StyleGAN3 only: shift the picture by X,Y (in image widths) through the input transform.")
@click.option("--rotate", type=float, default=0.0, show_default=True,
              help="StyleGAN3 only: rotate the picture by this many degrees through the input transform.")
@click.option("--style-class", "style_spec", type=str,
              help="Class (or comma list, or all) whose ws drive the layers from --swap-layer on.")
@click.option("--swap-layer", type=int,
              help="Class swap: the first K ws come from --class, the rest from --style-class (1..num_ws-1).")
@click.option("--swap-grid", is_flag=True,
              help="Write OUTDIR/swap_grid_seed<S>.png per seed: rows --class (content), columns --style-class "
                   "(style), all classes by default.")
@click.option("--outdir", type=click.Path(file_okay=False), default="out", show_default=True)
@click.option("--grid", is_flag=True, help="Also write one grid image per class.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
def main(network_path, class_spec, seeds, truncation_psi, trunc_center, noise_mode, translate, rotate, style_spec,
         swap_layer, swap_grid, outdir, grid, device):
    """Write OUTDIR/<class>/seed0000.png for every class and seed asked for.

    Seed s gives z = np.random.RandomState(s).randn(z_dim), as NVlabs' generate.py, so the
    same network, seed and class give the same picture as their tool (with --trunc 1).
    With --style-class B --swap-layer K, OUTDIR/<A>__style_<B>/seed0000.png takes its first
    K ws from class A and the rest from class B (same z): A's shapes in B's colours.
    """
    try:
        check_swap_flags(style_spec, swap_layer, swap_grid)
        seed_list = parse_seeds(seeds)
        if network_path is None:
            network_path = newest_snapshot(DEFAULT_RUNS)
        device = pick_device(device)
        G, info = load_generator(network_path, device)
        class_names = info.get("class_names") or [f"class{i}" for i in range(G.c_dim)]
        if swap_layer is None:
            pairs = [(k, None) for k in pick_classes(class_spec, class_names, G.c_dim)]
        else:
            contents, styles = pick_swap_classes(G, class_names, class_spec, style_spec, swap_layer, swap_grid)
            pairs = [(a, b) for a in contents for b in styles]
        shift = parse_translate(translate)
        if shift != (0.0, 0.0) or rotate != 0:
            if not hasattr(G.synthesis, "input"):
                raise ValueError("--translate and --rotate move a StyleGAN3 input grid; this is a StyleGAN2 network")
            set_input_transform(G, translate=shift, rotate_deg=rotate)
    except (CheckpointError, UnknownClassError, ValueError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(f"Network: {network_path}")

    outdir = Path(outdir)
    center = trunc_center if G.c_dim else "global"

    def draw(seed, content, style):
        """One image, uint8 [1, H, W, C]: the plain class, or a class swap when style is given."""
        z = torch.from_numpy(seed_z(seed, G.z_dim)).float().unsqueeze(0).to(device)
        c = one_hot(content, G.c_dim, device)
        with torch.no_grad():
            if style is None:
                img = G(z, c, truncation_psi=truncation_psi, truncation_center=center, noise_mode=noise_mode)
            else:
                ws = class_swap_ws(G, z, c, one_hot(style, G.c_dim, device), swap_layer,
                                   truncation_psi=truncation_psi, truncation_center=center)
                img = G.synthesis(ws, noise_mode=noise_mode)
        return to_uint8(img)

    if swap_grid:
        outdir.mkdir(parents=True, exist_ok=True)
        for seed in seed_list:
            images = np.concatenate([draw(seed, a, b) for a in contents for b in styles])
            path = outdir / f"swap_grid_seed{seed}.png"
            save_grid(images, path, columns=len(styles), row_labels=[class_names[a] for a in contents],
                      column_labels=[class_names[b] for b in styles])
            click.echo(f"Wrote {path} (rows: content class, columns: style class, swap layer {swap_layer})")
        return
    for content, style in pairs:
        name = class_names[content] if content is not None else ""
        folder = outdir / (name if style is None else f"{name}__style_{class_names[style]}")
        folder.mkdir(parents=True, exist_ok=True)
        images = []
        for seed in seed_list:
            image = draw(seed, content, style)
            save_grid(image, folder / f"seed{seed:04d}.png", columns=1)
            images.append(image[0])
        if grid:
            save_grid(np.stack(images), folder / "grid.png", columns=int(np.ceil(np.sqrt(len(images)))))
        click.echo(f"Wrote {len(seed_list)} images to {folder}/")


def one_hot(class_index, c_dim: int, device) -> torch.Tensor:
    """[1, c_dim]: all zeros for an unconditional network (class_index None)."""
    c = torch.zeros([1, c_dim], device=device)
    if class_index is not None:
        c[:, class_index] = 1
    return c


def check_swap_flags(style_spec, swap_layer, swap_grid) -> None:
    """A class swap needs the layer and something to swap to; refuse half-given swaps."""
    if style_spec is not None and swap_layer is None:
        raise ValueError("--style-class needs --swap-layer K: the first K ws come from --class, the rest from "
                         "--style-class")
    if swap_grid and swap_layer is None:
        raise ValueError("--swap-grid needs --swap-layer K: the first K ws come from the row's class, the rest "
                         "from the column's")
    if swap_layer is not None and style_spec is None and not swap_grid:
        raise ValueError("--swap-layer needs --style-class B (or --swap-grid): which class to take the later ws from")


def pick_swap_classes(G, class_names, class_spec, style_spec, swap_layer: int, swap_grid: bool) -> tuple:
    """(content indices, style indices) of a class swap; the grid defaults to every class."""
    if G.c_dim == 0:
        raise ValueError("a class swap (--style-class, --swap-grid) needs a conditional network; this one is "
                         "unconditional")
    if not 1 <= swap_layer <= G.num_ws - 1:
        raise ValueError(f"--swap-layer {swap_layer} is outside 1..{G.num_ws - 1} (this network has "
                         f"{G.num_ws} ws; 0 or {G.num_ws} would swap nothing)")
    if swap_grid:
        return (resolve_classes(class_spec or "all", class_names), resolve_classes(style_spec or "all", class_names))
    return pick_classes(class_spec, class_names, G.c_dim), resolve_classes(style_spec, class_names)


def parse_translate(text: str) -> tuple:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--translate {text!r} is not X,Y; write e.g. 0.1,-0.25") from None
    return x, y


def pick_classes(class_spec, class_names, c_dim: int) -> list:
    """Class indices to draw; [None] for an unconditional network."""
    if c_dim == 0:
        if class_spec is not None:
            raise ValueError("--class given, but this network is unconditional; drop --class")
        return [None]
    if class_spec is None:
        raise ValueError(f"this network is conditional: pass --class NAME (one of {', '.join(class_names)}) or --class all")
    return resolve_classes(class_spec, class_names)


if __name__ == "__main__":
    main()

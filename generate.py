"""Draw images of chosen classes: `python generate.py --class ghibli_male --seeds 0-63`."""

import math
from functools import partial
from pathlib import Path

import click
import numpy as np
import torch

from cstylegan.generation.drawer import Drawer
from cstylegan.generation.image_grid import save_grid
from cstylegan.generation.projected_w import class_restyle_ws, load_projected_w
from cstylegan.generation.seeds import parse_seeds
from cstylegan.generation.style_mix import parse_styles, style_mix_grid
from cstylegan.generation.video import FORMATS, check_format, loop_ws, write_video
from cstylegan.networks.stylegan3 import set_input_transform
from cstylegan.runtime.cli import FINITE, Command, FiniteFloat, bool_option
from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import check_can_write
from cstylegan.snapshots.checkpoint import newest_snapshot, open_for_inference

DEFAULT_RUNS = "training-runs"


@click.command(cls=Command)
@click.option("--network", "network_path", type=str,
              help=f"Snapshot to draw from.  [default: newest under {DEFAULT_RUNS}/]")
@click.option("--class", "class_spec", type=str,
              help="Class name, index, comma list, or all (conditional networks only). A network trained with "
              "--labels attributes draws any combination of its attributes, also one the data never had: "
              "openmoji_female, or spelt out, style=openmoji,gender=female; all = every combination.")
@click.option("--label", "label_text", type=str,
              help="For a network trained on vector labels: the label, one number per dimension (0.2,1,0); "
              "several joined by ';' draw one folder each.")
@click.option("--seeds", type=str, default="0-7", show_default=True, help="Seeds: 0-63, 1,5,9 or a mix.")
@click.option("--trunc", "truncation_psi", type=FINITE, default=1.0, show_default=True,
              help="Truncation psi: 1 = none, smaller = closer to the average face.")
@click.option("--trunc-center", type=click.Choice(["class", "global"]), default="class", show_default=True,
              help="Truncate toward the class's own average w, or the global one as NVlabs does.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--translate", default="0,0", show_default=True,
              help="StyleGAN3 only: shift the picture by X,Y (in image widths) through the input transform.")
@click.option("--rotate", type=FINITE, default=0.0, show_default=True,
              help="StyleGAN3 only: rotate the picture by this many degrees through the input transform.")
@click.option("--style-class", "style_spec", type=str,
              help="Class (or comma list, or all) whose ws drive the layers from --swap-layer on.")
@click.option("--swap-layer", type=int,
              help="Class swap: the first K ws come from --class, the rest from --style-class (1..num_ws-1).")
@bool_option("--swap-grid", default=False,
              help="Write OUTDIR/swap_grid_seed<S>.png per seed: rows --class (content), columns --style-class "
                   "(style), all classes by default.")
@bool_option("--style-mix", default=False,
              help="Write OUTDIR/stylemix_<class>.png: a grid with --col-seeds across the top, --row-seeds down "
                   "the left, and inside, each row seed's ws with the --styles ws taken from the column seed.")
@click.option("--row-seeds", help="Style mix: the seeds down the left, whose ws are kept (content), e.g. 0-3.")
@click.option("--col-seeds", help="Style mix: the seeds across the top, who give the --styles ws, e.g. 4-7.")
@click.option("--styles", default="coarse", show_default=True,
              help="Style mix: the ws taken from the column seed: coarse (those acting at 4-8 px: pose, shape), "
                   "middle (16-32 px: features), fine (64 px and up: colour, texture), or a w range like 0-6. "
                   "StyleGAN2's ws 2k and 2k+1 act at 4*2^k px.")
@bool_option("--video", default=False,
              help="Write OUTDIR/video.<format>: a loop that interpolates w through --seeds in order (one class), "
                   "or through the --class list (one seed), and back to the first.")
@click.option("--frames", type=click.IntRange(min=1), default=30, show_default=True,
              help="Video: frames per transition.")
@click.option("--fps", type=FiniteFloat(min=0, min_open=True), default=30, show_default=True,
              help="Video: frames per second.")
@click.option("--video-format", type=click.Choice(FORMATS), default="mp4", show_default=True,
              help="Video: mp4 (H.264 through the imageio-ffmpeg package), or an animated gif or webp (Pillow).")
@click.option("--projected-w", type=click.Path(dir_okay=False),
              help="Render the ws of an NVlabs projected_w.npz (w: [N, num_ws, w_dim]) as OUTDIR/proj00.png ... "
                   "instead of seeds. With --class B --swap-layer K (conditional networks): OUTDIR/B/proj00.png keeps "
                   "the first K projected ws and takes the rest from class B's average w.")
@click.option("--outdir", type=click.Path(file_okay=False), default="out", show_default=True)
@bool_option("--grid", default=False, help="Also write one grid image per class.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
def main(network_path, class_spec, label_text, seeds, truncation_psi, trunc_center, noise_mode, translate, rotate, style_spec,
         swap_layer, swap_grid, style_mix, row_seeds, col_seeds, styles, video, frames, fps, video_format, projected_w,
         outdir, grid, device):
    """Write OUTDIR/<class>/seed0000.png for every class and seed asked for.

    Seed s gives z = np.random.RandomState(s).randn(z_dim), as NVlabs' generate.py, so the
    same network, seed and class give the same picture as their tool (with --trunc 1).
    With --style-class B --swap-layer K, OUTDIR/<A>__style_<B>/seed0000.png takes its first
    K ws from class A and the rest from class B (same z): A's shapes in B's colours.
    --style-mix, --video and --projected-w write a style-mixing grid, an interpolation
    video or a projection instead (see each option).
    """
    check_modes(style_mix, video, projected_w, style_spec, swap_grid, row_seeds, col_seeds)
    check_swap_flags(style_spec, swap_layer, swap_grid, projected_w)
    seed_list = parse_seeds(seeds)
    check_can_write("--outdir", outdir)
    if video:
        check_format(video_format)
    if network_path is None:
        network_path = newest_snapshot(DEFAULT_RUNS)
    device = pick_device(device)
    opened = open_for_inference(network_path, device)
    G, labels = opened.G, opened.labels
    if label_text is not None:
        labels, class_spec = given_vectors(labels, label_text, class_spec)
    class_names = list(labels.class_names)
    drawer = Drawer(G, device, truncation_psi, trunc_center, noise_mode, label_space=labels)
    # Check everything a mode needs before anything is written; `job(outdir)` then writes it.
    if projected_w is not None:
        job = partial(write_projection, drawer, load_projected_w(projected_w, G.num_ws, G.w_dim).to(device),
                      pick_projected_classes(G, labels, class_spec, swap_layer), class_names, swap_layer)
    elif style_mix:
        job = partial(write_style_mix, drawer, pick_classes(class_spec, labels, G.c_dim), class_names,
                      parse_seeds(row_seeds), parse_seeds(col_seeds), parse_styles(styles, G))
    elif video:
        classes = pick_classes(class_spec, labels, G.c_dim)
        check_video_keys(seed_list, classes)
        job = partial(write_interpolation, drawer, seed_list, classes, frames, fps, video_format)
    elif swap_layer is None:
        pairs = [(k, None) for k in pick_classes(class_spec, labels, G.c_dim)]
        job = partial(write_images, drawer, seed_list, pairs, class_names, None, grid)
    else:
        contents, style_classes = pick_swap_classes(G, labels, class_spec, style_spec, swap_layer, swap_grid)
        if swap_grid:
            job = partial(write_swap_grids, drawer, seed_list, contents, style_classes, class_names, swap_layer)
        else:
            job = partial(write_images, drawer, seed_list, [(a, b) for a in contents for b in style_classes],
                          class_names, swap_layer, grid)
    move_input_grid(G, parse_translate(translate), rotate)
    click.echo(f"Network: {network_path}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    job(outdir)


def write_images(drawer, seed_list, pairs, class_names, swap_layer, grid: bool, outdir: Path) -> None:
    """OUTDIR/<class>/seed0000.png (or <A>__style_<B>/ for a swap), and grid.png with --grid."""
    for content, style in pairs:
        name = class_names[content] if content is not None else ""
        folder = outdir / (name if style is None else f"{name}__style_{class_names[style]}")
        folder.mkdir(parents=True, exist_ok=True)
        images = []
        for seed in seed_list:
            image = drawer.image(seed, content, style, swap_layer)
            save_grid(image, folder / f"seed{seed:04d}.png", columns=1)
            images.append(image[0])
        if grid:
            save_grid(np.stack(images), folder / "grid.png", columns=int(np.ceil(np.sqrt(len(images)))))
        click.echo(f"Wrote {len(seed_list)} images to {folder}/")


def write_swap_grids(drawer, seed_list, contents, style_classes, class_names, swap_layer: int, outdir: Path) -> None:
    """One grid per seed: rows the content class, columns the style class."""
    for seed in seed_list:
        images = np.concatenate([drawer.image(seed, a, b, swap_layer) for a in contents for b in style_classes])
        path = outdir / f"swap_grid_seed{seed}.png"
        save_grid(images, path, columns=len(style_classes), row_labels=[class_names[a] for a in contents],
                  column_labels=[class_names[b] for b in style_classes])
        click.echo(f"Wrote {path} (rows: content class, columns: style class, swap layer {swap_layer})")


def write_style_mix(drawer, classes, class_names, rows, cols, layers: range, outdir: Path) -> None:
    """One style-mixing grid per class: the row seed's ws, with `layers` from the column seed."""
    for k in classes:
        path = outdir / (f"stylemix_{class_names[k]}.png" if k is not None else "stylemix.png")
        grid = style_mix_grid(drawer.images, drawer.ws(rows, k), drawer.ws(cols, k), layers)
        save_grid(grid[np.newaxis], path, columns=1)
        click.echo(f"Wrote {path} (rows: seeds {','.join(map(str, rows))}, columns: seeds "
                   f"{','.join(map(str, cols))}, ws {layers.start}-{layers.stop - 1} from the column)")


def write_interpolation(drawer, seed_list, classes, frames: int, fps: float, video_format: str, outdir: Path) -> None:
    """A looping video through the seeds of one class, or through the classes of one seed."""
    if len(seed_list) > 1:
        keys = drawer.ws(seed_list, classes[0])
    else:
        keys = torch.cat([drawer.ws(seed_list, k) for k in classes])
    path = outdir / f"video.{video_format}"
    size = (drawer.G.img_resolution, drawer.G.img_resolution)
    count = write_video((drawer.images(ws)[0] for ws in loop_ws(keys, frames)), path, fps, video_format, size)
    click.echo(f"Wrote {path} ({count} frames, {fps:g} fps)")


def write_projection(drawer, projected, classes, class_names, swap_layer, outdir: Path) -> None:
    """OUTDIR/proj00.png ... of the projected ws as they are, or restyled as each class."""
    for k in classes:
        folder = outdir if k is None else outdir / class_names[k]
        folder.mkdir(exist_ok=True)
        ws = projected if k is None else class_restyle_ws(drawer.G, projected, k, swap_layer)
        for i, image in enumerate(drawer.images(ws)):
            save_grid(image[np.newaxis], folder / f"proj{i:02d}.png", columns=1)
        click.echo(f"Wrote {len(ws)} images to {folder}/")


def move_input_grid(G, shift: tuple, rotate: float) -> None:
    """--translate / --rotate: StyleGAN3's input grid only."""
    if shift != (0.0, 0.0) or rotate != 0:
        if not hasattr(G.synthesis, "input"):
            raise UserError("--translate and --rotate move a StyleGAN3 input grid; this is a StyleGAN2 network")
        set_input_transform(G, translate=shift, rotate_deg=rotate)


def check_modes(style_mix, video, projected_w, style_spec, swap_grid, row_seeds, col_seeds) -> None:
    """One kind of output per run; the style-mix seeds only with --style-mix, and both of them."""
    given = [name for name, on in (("--style-mix", style_mix), ("--video", video),
                                   ("--projected-w", projected_w is not None),
                                   ("--style-class/--swap-grid", style_spec is not None or swap_grid)) if on]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} write different things; choose one per run")
    if not style_mix and (row_seeds or col_seeds):
        raise UserError("--row-seeds and --col-seeds are for the style-mixing grid; add --style-mix")
    if style_mix and not (row_seeds and col_seeds):
        raise UserError("--style-mix needs --row-seeds (content, e.g. 0-3) and --col-seeds (style, e.g. 4-7)")


def check_swap_flags(style_spec, swap_layer, swap_grid, projected_w) -> None:
    """A class swap needs the layer and something to swap to; refuse half-given swaps."""
    if style_spec is not None and swap_layer is None:
        raise UserError("--style-class needs --swap-layer K: the first K ws come from --class, the rest from "
                         "--style-class")
    if swap_grid and swap_layer is None:
        raise UserError("--swap-grid needs --swap-layer K: the first K ws come from the row's class, the rest "
                         "from the column's")
    if swap_layer is not None and style_spec is None and not swap_grid and projected_w is None:
        raise UserError("--swap-layer needs --style-class B (or --swap-grid): which class to take the later ws from")


def check_video_keys(seed_list, classes) -> None:
    """A video runs through several seeds of one class or several classes of one seed."""
    if len(seed_list) > 1 and len(classes) > 1:
        raise UserError("--video interpolates between --seeds (one --class) or between classes (one seed); "
                         f"got {len(seed_list)} seeds and {len(classes)} classes")
    if len(seed_list) == 1 and len(classes) == 1:
        raise UserError("--video needs at least two --seeds (e.g. 0,5,9) or two classes (--class a,b with one seed)")


def given_vectors(labels, label_text: str, class_spec) -> tuple:
    """(a label space of the --label vectors, the class spec that draws them all)."""
    if labels.kind != "vector":
        raise UserError(f"--label is for networks trained on vector labels; this one takes --class "
                        f"({labels.kind} labels)")
    if class_spec is not None:
        raise UserError("--label and --class both given; a vector-label network takes --label only")
    return labels.with_vectors(label_text), "all"


def pick_projected_classes(G, labels, class_spec, swap_layer) -> list:
    """[None] to render the projection as it is, else the classes to restyle it as."""
    if class_spec is None:
        if swap_layer is not None:
            raise UserError("--projected-w with --swap-layer needs --class B: whose average w gives the later ws")
        return [None]
    if G.c_dim == 0:
        raise UserError("--class given, but this network is unconditional; drop --class to render the projection")
    if swap_layer is None or not 1 <= swap_layer <= G.num_ws - 1:
        given = "none given" if swap_layer is None else f"got {swap_layer}"
        raise UserError(f"--projected-w with --class needs --swap-layer K in 1..{G.num_ws - 1}: the first K ws "
                         f"stay the projection's, the rest are the class's average w; {given}")
    if labels.attributes:
        raise UserError("--projected-w with --class restyles toward a class's tracked average w, which a network "
                        "trained with --labels attributes does not keep; drop --class to render the projection")
    return labels.resolve(class_spec)


def pick_swap_classes(G, labels, class_spec, style_spec, swap_layer: int, swap_grid: bool) -> tuple:
    """(content indices, style indices) of a class swap; the grid defaults to every class."""
    if G.c_dim == 0:
        raise UserError("a class swap (--style-class, --swap-grid) needs a conditional network; this one is "
                         "unconditional")
    if not 1 <= swap_layer <= G.num_ws - 1:
        raise UserError(f"--swap-layer {swap_layer} is outside 1..{G.num_ws - 1} (this network has "
                         f"{G.num_ws} ws; 0 or {G.num_ws} would swap nothing)")
    if swap_grid:
        return labels.resolve(class_spec or "all"), labels.resolve(style_spec or "all")
    return pick_classes(class_spec, labels, G.c_dim), labels.resolve(style_spec)


def parse_translate(text: str) -> tuple:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--translate {text!r} is not X,Y; write e.g. 0.1,-0.25") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UserError(f"--translate {text!r}: both numbers must be finite; write e.g. 0.1,-0.25")
    return x, y


def pick_classes(class_spec, labels, c_dim: int) -> list:
    """Class indices to draw; [None] for an unconditional network."""
    if c_dim == 0:
        if class_spec is not None:
            raise UserError("--class given, but this network is unconditional; drop --class")
        return [None]
    if class_spec is None and labels.kind == "vector":
        raise UserError(f"this network takes vector labels ({', '.join(labels.vector_names)}): pass --label with "
                        f"{labels.c_dim} numbers, e.g. --label {','.join(['0.5'] * labels.c_dim)}")
    if class_spec is None:
        raise UserError(f"this network is conditional: pass --class NAME (one of {', '.join(labels.class_names)}) "
                        "or --class all")
    return labels.resolve(class_spec)


if __name__ == "__main__":
    main()

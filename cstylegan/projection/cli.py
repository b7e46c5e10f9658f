"""`python -m cstylegan.projection --network SNAP --target face.png`: a photo -> projected_w.npz.

Writes, in --outdir: target.png (the centred square the network sees), proj.png (the
reconstruction), projected_w.npz (w [1, num_ws, w_dim], as NVlabs' projector writes it, so
`generate.py --projected-w` and their tools read it), progress.png (the target, then the
projection at eight points of the run) and, with --save-video, proj.mp4 (target | projection
at every step).
"""

from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from cstylegan.data.image_prep import UnreadableImage
from cstylegan.generation.image_grid import save_grid, to_uint8
from cstylegan.generation.video import check_format, write_video
from cstylegan.projection.optimiser import load_target, project
from cstylegan.projection.perceptual import PERCEPTUAL_KINDS, perceptual_distance
from cstylegan.runtime.cli import Command, bool_option
from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.errors import UserError
from cstylegan.runtime.files import check_can_write, refuse_overwriting_inputs
from cstylegan.snapshots.checkpoint import open_for_inference

PROGRESS_COLUMNS = 8
OUTPUT_NAMES = ("target.png", "proj.png", "projected_w.npz", "progress.png", "proj.mp4")  # what it writes into --outdir


@click.command(cls=Command)
@click.option("--network", "network_path", required=True, help="Snapshot to project into (its G_ema; D for "
              "--perceptual discriminator).")
@click.option("--target", "target_path", required=True, type=click.Path(dir_okay=False),
              help="The photo: its centred square is resized to the network's resolution.")
@click.option("--class", "class_spec", help="Conditional networks: start from this class's average w "
              "(default: the average over all classes).")
@click.option("--steps", type=click.IntRange(min=1), default=500, show_default=True, help="Optimisation steps.")
@click.option("--perceptual", type=click.Choice(PERCEPTUAL_KINDS), default="pixel", show_default=True,
              help="pixel: pixel error alone (best measured so far, docs/projection.md); discriminator: plus "
                   "the snapshot's own D features; inception: plus the FID Inception's features.")
@bool_option("--w-plus", default=False, help="Optimise one w per layer (closer fit, less editable) instead of one w.")
@bool_option("--noise", "optimize_noise", default=True, show_default=True,
              help="Also optimise the constant noise maps (StyleGAN2), as NVlabs' projector does.")
@click.option("--seed", type=int, default=0, show_default=True)
@bool_option("--save-video", default=False, help="Also write proj.mp4: target and projection at every step.")
@click.option("--outdir", type=click.Path(file_okay=False), default="out/projection", show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
def main(network_path, target_path, class_spec, steps, perceptual, w_plus, optimize_noise, seed, save_video, outdir,
         device):
    """Find the w whose image looks like TARGET (noise-regularised, as NVlabs' projector), and write it."""
    if save_video:
        check_format("mp4")
    if not Path(target_path).is_file():
        raise UserError(f"--target {target_path}: file not found")
    refuse_overwriting_inputs({f"--outdir ({name})": Path(outdir) / name for name in OUTPUT_NAMES},
                              {"--target": target_path, "--network": network_path})
    check_can_write("--outdir", outdir)
    device = pick_device(device)
    opened = open_for_inference(network_path, device, with_D=True)
    G = opened.G
    if opened.labels.kind == "vector":
        raise UserError(f"{network_path} was trained on vector labels, which the projector cannot start from yet")
    if G.img_channels != 3:
        raise UserError(f"{network_path} draws {G.img_channels}-channel images; the projector fits colour photos "
                        "and takes RGB networks only")
    class_index = pick_class(class_spec, opened.labels, G.c_dim)
    class_vectors = opened.labels.class_vectors if G.c_dim else None
    try:
        target = load_target(target_path, G.img_resolution).to(device)
    except UnreadableImage as error:
        raise UserError(f"--target {target_path}: {error}") from None
    distance = perceptual_distance(perceptual, opened.D, device)

    with tqdm(total=steps, desc="projecting", unit="step") as bar:
        def on_step(step, value):
            bar.set_postfix(distance=f"{value:.4f}", refresh=False)
            bar.update()
        result = project(G, target, steps=steps, class_index=class_index, distance=distance, w_plus=w_plus,
                         optimize_noise=optimize_noise, on_step=on_step, seed=seed, class_vectors=class_vectors)

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    target_uint8, proj_uint8 = to_uint8(target), to_uint8(result.image)
    save_grid(target_uint8, outdir / "target.png", columns=1)
    save_grid(proj_uint8, outdir / "proj.png", columns=1)
    np.savez(outdir / "projected_w.npz", w=result.ws.cpu().numpy())
    chosen = np.linspace(0, steps - 1, PROGRESS_COLUMNS).round().astype(int)
    progress = np.concatenate([target_uint8, render(G, result.history[chosen], device)])
    save_grid(progress, outdir / "progress.png", columns=len(progress),
              column_labels=["target"] + [f"step {s + 1}" for s in chosen])
    if save_video:
        frames = (np.concatenate([target_uint8[0], image], axis=1) for ws in result.history.split(16)
                  for image in render(G, ws, device))
        write_video(frames, outdir / "proj.mp4", fps=30, video_format="mp4",
                    size=(2 * G.img_resolution, G.img_resolution))
    click.echo(f"Wrote {outdir}/projected_w.npz, proj.png, target.png, progress.png"
               + (", proj.mp4" if save_video else "")
               + f"; final {perceptual} distance {result.distances[-1]:.4f}, PSNR {psnr(target_uint8, proj_uint8):.1f} dB")


@torch.no_grad()
def render(G, ws: torch.Tensor, device) -> np.ndarray:
    """uint8 [N, H, W, 3] of ws [N, num_ws, w_dim], with the network's own constant noise."""
    return np.concatenate([to_uint8(G.synthesis(chunk.to(device), noise_mode="const")) for chunk in ws.split(16)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def pick_class(class_spec, labels, c_dim: int):
    """The class index to start from, or None (unconditional, or the all-class average)."""
    if class_spec is None:
        return None
    if c_dim == 0:
        raise UserError("--class given, but this network is unconditional; drop --class")
    classes = labels.resolve(class_spec)
    if len(classes) != 1:
        raise UserError(f"--class {class_spec}: projection starts from one class; name one")
    return classes[0]

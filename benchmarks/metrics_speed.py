"""Speed of the metrics on this machine: Inception feature extraction (with and without the
clean resize), and the wall time of FID for a generator.

    python benchmarks/metrics_speed.py --data all_styles64.zip --num-gen 1000
    python benchmarks/metrics_speed.py --data all_styles64.zip --num-gen 50000 --res 256 --cfg paper256 --device cuda

FID here is compute_metrics(G, data, ["fid"]) with a randomly initialised conditional
generator (speed does not depend on training; `--res` and `--cfg` choose its size, the
data only supplies the real images), timed twice: with the real images' statistics not yet
cached (a first run) and cached (every later run).
"""

import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.config import CFG_NAMES, TrainConfig  # noqa: E402
from cstylegan.data.dataset import ImageDataset  # noqa: E402
from cstylegan.metrics.compute import compute_metrics  # noqa: E402
from cstylegan.metrics.fid import frechet_distance  # noqa: E402
from cstylegan.metrics.inception import INPUT_SIZE, clean_resize, extract_features, load_inception  # noqa: E402
from cstylegan.networks import GENERATORS  # noqa: E402
from cstylegan.runtime.cli import Command  # noqa: E402
from cstylegan.runtime.devices import pick_device  # noqa: E402


def per_second(count: int, fn) -> float:
    """`count` over the seconds `fn` takes, GPU work included."""
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


@click.command(cls=Command)
@click.option("--data", required=True, help="A labelled data set, e.g. the emoji set at 64 px: FID's reals.")
@click.option("--num-gen", type=int, default=1000, show_default=True)
@click.option("--images", type=int, default=64, show_default=True, help="Images for the extraction speed.")
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--res", "resolution", type=int, help="The generator's resolution.  [default: the data's]")
@click.option("--cfg", default="small", show_default=True, type=click.Choice(CFG_NAMES),
              help="The generator's preset (its channels).")
@click.option("--inception", type=click.Path(exists=True, dir_okay=False),
              help="The TF-Inception weights file.  [default: found as the metrics find it]")
def main(data, num_gen, images, batch, device, resolution, cfg, inception):
    device = pick_device(device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    start = time.perf_counter()
    net = load_inception(inception, device=device)
    print(f"load Inception: {time.perf_counter() - start:.1f} s")

    rng = np.random.default_rng(0)
    uint8 = rng.integers(0, 256, (images, 3, 64, 64), dtype=np.uint8)
    resized = np.stack([clean_resize(image) for image in uint8[:batch]]).transpose(0, 3, 1, 2)
    extract_features(net, [resized[:2]], 2, device=device, progress=False, resize=False)  # warm-up
    resize_rate = per_second(images, lambda: [clean_resize(image) for image in uint8])
    with_resize = per_second(images, lambda: extract_features(
        net, (uint8[i : i + batch] for i in range(0, images, batch)), images, device=device, progress=False))
    without_resize = per_second(images, lambda: extract_features(
        net, [resized] * (images // batch), images, device=device, progress=False, resize=False))
    print(f"clean resize alone (64 -> {INPUT_SIZE} px): {resize_rate:.0f} img/s")
    print(f"features with clean resize: {with_resize:.2f} img/s; network alone (pre-resized): {without_resize:.2f} img/s")

    sigma = np.cov(rng.standard_normal((4096, 2048)), rowvar=False)
    start = time.perf_counter()
    frechet_distance(np.zeros(2048), sigma, np.ones(2048), sigma * 1.1)
    fid_math = time.perf_counter() - start
    print(f"one FID from 2048-d statistics: {fid_math:.1f} s")

    dataset = ImageDataset(data, use_labels=False)
    resolution = resolution or dataset.resolution
    config = TrainConfig(data="", cfg=cfg).resolve(resolution)
    G_kwargs, _ = config.network_kwargs(len(dataset.class_names))
    G = GENERATORS[config.generator_family](**G_kwargs).eval().requires_grad_(False).to(device)
    z = torch.randn(batch, G.z_dim, device=device)
    c = torch.eye(G.c_dim, device=device)[torch.arange(batch) % G.c_dim]
    with torch.no_grad():
        G(z, c, noise_mode="const")
        gen_rate = per_second(batch, lambda: G(z, c, noise_mode="const"))
    print(f"generator ({resolution} px, cfg {cfg}): {gen_rate:.0f} img/s")

    with tempfile.TemporaryDirectory() as cache_dir:
        run = partial(compute_metrics, G, dataset, ["fid"], num_gen, device=device, batch=batch, cache_dir=cache_dir,
                      inception_path=inception, progress=False)
        for label in ("reals not cached", "reals cached"):
            start = time.perf_counter()
            fid = run()["fid"]
            seconds = time.perf_counter() - start
            print(f"FID, {num_gen} {resolution} px fakes vs {len(dataset.names)} {dataset.resolution} px reals, {label}: "
                  f"{seconds:.0f} s (FID {fid:.1f})")
    per_fake = (seconds - fid_math) / num_gen
    print(f"EXTRAPOLATED from the cached run, linear in the fakes: 10k fakes {(per_fake * 10000 + fid_math) / 60:.0f} min")


if __name__ == "__main__":
    main()

"""Training and generation speed of conditional StyleGAN2, printed as a table.

Each configuration runs in its own process so that its peak memory is its own. The
training figure is amortised over the lazy-regularisation schedule: one image costs
G main + D main + G path length / 4 + D R1 / 16, each phase timed on its own.

    python benchmarks/train_speed.py                      # 32 and 64 px, small and auto
    python benchmarks/train_speed.py --res 256 --cfg paper256 --device cuda
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.cli import Command  # noqa: E402
from cstylegan.config import TrainConfig  # noqa: E402
from cstylegan.networks.discriminator import Discriminator  # noqa: E402
from cstylegan.networks import GENERATORS  # noqa: E402
from cstylegan.devices import peak_memory_gb, pick_device  # noqa: E402
from cstylegan.training.loop import optimizer, set_requires_grad, step  # noqa: E402
from cstylegan.training.loss import StyleGAN2Loss  # noqa: E402

NUM_CLASSES = 4


def timed(fn, repeats: int, device) -> float:
    """Mean seconds per call after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def measure(resolution: int, cfg: str, batch: int, repeats: int, device_name: str, cbase=None, cmax=None) -> dict:
    device = pick_device(device_name)
    config = TrainConfig(data="", cfg=cfg, batch=batch, cbase=cbase, cmax=cmax).resolve(resolution)
    G_kwargs, D_kwargs = config.network_kwargs(NUM_CLASSES)
    G = GENERATORS[config.generator_family](**G_kwargs).train().requires_grad_(False).to(device)
    D = Discriminator(**D_kwargs).train().requires_grad_(False).to(device)
    G_params, D_params = list(G.parameters()), list(D.parameters())
    regularise_G = config.pl_weight > 0 and config.G_reg_interval
    G_opt = optimizer(G_params, config.glr, config.G_reg_interval if regularise_G else None)
    D_opt = optimizer(D_params, config.dlr, config.D_reg_interval)
    loss = StyleGAN2Loss(G, D, r1_gamma=config.gamma, style_mixing_prob=config.style_mixing_prob,
                         pl_weight=config.pl_weight, blur_init_sigma=config.blur_init_sigma,
                         blur_fade_kimg=config.blur_fade_kimg)
    real_img = torch.rand([batch, 3, resolution, resolution], device=device) * 2 - 1
    c = torch.eye(NUM_CLASSES, device=device)[torch.arange(batch) % NUM_CLASSES]
    z = torch.randn([batch, G.z_dim], device=device)

    def phase(params, opt, run):
        def go():
            set_requires_grad(params, True)
            phase_loss, _ = run()
            step(params, opt, phase_loss)
            set_requires_grad(params, False)

        return go

    seconds = {
        "G_main": timed(phase(G_params, G_opt, lambda: loss.G_main(z, c)), repeats, device),
        "D_main": timed(phase(D_params, D_opt, lambda: loss.D_main(real_img, c, z, c)), repeats, device),
        "D_r1": timed(phase(D_params, D_opt, lambda: loss.D_r1(real_img, c, gain=16)), repeats, device),
    }
    per_batch = seconds["G_main"] + seconds["D_main"] + seconds["D_r1"] / config.D_reg_interval
    if regularise_G:
        gain = config.G_reg_interval
        seconds["G_pl"] = timed(phase(G_params, G_opt, lambda: loss.G_pl(z, c, gain=gain)), repeats, device)
        per_batch += seconds["G_pl"] / gain
    G.eval()
    with torch.no_grad():
        gen_seconds = timed(lambda: G(z, c, noise_mode="const"), repeats, device)
    return dict(
        resolution=resolution,
        cfg=cfg,
        cbase=config.cbase,
        cmax=config.cmax,
        batch=batch,
        device=str(device),
        G_params=sum(p.numel() for p in G.parameters()),
        D_params=sum(p.numel() for p in D.parameters()),
        train_img_per_s=batch / per_batch,
        sec_per_kimg=per_batch / batch * 1000,
        gen_img_per_s=batch / gen_seconds,
        peak_mem_gb=peak_memory_gb(device),
        phase_seconds=seconds,
    )


@click.command(cls=Command)
@click.option("--res", "resolutions", default="32,64", show_default=True, help="Comma list of resolutions.")
@click.option("--cfg", "cfgs", default="small,auto", show_default=True, help="Comma list of --cfg presets.")
@click.option("--batch", default=32, show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Timed calls per phase, after one warm-up.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--cbase", type=int, help="Override the preset's channel base (e.g. to fit StyleGAN3 on a CPU).")
@click.option("--cmax", type=int, help="Override the preset's most channels.")
@click.option("--one", is_flag=True, hidden=True, help="Measure one configuration and print JSON (internal).")
def main(resolutions, cfgs, batch, repeats, device, cbase, cmax, one):
    if one:
        print(json.dumps(measure(int(resolutions), cfgs, batch, repeats, device, cbase, cmax)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"{'res':>4} {'cfg':>11} {'cbase':>6} {'cmax':>5} {'batch':>5} {'G params':>10} {'D params':>10} "
          f"{'train img/s':>11} {'s/kimg':>8} {'gen img/s':>9} {'peak GB':>7}")
    for resolution in resolutions.split(","):
        for cfg in cfgs.split(","):
            command = [sys.executable, __file__, "--one", "--res", resolution, "--cfg", cfg,
                       "--batch", str(batch), "--repeats", str(repeats), "--device", device]
            command += [arg for flag, value in (("--cbase", cbase), ("--cmax", cmax)) if value for arg in (flag, str(value))]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(f"{r['resolution']:>4} {r['cfg']:>11} {r['cbase']:>6} {r['cmax']:>5} {r['batch']:>5} {r['G_params']:>10,} {r['D_params']:>10,} "
                  f"{r['train_img_per_s']:>11.1f} {r['sec_per_kimg']:>8.1f} {r['gen_img_per_s']:>9.1f} "
                  f"{r['peak_mem_gb']:>7.2f}", flush=True)


if __name__ == "__main__":
    main()

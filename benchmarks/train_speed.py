"""Training and generation speed of conditional StyleGAN2, printed as a table.

Each configuration runs in its own process so that its peak memory is its own. The
training figure is amortised over the lazy-regularisation schedule: one image costs
G main + D main + G path length / 4 + D R1 / 16, each phase timed on its own.

    python benchmarks/train_speed.py                      # 32 and 64 px, small and auto
    python benchmarks/train_speed.py --res 256 --cfg paper256 --device cuda
    python benchmarks/train_speed.py --res 64 --cfg auto --vs-official ~/src/stylegan3 --rounds 3

With --vs-official, NVlabs' own networks and loss (from the user's copy of their code) run
the same configuration in the next process, and the ratios are printed; with --rounds N
the two take turns N times and the median ratio is printed with its range.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import click
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.config import D_BACKBONES, TrainConfig  # noqa: E402
from cstylegan.networks import DISCRIMINATORS, GENERATORS  # noqa: E402
from cstylegan.runtime.cli import Command, bool_option  # noqa: E402
from cstylegan.runtime.cpu_allocator import reuse_freed_memory  # noqa: E402
from cstylegan.runtime.devices import peak_memory_gb, pick_device  # noqa: E402
from cstylegan.runtime.distributed import Processes  # noqa: E402
from cstylegan.training.loss import StyleGAN2Loss  # noqa: E402
from cstylegan.training.phases import optimizer, phase_step, set_requires_grad  # noqa: E402
from benchmarks.official_code import check_copy, official_setup  # noqa: E402
from benchmarks.timing import seconds_per_call  # noqa: E402

NUM_CLASSES = 4


def our_setup(config, G_kwargs: dict, D_kwargs: dict, device):
    """(G, D, {phase name: fn(real_img, c, z) that runs one training step of that phase})."""
    G = GENERATORS[config.generator_family](**G_kwargs).train().requires_grad_(False).to(device)
    D = DISCRIMINATORS[config.dbackbone](**D_kwargs).train().requires_grad_(False).to(device)
    G_params, D_params = list(G.parameters()), list(D.parameters())
    regularise_G = config.pl_weight > 0 and config.G_reg_interval
    G_opt = optimizer(G_params, config.glr, config.G_reg_interval if regularise_G else None)
    D_opt = optimizer(D_params, config.dlr, config.D_reg_interval)
    loss = StyleGAN2Loss(G, D, r1_gamma=config.gamma, style_mixing_prob=config.style_mixing_prob,
                         pl_weight=config.pl_weight, blur_init_sigma=config.blur_init_sigma,
                         blur_fade_kimg=config.blur_fade_kimg)

    def phase(params, opt, run):
        def go(real_img, c, z):
            set_requires_grad(params, True)
            phase_loss, _ = run(real_img, c, z)
            phase_step(params, opt, lambda index: (phase_loss, {}), 1, Processes())
            set_requires_grad(params, False)

        return go

    phases = {
        "G_main": phase(G_params, G_opt, lambda real_img, c, z: loss.G_main(z, c)),
        "D_main": phase(D_params, D_opt, lambda real_img, c, z: loss.D_main(real_img, c, z, c)),
        "D_r1": phase(D_params, D_opt, lambda real_img, c, z: loss.D_r1(real_img, c, gain=config.D_reg_interval)),
    }
    if regularise_G:
        phases["G_pl"] = phase(G_params, G_opt, lambda real_img, c, z: loss.G_pl(z, c, gain=config.G_reg_interval))
    return G, D, phases


def convolution_backward_flops(grad_output, x, weight, bias_sizes, stride, padding, dilation, transposed,
                               output_padding, groups, output_mask) -> int:
    """FLOPs of aten.convolution_backward: each requested gradient (input, weight) costs what
    the forward convolution did. FlopCounterMode's own formula leaves out `groups`, which
    overcounts grouped and depthwise convolutions (FIR filters, NVlabs' modulated conv) by up
    to the group count."""
    # Every element on the convolution's "many" side (the output, or the input of a
    # transposed one) is a sum over weight.shape[1] channels times the kernel taps.
    many = x if transposed else grad_output
    forward = 2 * many.numel() * weight[0].numel()
    return forward * (int(output_mask[0]) + int(output_mask[1]))


class FlopCount(TorchDispatchMode):
    """FLOPs of every op run inside, by FlopCounterMode's own per-op formulas (matmuls and
    convolutions) except for the convolution backward (`convolution_backward_flops`).
    FlopCounterMode itself tracks modules with hooks that autograd.grad(create_graph=True)
    refuses, which R1 and path length need."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func._overloadpacket is torch.ops.aten.convolution_backward:
            self.total += convolution_backward_flops(*args, **kwargs)
        elif func._overloadpacket in flop_registry:
            self.total += flop_registry[func._overloadpacket](*args, **kwargs, out_val=out)
        return out


def counted_flops(fn) -> int:
    with FlopCount() as counter:
        fn()
    return counter.total


def measure(resolution: int, cfg: str, batch: int, repeats: int, device_name: str, cbase=None, cmax=None,
            official=None, dbackbone="resnet", channels_last=False) -> dict:
    """Seconds of each phase and the amortised img/s of one setup: ours, or with `official`
    (a directory) NVlabs' code on the same configuration."""
    device = pick_device(device_name)
    if device.type == "cpu" and not official:
        reuse_freed_memory()  # as train.py does
    config = TrainConfig(data="", cfg=cfg, batch=batch, cbase=cbase, cmax=cmax, dbackbone=dbackbone,
                         channels_last=channels_last).resolve(resolution)
    G_kwargs, D_kwargs = config.network_kwargs(NUM_CLASSES)
    torch.manual_seed(0)
    if official:
        G, D, phases = official_setup(official, config, G_kwargs, D_kwargs, device)
    else:
        G, D, phases = our_setup(config, G_kwargs, D_kwargs, device)
    real_img = torch.rand([batch, 3, resolution, resolution], device=device) * 2 - 1
    c = torch.eye(NUM_CLASSES, device=device)[torch.arange(batch) % NUM_CLASSES]
    z = torch.randn([batch, G.z_dim], device=device)
    seconds = {name: statistics.mean(seconds_per_call(lambda: run(real_img, c, z), repeats, device))
               for name, run in phases.items()}
    flops = {name: counted_flops(lambda: run(real_img, c, z)) for name, run in phases.items()}
    G.eval()
    with torch.no_grad():
        gen_seconds = statistics.mean(seconds_per_call(lambda: G(z, c, noise_mode="const"), repeats, device))
        gen_flops = counted_flops(lambda: G(z, c, noise_mode="const"))
    intervals = {"G_main": 1, "D_main": 1, "D_r1": config.D_reg_interval, "G_pl": config.G_reg_interval}
    per_batch = sum(seconds[name] / intervals[name] for name in phases)
    flops_per_batch = sum(flops[name] / intervals[name] for name in phases)
    return dict(
        code="official" if official else "ours",
        dbackbone="resnet" if official else dbackbone,
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
        train_gflop_per_img=flops_per_batch / batch / 1e9,
        gen_gflop_per_img=gen_flops / batch / 1e9,
        train_tflop_per_s=flops_per_batch / per_batch / 1e12,
        peak_mem_gb=peak_memory_gb(device),
        phase_seconds=seconds,
    )


def measure_in_subprocess(resolution, cfg, batch, repeats, device, cbase, cmax, official=None,
                          dbackbone="resnet", channels_last=False) -> dict:
    """One measure() in a fresh process, so that its peak memory is its own."""
    command = [sys.executable, __file__, "--one", "--res", str(resolution), "--cfg", cfg,
               "--batch", str(batch), "--repeats", str(repeats), "--device", device, "--dbackbone", dbackbone]
    for flag, value in (("--cbase", cbase), ("--cmax", cmax), ("--vs-official", official)):
        if value:
            command += [flag, str(value)]
    if channels_last:
        command.append("--channels-last")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"measuring {'the official code' if official else 'ours'} at {resolution} px {cfg} failed:\n"
                         + result.stderr[-2000:])
    return json.loads(result.stdout.splitlines()[-1])


@click.command(cls=Command)
@click.option("--res", "resolutions", default="32,64", show_default=True, help="Comma list of resolutions.")
@click.option("--cfg", "cfgs", default="small,auto", show_default=True, help="Comma list of --cfg presets.")
@click.option("--batch", default=32, show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Timed calls per phase, after one warm-up.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--cbase", type=int, help="Override the preset's channel base (e.g. to fit StyleGAN3 on a CPU).")
@click.option("--cmax", type=int, help="Override the preset's most channels.")
@click.option("--vs-official", "official", type=click.Path(exists=True, file_okay=False),
              help="A local copy of NVlabs/stylegan3: measure its code on every configuration too, right "
                   "after ours, and print the ratios.")
@click.option("--peak-tflops", type=float,
              help="The device's peak TFLOP/s (e.g. 989 for an H100's dense bf16): adds a utilisation column.")
@click.option("--dbackbone", "dbackbones", default="resnet", show_default=True,
              help="Comma list of our discriminators to measure: resnet, vit (the official code has resnet only).")
@bool_option("--channels-last", "channels_last", default=False,
              help="NVlabs' fp16_channels_last for both codes: the float16 blocks (CUDA only) in NHWC.")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(min=1),
              help="With --vs-official: measure ours then theirs this many times in turn and print the median "
                   "ratio and its range (the CPU's speed drifts between processes).")
@click.option("--one", is_flag=True, hidden=True, help="Measure one configuration and print JSON (internal).")
def main(resolutions, cfgs, batch, repeats, device, cbase, cmax, official, peak_tflops, dbackbones, channels_last, rounds, one):
    """Training and generation img/s and peak memory, each configuration in its own process."""
    unknown = [name for name in dbackbones.split(",") if name not in D_BACKBONES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: choose resnet and/or vit", param_hint="--dbackbone")
    if official:
        check_copy(official)
    if one:
        print(json.dumps(measure(int(resolutions), cfgs, batch, repeats, device, cbase, cmax, official, dbackbones,
                                 channels_last)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, CSTYLEGAN_OPS "
          f"{os.environ.get('CSTYLEGAN_OPS', 'fast')}" + (", channels-last" if channels_last else "")
          + (f", official code from {official}" if official else ""))
    print(f"{'code':>8} {'D':>6} {'res':>4} {'cfg':>11} {'cbase':>6} {'cmax':>5} {'batch':>5} {'G params':>10} {'D params':>10} "
          f"{'train img/s':>11} {'s/kimg':>8} {'gen img/s':>9} {'peak GB':>7} {'GFLOP/img':>9} {'TFLOP/s':>7}"
          + (f" {'util':>6}" if peak_tflops else ""))
    for resolution in resolutions.split(","):
        for cfg in cfgs.split(","):
            ratios = []
            for _ in range(rounds):
                rows = [measure_in_subprocess(resolution, cfg, batch, repeats, device, cbase, cmax, dbackbone=backbone,
                                              channels_last=channels_last)
                        for backbone in dbackbones.split(",")]
                if official:
                    rows.append(measure_in_subprocess(resolution, cfg, batch, repeats, device, cbase, cmax, official,
                                                      channels_last=channels_last))
                    ratios.append({key: rows[0][key] / rows[-1][key]
                                   for key in ("train_img_per_s", "gen_img_per_s", "peak_mem_gb")})
                for r in rows:
                    print(f"{r['code']:>8} {r['dbackbone']:>6} {r['resolution']:>4} {r['cfg']:>11} {r['cbase']:>6} {r['cmax']:>5} {r['batch']:>5} "
                          f"{r['G_params']:>10,} {r['D_params']:>10,} {r['train_img_per_s']:>11.2f} {r['sec_per_kimg']:>8.1f} "
                          f"{r['gen_img_per_s']:>9.1f} {r['peak_mem_gb']:>7.2f} {r['train_gflop_per_img']:>9.1f} "
                          f"{r['train_tflop_per_s']:>7.3f}"
                          + (f" {r['train_tflop_per_s'] / peak_tflops:>6.1%}" if peak_tflops else ""), flush=True)
            if official:
                print(f"{'ratio':>8} ours/official" + (f", median of {rounds} rounds" if rounds > 1 else "") + ": "
                      + ", ".join(f"{name} {median_and_range([r[key] for r in ratios])}" for name, key in
                                  (("train", "train_img_per_s"), ("generation", "gen_img_per_s"),
                                   ("peak memory", "peak_mem_gb"))), flush=True)


def median_and_range(values: list) -> str:
    """'2.10x' for one value; '2.10x (2.01-2.34)' for several."""
    return f"{statistics.median(values):.2f}x" + (f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else "")

if __name__ == "__main__":
    main()

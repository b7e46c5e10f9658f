"""Milliseconds per call of the elementwise and filtering ops under each CSTYLEGAN_OPS path,
and how far each path's output is from the reference one.

    python benchmarks/ops_speed.py                           # StyleGAN-sized tensors
    python benchmarks/ops_speed.py --impl reference,fast     # skip torch.compile

Ops: bias_act (lrelu, gain sqrt 2, clamp 256, as every StyleGAN layer), upfirdn2d's 2x
upsampling with StyleGAN3-T's 12-tap separable filter, and filtered_lrelu (up 2, down 2).
"fwd" runs under torch.no_grad(); "fwd+bwd" also back-propagates a random gradient.
"""

import sys
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.networks.ops import ops_switch  # noqa: E402
from cstylegan.networks.ops.bias_act import bias_act  # noqa: E402
from cstylegan.networks.ops.filtered_lrelu import filtered_lrelu  # noqa: E402
from cstylegan.networks.ops.upfirdn2d import upsample2d  # noqa: E402
from cstylegan.runtime.cli import Command  # noqa: E402
from cstylegan.runtime.cpu_allocator import reuse_freed_memory  # noqa: E402
from cstylegan.runtime.devices import pick_device  # noqa: E402
from benchmarks.timing import seconds_per_call  # noqa: E402

IMPLS = ("reference", "fast", "fused")


def op_cases(batch: int, channels: int, size: int, device) -> dict:
    """{name: (fn(x, b) -> y, x shape)} with fixed filters and bias."""
    taps = torch.kaiser_window(12, periodic=False, beta=8.0) * torch.sinc((torch.arange(12) - 5.5) / 2)
    f = (taps / taps.sum()).to(device)
    return {
        "bias_act": (lambda x, b: bias_act(x, b, act="lrelu", clamp=256), (batch, channels, size, size)),
        "upsample2d": (lambda x, b: upsample2d(x, f), (batch, channels, size // 2, size // 2)),
        "filtered_lrelu": (lambda x, b: filtered_lrelu(x, f, f, b, up=2, down=2, padding=11, clamp=256),
                           (batch, channels, size, size)),
    }


@click.command(cls=Command)
@click.option("--batch", default=16, show_default=True)
@click.option("--channels", default=256, show_default=True)
@click.option("--size", default=64, show_default=True, help="Feature map size in pixels (the input's, for bias_act).")
@click.option("--impl", "impls", default=",".join(IMPLS), show_default=True,
              help="Comma list of CSTYLEGAN_OPS paths to time.")
@click.option("--repeats", default=5, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(batch, channels, size, impls, repeats, device):
    """Time bias_act, upsample2d and filtered_lrelu under each ops path."""
    impls = impls.split(",")
    unknown = [impl for impl in impls if impl not in IMPLS]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: choose from {', '.join(IMPLS)}", param_hint="--impl")
    device = pick_device(device)
    if device.type == "cpu":
        reuse_freed_memory()  # as train.py does
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"batch {batch}, {channels} channels, {size} px")
    print(f"{'op':>15} {'ops':>9} {'fwd ms':>8} {'fwd+bwd ms':>10} {'max |diff| vs reference':>24}")
    torch.manual_seed(0)
    for name, (fn, shape) in op_cases(batch, channels, size, device).items():
        x = torch.randn(shape, device=device) * 3
        b = torch.randn(channels, device=device)
        ops_switch.set_impl("reference")
        with torch.no_grad():
            expected = fn(x, b)
        dy = torch.randn_like(expected)
        for impl in impls:
            ops_switch.set_impl(impl)
            with torch.no_grad():
                forward_ms = min(seconds_per_call(lambda: fn(x, b), repeats, device)) * 1e3
                diff = (fn(x, b) - expected).abs().max().item()
            xg, bg = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
            backward = seconds_per_call(lambda: torch.autograd.grad(fn(xg, bg), [xg], dy), repeats, device)
            backward_ms = min(backward) * 1e3
            print(f"{name:>15} {impl:>9} {forward_ms:>8.3f} {backward_ms:>10.3f} {diff:>24.2e}", flush=True)


if __name__ == "__main__":
    main()

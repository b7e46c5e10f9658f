"""Mixed precision (NVlabs' num_fp16_res, CUDA only) run on the CPU: the float16 layers
agree with float32 to float16 accuracy, really run in float16, and train with finite
gradients through R1's and path length's double backward."""

import pytest
import torch

from cstylegan.networks import GENERATORS, precision
from cstylegan.networks.discriminator import Discriminator
from cstylegan.training.loss import StyleGAN2Loss

SIZES = dict(img_resolution=32, img_channels=3, channel_base=1024, channel_max=64, num_fp16_res=4, conv_clamp=256)


@pytest.fixture
def half_on_cpu(monkeypatch):
    monkeypatch.setattr(precision, "HALF_PRECISION_DEVICES", ("cuda", "cpu"))


def networks(family):
    torch.manual_seed(0)
    G = GENERATORS[family](z_dim=32, c_dim=4, w_dim=32, **SIZES)
    return G, Discriminator(c_dim=4, **SIZES)


def record_output_dtypes(*modules) -> list:
    """A list that collects the dtype of every float tensor output of the modules' parts."""
    seen = []
    for child in (part for module in modules for part in module.modules()):
        child.register_forward_hook(lambda m, args, out: seen.extend(
            t.dtype for t in (out if isinstance(out, tuple) else (out,)) if torch.is_tensor(t) and t.is_floating_point()))
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_float16_layers_agree_with_float32(family, monkeypatch):
    G, D = networks(family)
    G.eval()
    z, c, img = torch.randn(4, 32), torch.eye(4), torch.randn(4, 3, 32, 32)
    dtypes = record_output_dtypes(G, D)
    full_G, full_D = G(z, c, noise_mode="const"), D(img, c)
    assert dtypes and torch.float16 not in dtypes
    monkeypatch.setattr(precision, "HALF_PRECISION_DEVICES", ("cuda", "cpu"))
    half_G, half_D = G(z, c, noise_mode="const"), D(img, c)
    assert torch.float16 in dtypes  # the marked layers did run in float16
    assert half_G.dtype == half_D.dtype == torch.float32  # and the outputs come back in float32
    assert 0 < (half_G - full_G).abs().max() < 1e-2 * full_G.abs().max()
    assert 0 < (half_D - full_D).abs().max() < 1e-2 * full_D.abs().max()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_float16_training_step_has_finite_gradients(family, half_on_cpu):
    G, D = networks(family)
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0, pl_weight=2.0 if family == "stylegan2" else 0.0)
    z, c, real = torch.randn(4, 32), torch.eye(4), torch.rand(4, 3, 32, 32) * 2 - 1
    phases = [(G, lambda: loss.G_main(z, c)), (D, lambda: loss.D_main(real, c, z, c)), (D, lambda: loss.D_r1(real, c, gain=16))]
    if family == "stylegan2":
        phases.append((G, lambda: loss.G_pl(z, c, gain=4)))
    for module, run in phases:
        module.zero_grad(set_to_none=True)
        value, _ = run()
        value.backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert torch.isfinite(value) and grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def layer_input_formats(*modules) -> list:
    """(dtype, channels-last?) of the 4-D input of every convolution layer of the modules."""
    seen = []
    for layer in (part for module in modules for part in module.modules() if hasattr(part, "weight")):
        layer.register_forward_pre_hook(lambda m, args: seen.extend(
            (x.dtype, x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            for x in args[:1] if torch.is_tensor(x) and x.ndim == 4))
    return seen


def test_channels_last_float16_layers_compute_the_same(half_on_cpu):
    """--channels-last changes the layout of the float16 blocks' activations, not a number."""
    results = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        G = GENERATORS["stylegan2"](z_dim=32, c_dim=4, w_dim=32, fp16_channels_last=channels_last, **SIZES)
        D = Discriminator(c_dim=4, block_kwargs=dict(fp16_channels_last=channels_last), **SIZES)
        formats = layer_input_formats(G, D)
        z, c = torch.randn(4, 32, generator=torch.Generator().manual_seed(1)), torch.eye(4)
        logits = D(G(z, c, noise_mode="const"), c)
        logits.square().sum().backward()
        assert logits.dtype == torch.float32
        # Every float16 layer reads channels-last with the flag and contiguous without; float32 layers never change.
        assert {layout for dtype, layout in formats if dtype == torch.float16} == {channels_last}
        assert {layout for dtype, layout in formats if dtype == torch.float32} == {False}
        results[channels_last] = logits, torch.cat([p.grad.flatten() for p in [*G.parameters(), *D.parameters()]])
    (plain, plain_grads), (nhwc, nhwc_grads) = results[False], results[True]
    # Another layout sums in another order: equal up to float16 rounding (about 1e-3 per layer).
    assert (nhwc - plain).abs().max() < 3e-3 * plain.abs().max()
    assert (nhwc_grads - plain_grads).norm() < 2e-2 * plain_grads.norm()

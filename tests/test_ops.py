"""The pure-PyTorch ops against independent formulas (scipy, hand computation, loops)."""

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d, correlate2d

from cstylegan.networks.ops import ops_switch
from cstylegan.networks.ops import upfirdn2d as upfirdn2d_module
from cstylegan.networks.ops.bias_act import bias_act
from cstylegan.networks.ops.conv2d_resample import conv2d_resample
from cstylegan.networks.ops.modulated_conv import demodulation_coefficients, modulated_conv2d
from cstylegan.networks.ops.upfirdn2d import (downsample2d, filter2d, setup_filter, upfirdn2d,
                                             upfirdn2d_reference, upfirdn2d_strided, upsample2d)
from tests.conftest import REPO, assert_one_line_error


def scipy_upfirdn2d(img, f, up, down, pad, flip_filter, gain):
    """One channel: zero-stuff, pad/crop, 'valid' convolution (or correlation), decimate."""
    upx, upy = up
    h, w = img.shape
    stuffed = np.zeros([h * upy, w * upx])
    stuffed[::upy, ::upx] = img
    x0, x1, y0, y1 = pad
    padded = np.pad(stuffed, [(max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))])
    padded = padded[max(-y0, 0): padded.shape[0] - max(-y1, 0), max(-x0, 0): padded.shape[1] - max(-x1, 0)]
    op = correlate2d if flip_filter else convolve2d
    out = op(padded, f * gain, mode="valid")
    return out[::down[1], ::down[0]]


@pytest.mark.parametrize("up,down,pad,flip_filter,gain", [
    ((1, 1), (1, 1), (0, 0, 0, 0), False, 1),
    ((2, 2), (1, 1), (2, 1, 2, 1), False, 4),
    ((1, 1), (2, 2), (1, 1, 1, 1), True, 1),
    ((2, 1), (1, 3), (3, -1, 0, 2), False, 2.5),
    ((3, 3), (2, 2), (-1, 2, 1, 0), True, 1),
])
def test_upfirdn2d_matches_scipy(up, down, pad, flip_filter, gain):
    rng = np.random.RandomState(0)
    x = rng.randn(2, 3, 7, 6)
    f = rng.rand(4, 3)  # asymmetric, so a missing or extra flip shows
    y = upfirdn2d(torch.from_numpy(x), torch.from_numpy(f).float(), up=up, down=down,
                  padding=list(pad), flip_filter=flip_filter, gain=gain)
    f32 = torch.from_numpy(f).float().double().numpy()
    for n in range(2):
        for c in range(3):
            ref = scipy_upfirdn2d(x[n, c], f32, up, down, pad, flip_filter, gain)
            np.testing.assert_allclose(y[n, c].numpy(), ref, rtol=1e-6, atol=1e-6)


def test_upfirdn2d_separable_equals_outer_product():
    x = torch.randn(2, 3, 9, 9)
    taps = torch.rand(8)
    sep = setup_filter(taps, gain=3)
    full = setup_filter(taps, gain=3, separable=False)
    assert sep.ndim == 1 and full.ndim == 2
    for kwargs in [dict(up=2, padding=[4, 3, 4, 3]), dict(down=2, padding=3)]:
        torch.testing.assert_close(upfirdn2d(x, sep, gain=2, **kwargs),
                                   upfirdn2d(x, full, gain=2, **kwargs), rtol=1e-5, atol=1e-5)


def test_upfirdn2d_hand_computed_1d():
    x = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)
    f = torch.tensor([[1.0, 2.0]])
    # Zero-stuffed, padded by one on the left: [0, 1, 0, 2, 0, 3, 0].
    # Convolution: y[i] = f[0] * s[i+1] + f[1] * s[i]; correlation swaps the taps.
    conv = upfirdn2d(x, f, up=[2, 1], padding=[1, 0, 0, 0])
    corr = upfirdn2d(x, f, up=[2, 1], padding=[1, 0, 0, 0], flip_filter=True)
    assert conv.flatten().tolist() == [1, 2, 2, 4, 3, 6]
    assert corr.flatten().tolist() == [2, 1, 4, 2, 6, 3]
    assert upfirdn2d(x, f, down=[2, 1], padding=[1, 0, 0, 0]).flatten().tolist() == [1, 7]


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f[0], torch.tensor([1.0, 3, 3, 1]) / 64)
    torch.testing.assert_close(setup_filter([1, 3, 3, 1], gain=4).sum(), torch.tensor(4.0))
    torch.testing.assert_close(setup_filter([1, 2], normalize=False, flip_filter=True),
                               torch.tensor([[4.0, 2], [2, 1]]))
    assert setup_filter(None).shape == (1, 1)


def test_resampling_keeps_constant_images_constant():
    x = torch.full([1, 2, 16, 16], 0.7)
    f = setup_filter([1, 3, 3, 1])
    down = downsample2d(x, f)
    up = upsample2d(x, f)
    flt = filter2d(x, f)
    assert down.shape == (1, 2, 8, 8) and up.shape == (1, 2, 32, 32) and flt.shape == x.shape
    # Away from the zero-padded borders the value is unchanged.
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7))
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7))
    torch.testing.assert_close(flt[..., 2:-2, 2:-2], torch.full_like(flt[..., 2:-2, 2:-2], 0.7))


def test_bias_act_gains_and_clamp():
    x = torch.tensor([[-1.0, 0.5, 10.0]])
    s2 = math.sqrt(2)
    torch.testing.assert_close(bias_act(x, act="lrelu"), torch.tensor([[-0.2 * s2, 0.5 * s2, 10 * s2]]))
    torch.testing.assert_close(bias_act(x, act="relu"), torch.tensor([[0.0, 0.5 * s2, 10 * s2]]))
    torch.testing.assert_close(bias_act(x, act="linear"), x)
    torch.testing.assert_close(bias_act(x, act="tanh"), torch.tanh(x))
    torch.testing.assert_close(bias_act(x, act="sigmoid"), torch.sigmoid(x))
    torch.testing.assert_close(bias_act(x, act="swish"), x * torch.sigmoid(x) * s2)
    torch.testing.assert_close(bias_act(x, act="lrelu", alpha=0.5, gain=1), torch.tensor([[-0.5, 0.5, 10]]))
    # The clamp comes after the gain: 10 * sqrt(2) -> 5, and -1 * 0.2 * 30 = -6 -> -5.
    torch.testing.assert_close(bias_act(x, act="lrelu", gain=30, clamp=5), torch.tensor([[-5.0, 5, 5]]))
    torch.testing.assert_close(bias_act(x, act="lrelu", clamp=5), torch.tensor([[-0.2 * s2, 0.5 * s2, 5]]))
    # The bias goes along `dim`.
    y = torch.zeros(2, 3, 4)
    b = torch.tensor([1.0, -2.0, 3.0])
    torch.testing.assert_close(bias_act(y, b, dim=1), b.reshape(1, 3, 1).expand(2, 3, 4))


@pytest.mark.parametrize("up,down,flip_weight", [(2, 1, False), (2, 1, True), (1, 2, True), (1, 2, False)])
def test_conv2d_resample_equals_resample_then_conv(up, down, flip_weight):
    """The fast paths (transposed / strided conv) equal the plain order of operations,
    with all padding done once, on the (upsampled) input."""
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1])
    w_corr = w if flip_weight else w.flip([2, 3])
    if up > 1:
        ref = F.conv2d(upsample2d(x, f, padding=1), w_corr)
    else:
        ref = upfirdn2d(F.conv2d(F.pad(x, [2, 2, 2, 2]), w_corr), f, down=2)
    y = conv2d_resample(x, w, f=f, up=up, down=down, padding=1, flip_weight=flip_weight)
    torch.testing.assert_close(y, ref)
    # 1x1 kernels take their own fast path.
    w1 = torch.randn(5, 4, 1, 1, dtype=torch.float64)
    ref1 = upsample2d(F.conv2d(x, w1), f) if up > 1 else downsample2d(F.conv2d(x, w1), f)
    torch.testing.assert_close(conv2d_resample(x, w1, f=f, up=up, down=down), ref1)


def test_conv2d_resample_groups_and_odd_padding():
    x = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1])
    for up in (1, 2):
        y = conv2d_resample(x, w, f=f, up=up, padding=1, groups=2)
        parts = [conv2d_resample(x[:, 3 * g: 3 * g + 3], w[2 * g: 2 * g + 2], f=f, up=up, padding=1)
                 for g in range(2)]
        torch.testing.assert_close(y, torch.cat(parts, dim=1))
    # Asymmetric padding falls back to an explicit pad.
    y = conv2d_resample(x, w, padding=[2, 0, 1, 1], groups=2)
    torch.testing.assert_close(y, F.conv2d(F.pad(x, [2, 0, 1, 1]), w, groups=2))


def modconv_loop(x, weight, styles, up, demodulate, f):
    """Per sample: scale the weight by the styles, demodulate, convolve (true convolution)."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xi = x[n: n + 1]
        if up > 1:
            outs.append(F.conv2d(upsample2d(xi, f, padding=1), w.flip([2, 3])))
        else:
            outs.append(F.conv2d(xi, w, padding=w.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("up,kernel,demodulate", [(1, 3, True), (2, 3, True), (1, 1, False), (1, 3, False)])
def test_modulated_conv2d_grouped_shared_and_loop_agree(up, kernel, demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    weight = torch.randn(5, 4, kernel, kernel, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    noise = torch.randn(3, 1, 8 * up, 8 * up, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1])
    kwargs = dict(up=up, padding=kernel // 2, resample_filter=f, demodulate=demodulate,
                  flip_weight=(up == 1))
    grouped = modulated_conv2d(x, weight, styles, noise=noise, fused_modconv=True, **kwargs)
    shared = modulated_conv2d(x, weight, styles, noise=noise, fused_modconv=False, **kwargs)
    ref = modconv_loop(x, weight, styles, up, demodulate, f) + noise
    torch.testing.assert_close(grouped, ref)
    torch.testing.assert_close(shared, ref)
    if demodulate:  # each output channel's effective weight has unit norm
        assert grouped.shape == (3, 5, 8 * up, 8 * up)


def test_modulated_conv2d_float32_paths_agree():
    torch.manual_seed(1)
    x, weight, styles = torch.randn(8, 16, 16, 16), torch.randn(32, 16, 3, 3), torch.randn(8, 16)
    a = modulated_conv2d(x, weight, styles, padding=1, fused_modconv=True)
    b = modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fast_demodulation_equals_the_literal_formula_with_gradients(monkeypatch):
    """The matmul form of the demodulation coefficients against the [N, O, I, k, k] product."""
    torch.manual_seed(2)
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    literal = (weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]).add(1e-8).rsqrt()
    grads = torch.autograd.grad(literal.sin().sum(), [weight, styles])
    for impl in ("fast", "reference"):
        monkeypatch.setattr(ops_switch, "IMPL", impl)
        ours = demodulation_coefficients(weight, styles)
        torch.testing.assert_close(ours, literal, rtol=1e-12, atol=0)
        for a, b in zip(torch.autograd.grad(ours.sin().sum(), [weight, styles]), grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(ops_switch, "IMPL", "fast")
    assert torch.autograd.gradcheck(demodulation_coefficients, (weight, styles))
    assert torch.autograd.gradgradcheck(demodulation_coefficients, (weight, styles))


def test_ops_gradcheck():
    """First and second derivatives of every op agree with finite differences (float64)."""
    torch.manual_seed(0)
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    checks = [
        (lambda x: upfirdn2d(x, f, up=2, down=2, padding=[2, 1, 2, 1]), (x,)),
        (lambda x: downsample2d(x, f), (x,)),
        (lambda x, w: conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False), (x, w)),
        (lambda x, w: conv2d_resample(x, w, f=f, down=2, padding=1), (x, w)),
        (lambda x, b: bias_act(x, b, act="lrelu", clamp=100), (x, b)),
        (lambda x, w, s: modulated_conv2d(x, w, s, padding=1, fused_modconv=True), (x, w, s)),
        (lambda x, w, s: modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f,
                                          flip_weight=False, fused_modconv=False), (x, w, s)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


BIAS_ACT_CASES = [  # (act, alpha, gain, clamp, x shape, bias dim)
    ("lrelu", None, None, 0.5, (3, 4, 5, 6), 1),
    ("lrelu", 0.3, 2.5, None, (3, 4, 5, 6), 1),
    ("relu", None, None, 1.0, (7, 5), 1),
    ("linear", None, 3.0, 0.8, (2, 3, 4), 2),
    ("linear", None, None, 0.6, (2, 6, 4, 4), None),
]


def bias_act_derivatives(x, b, dy, u, **settings):
    """(y, [dx, db] for incoming gradient dy, [d/d dy, d/dx] of sum(dx * u)): forward, first
    and second derivatives, as R1 and path length use them."""
    inputs = [x] + ([b] if b is not None else [])
    y = bias_act(x, b, **settings)
    grads = torch.autograd.grad(y, inputs, grad_outputs=dy, create_graph=True)
    second = torch.autograd.grad((grads[0] * u).sum(), [dy, x], allow_unused=True, materialize_grads=True)
    return y, grads, second


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["fast", "fused"])
@pytest.mark.parametrize("act, alpha, gain, clamp, shape, dim", BIAS_ACT_CASES)
def test_bias_act_fast_and_fused_match_the_reference_to_second_derivatives(monkeypatch, impl, act, alpha, gain,
                                                                             clamp, shape, dim):
    """The output-only backward (and its compiled kernels) against the literal chain of ops,
    including the clamped pixels (zero gradient) and the negative side (slope alpha)."""
    torch.manual_seed(3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    b = torch.randn(shape[dim], dtype=torch.float64, requires_grad=True) if dim is not None else None
    dy = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    u = torch.randn(shape, dtype=torch.float64)
    settings = dict(dim=dim or 1, act=act, alpha=alpha, gain=gain, clamp=clamp)
    monkeypatch.setattr(ops_switch, "IMPL", "reference")
    expected = bias_act_derivatives(x, b, dy, u, **settings)
    monkeypatch.setattr(ops_switch, "IMPL", impl)
    ours = bias_act_derivatives(x, b, dy, u, **settings)
    assert not ops_switch._compile_failed, "torch.compile failed, so the fused kernels were not tested"
    assert (expected[0].abs() == clamp).any() if clamp is not None else True  # the clamp is exercised
    for a, e in zip([ours[0], *ours[1], *ours[2]], [expected[0], *expected[1], *expected[2]]):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    # The second derivative is the same factor again: d(sum(dx * u)) / d dy = u * dx/dy.
    slope = {"lrelu": 0.2 if alpha is None else alpha, "relu": 0.0, "linear": 1.0}[act]
    gain_value = gain if gain is not None else (1.0 if act == "linear" else math.sqrt(2))
    y = expected[0].detach()
    factor = gain_value * torch.where(y > 0, torch.ones_like(y), slope * torch.ones_like(y)) * (y.abs() < (clamp or math.inf))
    torch.testing.assert_close(ours[2][0], u * factor, rtol=1e-12, atol=1e-12)


def test_bias_act_fast_path_keeps_only_its_output_for_backward():
    """The memory claim: one saved tensor per call instead of one per elementwise step."""
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    b = torch.randn(8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        bias_act(x, b, act="lrelu", clamp=1.0)
    assert saved == [x.numel()]


def test_fused_kernels_fall_back_with_one_warning_when_compiling_fails(monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nlong details")

    monkeypatch.setattr(torch, "compile", no_compiler)
    monkeypatch.setattr(ops_switch, "IMPL", "fused")
    monkeypatch.setattr(ops_switch, "_compile_failed", False)
    double, triple = ops_switch.compiled_if_fused(lambda x: x * 2), ops_switch.compiled_if_fused(lambda x: x * 3)
    with pytest.warns(UserWarning, match=r"torch.compile failed \(RuntimeError: no C\+\+ compiler found\); using the fast"):
        assert double(torch.ones(2)).tolist() == [2, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert triple(torch.ones(2)).tolist() == [3, 3]  # warns only once, then runs every kernel eagerly


# --- the strided upfirdn2d path against the literal one ---------------------------------

STRIDED_CASES = [
    # (filter taps (1-D or 2-D), up, down, padding, flip, gain, image size (h, w))
    ([1, 3, 3, 1], 1, 1, 0, False, 1, (8, 8)),
    ([1, 3, 3, 1], 2, 1, [2, 1, 2, 1], False, 4, (5, 7)),
    ([1, 3, 3, 1], 1, 2, [1, 1, 1, 1], True, 1, (8, 6)),
    ([1, 3, 3, 1], 1, 1, [2, 2, 1, 1], False, 1, (5, 7)),  # symmetric: the convolution pads
    ([1, 3, 3, 1], 1, 1, [2, 2, 1, 0], False, 1, (5, 7)),  # symmetric in x only: a padded copy
    (list(range(1, 13)), 2, 1, [6, 5, 6, 5], False, 4, (6, 6)),  # separable 12 taps, uneven
    (list(range(1, 13)), 1, 2, [-3, 2, 1, -2], True, 1, (16, 13)),  # negative padding crops
    (list(range(1, 13)), 4, 1, [10, 9, 10, 9], False, 16, (4, 5)),
    (list(range(1, 14)), (2, 1), (1, 2), [3, 4, 1, 2], False, 2, (14, 10)),  # anisotropic, odd taps
    (torch.rand(5, 3).tolist(), 2, 1, [1, 3, 2, 0], True, 4, (6, 7)),  # non-separable, not square
    (torch.rand(6, 6).tolist(), 1, 2, [-1, 0, 2, 2], False, 1, (12, 12)),
    (torch.rand(4, 4).tolist(), 3, 1, [0, 0, 0, 0], False, 9, (3, 4)),  # filter shorter than zero cells
]


@pytest.mark.parametrize("taps, up, down, padding, flip, gain, size", STRIDED_CASES)
def test_strided_upfirdn2d_equals_the_reference(taps, up, down, padding, flip, gain, size):
    f = setup_filter(taps)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    f = f.double()
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    expected = upfirdn2d_reference(x, f, **kwargs)
    actual = upfirdn2d_strided(x, f, **kwargs)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(expected)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), x)
    (grad_actual,) = torch.autograd.grad((actual * weights).sum(), x)
    torch.testing.assert_close(grad_actual, grad_expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda v: upfirdn2d_strided(v, f, **kwargs), (x[:1, :1],), fast_mode=True)


def test_the_switch_picks_the_path(monkeypatch):
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 1, 4, 4)
    calls = []
    for name in ("upfirdn2d_reference", "upfirdn2d_strided"):
        original = getattr(upfirdn2d_module, name)
        monkeypatch.setattr(upfirdn2d_module, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k))
    for impl in ("reference", "fast"):
        monkeypatch.setattr(ops_switch, "IMPL", impl)
        upfirdn2d(x, f, up=2, padding=2)
    assert calls == ["upfirdn2d_reference", "upfirdn2d_strided"]


def test_set_impl_switches_every_op_and_refuses_unknown_names():
    x = torch.randn([2, 3, 8, 8]) * 3
    b = torch.randn([3])
    previous = ops_switch.set_impl("reference")
    try:
        assert not ops_switch.use_fast()
        reference = bias_act(x, b, act="lrelu")
        assert ops_switch.set_impl("fast") == "reference" and ops_switch.use_fast()
        torch.testing.assert_close(bias_act(x, b, act="lrelu"), reference)
        with pytest.raises(ops_switch.OpsError, match="'fast', 'reference' or 'fused', got 'quick'"):
            ops_switch.set_impl("quick")
        assert ops_switch.IMPL == "fast"
    finally:
        ops_switch.set_impl(previous)


def test_a_bad_cstylegan_ops_is_one_line_from_the_command_not_a_traceback_on_import(tmp_path):
    shipped = REPO / "experiments" / "results" / "emoji32_cpu" / "cond_sg2_G_ema.pt"
    result = subprocess.run([sys.executable, str(REPO / "generate.py"), "--network", str(shipped), "--class",
                             "twemoji_male", "--seeds", "0", "--outdir", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "CSTYLEGAN_OPS": "quick"})
    assert_one_line_error(result, "CSTYLEGAN_OPS", "got 'quick'", "unset it")
    assert not list(tmp_path.glob("*.png"))

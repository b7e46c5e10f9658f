"""StyleGAN3 (T and R): parity with NVlabs' networks, filtered_lrelu against an
independent formula, translation equivariance, and double backward."""


import numpy as np
import pytest
import torch
from scipy.signal import convolve2d, correlate2d

from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.ops import ops_switch
from cstylegan.networks.ops.filtered_lrelu import filtered_lrelu
from cstylegan.networks.ops.upfirdn2d import setup_filter
from cstylegan.networks.stylegan2 import Generator as SG2Generator
from cstylegan.networks.ops.modulated_conv import modulated_conv2d_sg3
from cstylegan.networks.stylegan3 import Generator, make_transform, set_input_transform
from tests.test_fixture_parity import ATOL, load_fixture, tensors_under

# --- parity with NVlabs' StyleGAN3 -----------------------------------------------------

@pytest.fixture(scope="module", params=["sg3t_cond32", "sg3r_uncond32"])
def nets(request):
    meta, t = load_fixture(request.param)
    G = Generator(**meta["G_kwargs"]).eval()
    D = Discriminator(**meta["D_kwargs"]).eval()
    theirs = tensors_under("G.", t)
    # Before loading: our schedule gives the same layers, shapes and designed filters.
    ours = G.state_dict()
    assert set(ours) - set(theirs) == ({"mapping.w_avg_per_class"} if G.c_dim > 0 else set())
    for name, value in theirs.items():
        assert ours[name].shape == value.shape, name
        if name.endswith("_filter"):
            torch.testing.assert_close(ours[name], value, rtol=0, atol=1e-6, msg=name)
    result = G.load_state_dict(theirs, strict=False)
    # Only our extra per-class average is absent from an NVlabs network.
    expected_missing = ["mapping.w_avg_per_class"] if G.c_dim > 0 else []
    assert result.missing_keys == expected_missing and result.unexpected_keys == []
    D.load_state_dict(tensors_under("D.", t), strict=True)
    return G, D, t


@pytest.mark.parametrize("tag,psi", [("psi100", 1.0), ("psi070", 0.7)])
def test_matches_nvlabs(nets, tag, psi):
    G, D, t = nets
    with torch.no_grad():
        ws = G.mapping(t["z"], t["c"], truncation_psi=psi, truncation_center="global")
        img = G.synthesis(ws, noise_mode="const")
        logits = D(img, t["c"])
    errors = {k: (a - t[f"{tag}.{k}"]).abs().max().item()
              for k, a in [("ws", ws), ("img", img), ("D_logits", logits)]}
    print(f"max abs error {tag}: {errors}")
    torch.testing.assert_close(ws, t[f"{tag}.ws"], rtol=0, atol=ATOL)
    torch.testing.assert_close(img, t[f"{tag}.img"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits, t[f"{tag}.D_logits"], rtol=0, atol=ATOL)


def test_official_layer_names_and_mapping_defaults():
    G = Generator(16, 0, 16, 32, 3, channel_base=512, channel_max=16, conv_kernel=1,
                  use_radial_filters=True)
    assert G.num_ws == 16 and G.mapping.num_layers == 2
    assert G.synthesis.layer_names[0] == "L0_36_16" and G.synthesis.layer_names[-1] == "L14_32_3"
    # R: radial (2-D) downsampling filters except in the critically sampled last layers.
    assert G.synthesis.L0_36_16.down_filter.ndim == 2
    assert G.synthesis.L13_32_16.down_filter.ndim == 1
    assert G.synthesis.L14_32_3.up_filter is None and G.synthesis.L14_32_3.weight.shape[2:] == (1, 1)


# --- filtered_lrelu --------------------------------------------------------------------

def reference_filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    """Per channel, with scipy: bias, zero-stuff, pad/crop, 'valid' filtering with fu * up^2,
    leaky ReLU * gain, clamp, 'valid' filtering with fd, keep every down-th pixel."""
    op = correlate2d if flip_filter else convolve2d
    as_2d = lambda f: np.ones([1, 1]) if f is None else (np.outer(f, f) if f.ndim == 1 else f)
    fu2, fd2 = as_2d(fu) * up ** 2, as_2d(fd)
    x0, x1, y0, y1 = pad
    out = []
    for img, bias in zip(x.reshape(-1, *x.shape[2:]), np.tile(b, x.shape[0])):
        h, w = img.shape
        s = np.zeros([h * up, w * up])
        s[::up, ::up] = img + bias
        s = np.pad(s, [(max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))])
        s = s[max(-y0, 0): s.shape[0] - max(-y1, 0), max(-x0, 0): s.shape[1] - max(-x1, 0)]
        s = op(s, fu2, mode="valid")
        s = np.where(s >= 0, s, s * slope) * gain
        if clamp is not None:
            s = np.clip(s, -clamp, clamp)
        out.append(op(s, fd2, mode="valid")[::down, ::down])
    return np.stack(out).reshape(*x.shape[:2], *out[0].shape)


@pytest.mark.parametrize("up,down,padding,fu_shape,fd_shape,gain,slope,clamp,flip", [
    (1, 1, 0, None, None, np.sqrt(2), 0.2, None, False),
    (2, 2, [9, 8, 9, 8], (12,), (12,), np.sqrt(2), 0.2, 0.7, False),
    (2, 2, [-2, -1, 1, 3], (4,), (5, 6), 1.0, 0.2, None, True),
    (4, 2, [3, 2], (5, 4), (8,), 1.5, 0.1, 1.0, False),
    (2, 1, 1, (4,), None, np.sqrt(2), 0.0, None, True),
    (1, 3, [4, 3, 0, 2], None, (7,), 1.0, 1.0, 0.3, False),
])
def test_filtered_lrelu_matches_reference(up, down, padding, fu_shape, fd_shape, gain, slope, clamp, flip):
    rng = np.random.RandomState(0)
    x = rng.randn(2, 3, 7, 6)
    b = rng.randn(3)
    # Asymmetric random filters, so a missing or extra flip shows.
    fu = None if fu_shape is None else rng.rand(*fu_shape)
    fd = None if fd_shape is None else rng.rand(*fd_shape)
    as_t = lambda f: None if f is None else torch.from_numpy(f)
    y = filtered_lrelu(torch.from_numpy(x), as_t(fu), as_t(fd), torch.from_numpy(b), up=up, down=down,
                       padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    if isinstance(padding, int):
        pad = [padding] * 4
    elif len(padding) == 2:
        pad = [padding[0], padding[0], padding[1], padding[1]]
    else:
        pad = padding
    ref = reference_filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_filtered_lrelu_gradients():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fu = torch.rand(4, dtype=torch.float64)
    fd = torch.rand(3, 3, dtype=torch.float64)
    func = lambda x, b: filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[2, 1, 3, 0], clamp=1.5)
    assert torch.autograd.gradcheck(func, (x, b))
    assert torch.autograd.gradgradcheck(func, (x, b))


def test_filtered_lrelu_rejects_bad_arguments():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="up and down"):
        filtered_lrelu(x, up=0)
    with pytest.raises(ValueError, match="no output"):
        filtered_lrelu(x, padding=-2)
    with pytest.raises(ValueError, match="clamp"):
        filtered_lrelu(x, clamp=-1)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["fast", "fused"])
def test_filtered_lrelu_fast_and_fused_match_the_reference_with_gradients(monkeypatch, impl):
    torch.manual_seed(4)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()

    def run():
        y = filtered_lrelu(x, f, f, b, up=2, down=2, padding=[2, 1, 2, 1], clamp=0.7)
        return (y, *torch.autograd.grad((y * y.detach().flip(-1)).sum(), [x, b]))

    monkeypatch.setattr(ops_switch, "IMPL", "reference")
    expected = run()
    monkeypatch.setattr(ops_switch, "IMPL", impl)
    assert (expected[0].abs() > 0).all()
    ours = run()
    assert not ops_switch._compile_failed, "torch.compile failed, so the fused kernels were not tested"
    for mine, reference in zip(ours, expected):
        torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("demodulate, kernel", [(True, 3), (False, 1), (True, 1)])
def test_modulated_conv_shared_weight_path_equals_the_grouped_one_with_gradients(demodulate, kernel):
    """The CPU path (scale inputs, one shared convolution, scale outputs) against NVlabs'
    per-sample grouped convolution, input gain included."""
    torch.manual_seed(5)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 4, kernel, kernel, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    input_gain = torch.rand(4, dtype=torch.float64) + 0.5

    def run(grouped):
        y = modulated_conv2d_sg3(x, weight, styles, demodulate=demodulate, padding=kernel - 1,
                                 input_gain=input_gain, grouped=grouped)
        return (y, *torch.autograd.grad((y * y.detach().cos()).sum(), [x, weight, styles]))

    for shared, grouped in zip(run(False), run(True)):
        torch.testing.assert_close(shared, grouped, rtol=1e-10, atol=1e-12)


# --- translation equivariance, transforms ----------------------------------------------

def small_generator(c_dim=0, **kwargs):
    torch.manual_seed(0)
    return Generator(16, c_dim, 16, 32, 3, channel_base=2048, channel_max=16, **kwargs).eval()


def psnr_of_overlap(out, ref, dx, dy, border):
    """PSNR of out against ref shifted by (dx, dy) pixels, on the overlap minus `border`
    pixels per side; the peak is the reference's own range (min over the batch)."""
    res = out.shape[-1]
    x0, x1 = max(0, dx) + border, res + min(0, dx) - border
    y0, y1 = max(0, dy) + border, res + min(0, dy) - border
    a = out[:, :, y0:y1, x0:x1]
    b = ref[:, :, y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    peak = b.amax(dim=[1, 2, 3]) - b.amin(dim=[1, 2, 3])
    mse = (a - b).square().mean(dim=[1, 2, 3])
    return (10 * torch.log10(peak.square() / mse)).min().item()


def test_translation_equivariance_of_t():
    """Translating the input by k / R units moves a T network's output k pixels.

    Measured (32 px, 16 channels, border 2): 58.1, 72.6 and 62.0 dB for the shifts below,
    while the unshifted output scores 19.5-26.2 dB against the shifted reference."""
    G = small_generator()
    ws = G.mapping(torch.randn(2, 16), None).detach()
    with torch.no_grad():
        ref = G.synthesis(ws)
    for dx, dy in [(3, 0), (0, 3), (-4, 5)]:
        set_input_transform(G, translate=(dx / 32, dy / 32))
        with torch.no_grad():
            out = G.synthesis(ws)
        psnr = psnr_of_overlap(out, ref, dx, dy, border=2)
        unshifted = psnr_of_overlap(out, ref, 0, 0, border=2)
        print(f"translation ({dx}, {dy}) px: PSNR {psnr:.1f} dB (unshifted {unshifted:.1f} dB)")
        assert psnr > 45 and unshifted < 30
    set_input_transform(G)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_set_input_transform_stores_the_inverse():
    G = small_generator()
    set_input_transform(G, translate=(0.25, -0.5), rotate_deg=30)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    expected = np.array([[c, s, 0.25], [-s, c, -0.5], [0, 0, 1]])  # gen_images.py's convention
    np.testing.assert_allclose(make_transform((0.25, -0.5), 30), expected, atol=1e-12)
    np.testing.assert_allclose(G.synthesis.input.transform.double().numpy() @ expected, np.eye(3), atol=1e-6)
    sg2 = SG2Generator(8, 0, 8, 8, 3, mapping_kwargs=dict(num_layers=1), channel_base=64, channel_max=8)
    with pytest.raises(ValueError, match="StyleGAN3"):
        set_input_transform(sg2, translate=(0.1, 0))


# --- training-time behaviour ------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, dict(conv_kernel=1, use_radial_filters=True)], ids=["T", "R"])
def test_double_backward(kwargs):
    """Path length needs d/dparams of |d img / d ws|^2."""
    G = small_generator(**kwargs)
    ws = G.mapping(torch.randn(2, 16), None).detach().requires_grad_(True)
    out = G.synthesis(ws)
    (grad_ws,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), ws, create_graph=True)
    grad_ws.square().sum().backward()
    for name in ["input.weight", "input.affine.weight", "L0_36_16.weight", "L0_36_16.affine.weight",
                 "L13_32_16.weight", "L14_32_3.affine.weight"]:
        grad = G.synthesis.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_generator_interface_and_magnitude_ema():
    G = small_generator(c_dim=3, magnitude_ema_beta=0.5)
    G.mapping.w_avg_per_class.normal_()
    z, c = torch.randn(3, 16), torch.eye(3)
    before = G.synthesis.L0_36_16.magnitude_ema.clone()
    img = G(z, c, truncation_psi=0.5, truncation_center="class", noise_mode="const", update_emas=True)
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert not torch.equal(G.synthesis.L0_36_16.magnitude_ema, before)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, c, noise_mode="bogus")

"""ADA pipe: each op alone does what it should, p gates it, and R1's double backward works."""


import pytest
import torch
import torch.nn.functional as F

from cstylegan.training.augment import AUGPIPE_PRESETS, AugmentPipe, augment_pipe, reflect_pad
from cstylegan.training.augment_preview import OPS, preview_rows

ATOL = 1e-5  # what the 2x up/down resampling of the geometric stage leaves on an identity


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pipe(p=1.0, **ops) -> AugmentPipe:
    augment = AugmentPipe(**ops)
    augment.p.fill_(p)
    return augment


def rand_images(n=8, c=3, size=16):
    return torch.rand(n, c, size, size) * 2 - 1


def chroma(x):
    return x - x.mean(dim=1, keepdim=True)


# ---- construction ---------------------------------------------------------------------


def test_presets_and_buffer_names():
    assert list(AUGPIPE_PRESETS) == "blit geom color filter noise cutout bg bgc bgcf bgcfn bgcfnc".split()
    full = augment_pipe("bgcfnc")
    for name in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                 "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout"):
        assert getattr(full, name) == 1
    assert augment_pipe("blit").scale == 0 and augment_pipe("bgc").imgfilter == 0
    assert augment_pipe("bgc", hue=0.5).hue == 0.5
    for name in AUGPIPE_PRESETS:
        augment_pipe(name)
    with pytest.raises(ValueError, match="bgcfnc"):
        augment_pipe("nope")
    shapes = {name: tuple(b.shape) for name, b in full.named_buffers()}
    assert shapes == {"p": (), "Hz_geom": (12,), "Hz_fbank": (4, 43)}
    assert list(full.parameters()) == []


def test_filter_bank_splits_into_bands_that_sum_to_identity():
    bank = augment_pipe("filter").Hz_fbank.double()
    impulse = torch.zeros(43, dtype=torch.float64)
    impulse[21] = 1
    assert torch.allclose(bank.sum(0), impulse, atol=1e-7)
    assert torch.allclose(bank, bank.flip(1), atol=1e-7)  # zero phase
    assert torch.allclose(bank.sum(1), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), atol=1e-7)


def test_reflect_pad_matches_torch_and_extends_past_the_image():
    x = torch.arange(2 * 4 * 5, dtype=torch.float32).reshape(1, 2, 4, 5)
    assert torch.equal(reflect_pad(x, [2, 4, 3, 1]), F.pad(x, [2, 4, 3, 1], mode="reflect"))
    row = reflect_pad(torch.tensor([[[[0.0, 1, 2]]]]), [5, 5, 0, 0]).flatten().tolist()
    assert row == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]


# ---- identities -----------------------------------------------------------------------


def test_p_zero_returns_the_input_itself():
    x = rand_images()
    augment = augment_pipe("bgcfnc")
    augment.p.zero_()
    assert augment(x) is x


def test_resampling_without_a_warp_is_an_identity():
    x = rand_images()
    assert torch.allclose(pipe(xfrac=1, xfrac_std=0)(x), x, atol=ATOL)
    assert torch.allclose(pipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 0])(x), x, atol=ATOL)


@pytest.mark.parametrize("op", ["xint", "scale", "rotate", "aniso", "xfrac"])
def test_geometric_ops_keep_a_constant_image_constant(op):
    x = torch.full([4, 3, 16, 16], 0.3)
    y = pipe(**{op: 1})(x)
    assert torch.allclose(y, x, atol=ATOL)
    assert not torch.allclose(pipe(**{op: 1})(rand_images(4)), rand_images(4), atol=0.01)


# ---- one op at a time, forced on ------------------------------------------------------


def smooth_images(n):
    """Band-limited content: the geometric stage's resampling filter is then nearly lossless."""
    return F.interpolate(torch.rand(n, 3, 6, 6) * 2 - 1, size=(16, 16), mode="bicubic", align_corners=False)


def closest_of(x, y, candidates):
    """Per image, the candidate transform that y matches (mean error < 0.03), checking that
    it is unique; the identity must be exact. The filter (an orthogonal but not symmetric
    wavelet) is exactly undone only when the image is not mirrored, as in NVlabs' pipe."""
    kinds = []
    for i in range(len(x)):
        errors = [(y[i] - make(x[i : i + 1])[0]).abs().mean() for make in candidates]
        match = [k for k, e in enumerate(errors) if e < 0.03]
        assert len(match) == 1 and min(e for k, e in enumerate(errors) if k != match[0]) > 0.3
        if match[0] == 0:
            assert torch.allclose(y[i], x[i], atol=ATOL)
        kinds.append(match[0])
    return kinds


def test_xflip_mirrors_some_images_and_leaves_the_rest():
    x = smooth_images(16)
    kinds = closest_of(x, pipe(xflip=1)(x), [lambda t: t, lambda t: t.flip(3)])
    assert set(kinds) == {0, 1}


def test_rotate90_gives_one_of_four_quarter_turns():
    x = smooth_images(16)
    turns = [lambda t, k=k: torch.rot90(t, k, dims=(2, 3)) for k in range(4)]
    assert set(closest_of(x, pipe(rotate90=1)(x), turns)) == {0, 1, 2, 3}


def test_xint_shifts_content_by_whole_pixels_within_range():
    size, reach = 16, 2  # xint_max 0.125 of 16 px
    x = rand_images(12, size=size)
    y = pipe(xint=1)(x)
    shifts = []
    for xi, yi in zip(x, y):
        found = []
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                # out[v, u] = in[v - dy, u - dx] wherever both lie inside the image
                out = yi[:, max(dy, 0): size + min(dy, 0), max(dx, 0): size + min(dx, 0)]
                src = xi[:, max(-dy, 0): size + min(-dy, 0), max(-dx, 0): size + min(-dx, 0)]
                if torch.allclose(out, src, atol=ATOL):
                    found.append((dx, dy))
        assert len(found) == 1
        shifts += found
    assert len(set(shifts)) > 3


def test_brightness_adds_one_offset_per_image_with_the_right_spread():
    x = rand_images(2000, size=4)
    delta = pipe(brightness=1)(x) - x
    offset = delta.flatten(1).mean(1)
    assert torch.allclose(delta, offset[:, None, None, None].expand_as(delta), atol=1e-6)
    assert abs(offset.mean()) < 0.02 and abs(offset.std() - 0.2) < 0.02


def test_contrast_scales_around_zero_and_deviations_from_the_mean():
    x = rand_images(2000, size=4) + 0.1
    y = pipe(contrast=1)(x)
    factor = (y.flatten(1) / x.flatten(1)).median(1).values
    assert torch.allclose(y, x * factor[:, None, None, None], atol=1e-5)
    deviation = lambda t: t - t.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(deviation(y), deviation(x) * factor[:, None, None, None], atol=1e-5)
    assert abs(factor.log2().std() - 0.5) < 0.05


def test_lumaflip_negates_the_grey_component_of_some_images():
    x = rand_images(16)
    y = pipe(lumaflip=1)(x)
    assert torch.allclose(chroma(y), chroma(x), atol=1e-5)  # colour differences untouched
    grey_x, grey_y = x.mean(1), y.mean(1)
    same = (grey_y - grey_x).abs().flatten(1).amax(1) < 1e-5
    flipped = (grey_y + grey_x).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all()) and same.any() and flipped.any()


def test_hue_rotates_colour_around_the_grey_axis():
    x = rand_images()
    y = pipe(hue=1)(x)
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)
    assert torch.allclose(chroma(y).norm(dim=1), chroma(x).norm(dim=1), atol=1e-5)
    assert not torch.allclose(y, x, atol=0.01)


def test_saturation_scales_colour_away_from_grey():
    x = rand_images(2000, size=4)
    y = pipe(saturation=1)(x)
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)  # grey unchanged
    factor = (chroma(y) * chroma(x)).flatten(1).sum(1) / chroma(x).square().flatten(1).sum(1)
    assert torch.allclose(chroma(y), chroma(x) * factor[:, None, None, None], atol=1e-5)
    assert abs(factor.log2().std() - 1) < 0.08
    grey = pipe(saturation=1, saturation_std=50)(x[:64])  # log2 s -> -inf for about half
    nearly_grey = chroma(grey).abs().flatten(1).amax(1) < 1e-5
    assert 10 < int(nearly_grey.sum()) < 54


def test_imgfilter_changes_detail_but_not_the_picture():
    x = F.avg_pool2d(rand_images(8, size=32), 3, 1, 1)
    y = pipe(imgfilter=1)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, x, atol=0.01)
    assert F.cosine_similarity(y.flatten(1), x.flatten(1)).min() > 0.3


def test_noise_adds_gaussian_noise_of_the_right_std():
    x = rand_images(1000, size=8)
    delta = pipe(noise=1)(x) - x
    assert abs(delta.mean()) < 0.005
    assert abs(delta.square().mean().sqrt() - 0.1) < 0.01  # E[sigma^2] = noise_std^2
    per_image = delta.flatten(1).std(1)
    assert 0.4 < (per_image < 0.1 * 0.6745).float().mean() < 0.6  # sigma = |N(0, 0.1)|: median 0.067


def test_cutout_zeroes_one_square_of_cutout_size():
    size = 16
    x = torch.rand(400, 3, size, size) + 0.5
    y = pipe(cutout=1)(x)
    zero = (y == 0).all(1)
    cut = (y == 0) | (y == x)
    assert bool(cut.all()) and bool(((y == 0).any(1) == zero).all())
    clipped_fraction = []
    for mask in zero:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert int(mask.sum()) == h * w  # a rectangle
        assert h <= size // 2 and w <= size // 2
        inside = rows.min() > 0 and rows.max() < size - 1 and cols.min() > 0 and cols.max() < size - 1
        if inside:
            assert h * w == (size // 2) ** 2  # cutout_size^2 of the image
        clipped_fraction.append(h * w / size**2)
    # A uniform centre clips the square at the border: E[area] = (0.5 - 1/16)^2 = 0.191.
    assert abs(sum(clipped_fraction) / len(clipped_fraction) - 0.4375**2) < 0.02


# ---- probabilities ----------------------------------------------------------------------


@pytest.mark.parametrize("op", ["brightness", "rotate"])
def test_each_image_is_augmented_with_probability_p(op):
    x = rand_images(2000, c=1, size=8)
    y = pipe(p=0.3, **{op: 1})(x)
    changed = (y - x).abs().flatten(1).amax(1) > 1e-4
    assert abs(changed.float().mean() - 0.3) < 0.04  # 4 standard deviations


def test_grey_images():
    x = rand_images(4, c=1)
    y = augment_pipe("bgcfnc")(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


# ---- gradients --------------------------------------------------------------------------


def test_grid_sample_is_twice_differentiable():
    """R1 differentiates the input-gradient of grid_sample; torch must support that."""
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 4, 2, dtype=torch.float64) * 2.2 - 1.1
    sample = lambda t: F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.autograd.gradgradcheck(sample, (x,))


@pytest.mark.slow
def test_whole_pipe_has_exact_first_and_second_derivatives():
    augment = augment_pipe("bgcfnc").double()

    def run(x):
        torch.manual_seed(3)  # the same augmentation on every call
        return augment(x)

    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (x,))
    assert torch.autograd.gradgradcheck(run, (x,))


def test_r1_double_backward_through_the_pipe():
    augment = augment_pipe("bgcfnc")
    disc = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Softplus(), torch.nn.Conv2d(8, 1, 14))
    x = rand_images(4).requires_grad_(True)
    logits = disc(augment(x))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    weight_grad = disc[0].weight.grad
    assert weight_grad is not None and torch.isfinite(weight_grad).all() and weight_grad.abs().sum() > 0


def test_preview_has_a_row_per_op_starting_with_the_original():
    x = rand_images(2)
    tiles, labels = preview_rows(x, draws=2)
    assert labels == OPS + ["bgcfnc p=0.5"]
    assert tiles.shape == (len(labels) * 3, 16, 16, 3) and tiles.dtype.name == "uint8"
    assert (tiles[0] == tiles[6]).all() and (tiles[3] == tiles[9]).all()  # rows cycle through x

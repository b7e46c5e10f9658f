"""EQ-T, EQ-T frac and EQ-R (cstylegan/metrics/equivariance.py): each image operation against
its formula, the metric on networks with known answers, and the commands that run it."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from cstylegan.config import TrainConfig
from cstylegan.metrics.compute import parse_metrics
from cstylegan.metrics.equivariance import (bandlimit_filter, equivariance, pseudo_rotate, rotate_bandlimited,
                                            shift_fractional, shift_whole_pixels)
from cstylegan.metrics.errors import MetricError
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator as SG2Generator
from cstylegan.networks.stylegan3 import Generator as SG3Generator, make_transform
from cstylegan.snapshots.checkpoint import save_snapshot
from tests.conftest import assert_one_line_error, run_cli

SIZE = 32
ROWS, COLS = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64),
                            indexing="ij")


def wave(fx, fy, x=COLS, y=ROWS) -> torch.Tensor:
    """cos(2 pi (fx x + fy y) / SIZE + 0.3) at pixel positions x, y: [1, 3, SIZE, SIZE]."""
    return torch.cos(2 * math.pi * (fx * x + fy * y) / SIZE + 0.3).float().expand(1, 3, SIZE, SIZE)


def motion(translate=(0.0, 0.0), rotate_deg=0.0) -> torch.Tensor:
    """The input transform that moves a picture so (the inverse of the motion), as G's buffer holds it."""
    return torch.from_numpy(np.linalg.inv(make_transform(translate, rotate_deg)))


def test_whole_pixel_shift_moves_content_and_masks_what_came_from_outside():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    moved, mask = shift_whole_pixels(x, 3, -2)
    for row in range(8):
        for col in range(8):
            inside = 0 <= col - 3 < 8 and 0 <= row + 2 < 8
            assert mask[0, 0, row, col] == inside
            assert torch.equal(moved[:, :, row, col], x[:, :, row + 2, col - 3] if inside else torch.zeros(2, 3))
    assert shift_whole_pixels(x, 8, 0)[1].sum() == 0  # moved out entirely


@pytest.mark.parametrize("dx, dy", [(2.3, -1.7), (-3.9, 0.5), (0.25, 3.0)])
def test_fractional_shift_of_a_band_limited_wave_is_the_shifted_wave(dx, dy):
    moved, mask = shift_fractional(wave(3, 2), dx, dy)
    inside = mask.bool()
    assert (moved - wave(3, 2, COLS - dx, ROWS - dy))[inside].abs().max() < 0.015
    # the mask: pixels whose 6 Lanczos taps per axis all lie inside the picture
    expected_cols = (COLS - math.floor(dx) - 3 >= 0) & (COLS - math.floor(dx) + 2 < SIZE)
    expected_rows = (ROWS - math.floor(dy) - 3 >= 0) & (ROWS - math.floor(dy) + 2 < SIZE)
    assert torch.equal(inside[0, 0], expected_cols & expected_rows)


def test_fractional_shift_by_whole_pixels_is_the_whole_pixel_shift():
    x = torch.randn(1, 3, SIZE, SIZE)
    moved, mask = shift_fractional(x, 2.0, -1.0)
    assert torch.allclose(moved[mask.bool()], shift_whole_pixels(x, 2, -1)[0][mask.bool()], atol=1e-6)


def test_bandlimit_filter_phases_each_sum_to_one_over_up_squared_and_identity_is_a_delta():
    f = bandlimit_filter(motion(rotate_deg=30), up=4)
    assert f.shape == (47, 47)  # 2 x support (6) x up (4), minus one: odd, so it has a centre
    phases = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(12, 4, 12, 4).sum(dim=[0, 2])
    assert torch.allclose(phases, torch.full((4, 4), 1 / 16), atol=1e-6)
    delta = bandlimit_filter(torch.eye(3, dtype=torch.float64), up=1)  # the band is the pixels' own
    assert delta.shape == (11, 11) and abs(delta[5, 5] - 1) < 1e-5 and (delta.abs().sum() - delta[5, 5]) < 1e-5
    x = torch.randn(2, 3, SIZE, SIZE)
    unrotated, mask = pseudo_rotate(x, torch.eye(3, dtype=torch.float64))
    assert (unrotated - x)[mask.bool()].abs().max() < 1e-5


@pytest.mark.parametrize("degrees", [30, -75, 170])
def test_band_limited_rotation_of_a_wave_is_the_rotated_wave(degrees):
    matrix = motion(rotate_deg=degrees).numpy()
    x, y = COLS - 15.5, ROWS - 15.5  # about the picture's centre
    source_x = matrix[0, 0] * x + matrix[0, 1] * y + 15.5
    source_y = matrix[1, 0] * x + matrix[1, 1] * y + 15.5
    rotated, mask = rotate_bandlimited(wave(2, 1), motion(rotate_deg=degrees))
    assert 0.38 < mask.mean() < 0.40  # the 47-tap filter's border and the corners a turn leaves empty
    assert (rotated - wave(2, 1, source_x, source_y))[mask.bool()].abs().max() < 0.003


def test_rotation_by_90_degrees_turns_pixels_as_rot90():
    x = torch.randn(2, 3, SIZE, SIZE)
    rotated, mask = rotate_bandlimited(x, motion(rotate_deg=90))
    assert (rotated - torch.rot90(x, 1, dims=(2, 3)))[mask.bool()].abs().max() < 0.03


class GridInput(nn.Module):
    """Holds the input transform, as StyleGAN3's input layer does, and records each one used."""

    def __init__(self):
        super().__init__()
        self.register_buffer("transform", torch.eye(3))
        self.used = []


class WaveSynthesis(nn.Module):
    """The picture is a mean of cosines of the input grid (pixel centres in image widths, moved by
    the input transform): an exact band-limited function of it. With `ignore`, the grid is never moved."""

    def __init__(self, ignore: bool):
        super().__init__()
        self.input, self.ignore = GridInput(), ignore
        self.freqs = torch.tensor([[3.0, 1.0], [-2.0, 2.5], [0.5, -4.0]], dtype=torch.float64)  # cycles per width

    def forward(self, ws, noise_mode="const"):
        self.input.used.append(self.input.transform.clone())
        centres = (torch.arange(SIZE, dtype=torch.float64) + 0.5) / SIZE - 0.5
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        grid = torch.stack([x.flatten(), y.flatten(), torch.ones(SIZE * SIZE, dtype=torch.float64)])
        if not self.ignore:
            grid = self.input.transform.double() @ grid
        angles = 2 * math.pi * (self.freqs @ grid[:2])[None] + ws[:, 0, :3, None].double()  # a phase per w
        return torch.cos(angles).mean(dim=1).reshape(-1, 1, SIZE, SIZE).float().expand(-1, 3, -1, -1)


class WaveGenerator(nn.Module):
    def __init__(self, ignore=False):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution = 8, 0, SIZE
        self.synthesis = WaveSynthesis(ignore)

    def mapping(self, z, c):
        return (z * math.pi).unsqueeze(1)


def measure(G, names, num_gen=64):
    return equivariance(G, names, num_gen, torch.zeros([1, 0]), np.zeros(num_gen, dtype=np.int64), seed=5)


def test_an_exactly_band_limited_network_scores_very_high():
    results = measure(WaveGenerator(), ["eqt_int", "eqt_frac", "eqr"])
    assert results["eqt_int"] > 100  # whole-pixel moves of an exact function: equal but for rounding
    assert results["eqt_frac"] > 50 and results["eqr"] > 50  # limited by the resampling filters alone
    # for comparison, an untrained StyleGAN3-T (the T config is not built to be rotation-equivariant)
    torch.manual_seed(0)
    sg3 = SG3Generator(16, 0, 16, SIZE, 3, channel_base=2048, channel_max=16).eval()
    untrained = measure(sg3, ["eqt_int", "eqr"], num_gen=8)
    assert untrained["eqt_int"] > 50 and untrained["eqr"] < results["eqr"] - 10
    assert torch.equal(sg3.synthesis.input.transform, torch.eye(3))  # left as it was found


def psnr_of_unmoved(pictures: torch.Tensor, dx: int, dy: int) -> tuple:
    """(squared error, count) of pictures against themselves moved (dx, dy) pixels, over the overlap."""
    p = pictures.double().numpy()
    rows, cols = np.arange(SIZE)[:, None], np.arange(SIZE)[None, :]
    inside = (rows - dy >= 0) & (rows - dy < SIZE) & (cols - dx >= 0) & (cols - dx < SIZE)
    moved = p[:, :, np.clip(rows - dy, 0, SIZE - 1), np.clip(cols - dx, 0, SIZE - 1)]
    return float(((moved - p) ** 2 * inside).sum()), float(inside.sum() * p.shape[0] * p.shape[1])


def test_a_network_that_ignores_the_transform_scores_the_computed_psnr():
    G = WaveGenerator(ignore=True)
    results = measure(G, ["eqt_int"])
    used = list(G.synthesis.input.used)  # per group of 4 latents: the identity, then the shift
    assert len(used) == 2 * 16
    error = count = 0.0
    for group, transform in enumerate(used[1::2]):
        assert torch.equal(used[2 * group], torch.eye(3))
        dx, dy = (round(-float(transform[axis, 2]) * SIZE) for axis in (0, 1))
        assert abs(dx) <= 4 and abs(dy) <= 4  # up to 1/8 of the width
        z = torch.from_numpy(np.stack([np.random.RandomState(5 + i).randn(8) for i in range(4 * group, 4 * group + 4)]))
        e, n = psnr_of_unmoved(G.synthesis(G.mapping(z.float(), None)), dx, dy)
        error, count = error + e, count + n
    assert results["eqt_int"] == pytest.approx(20 * math.log10(2) - 10 * math.log10(error / count), abs=1e-6)
    assert results["eqt_int"] < 20
    assert max(measure(WaveGenerator(ignore=True), ["eqt_frac", "eqr"]).values()) < 20


def test_transforms_depend_on_seed_and_group_only():
    first, again = measure(WaveGenerator(ignore=True), ["eqt_frac"]), measure(WaveGenerator(ignore=True), ["eqt_frac"])
    assert first == again
    other = equivariance(WaveGenerator(ignore=True), ["eqt_frac"], 64, torch.zeros([1, 0]), np.zeros(64, dtype=int),
                         seed=6)
    assert other != first


def test_equivariance_names_parse_and_stylegan2_is_refused_with_one_line():
    assert parse_metrics("eqt_int,eqt50k_frac,eqr") == ["eqt_int", "eqt50k_frac", "eqr"]
    with pytest.raises(MetricError, match="two folders"):
        parse_metrics("eqt_int", folders=True)
    sg2 = SG2Generator(8, 0, 8, 8, 3, mapping_kwargs=dict(num_layers=1), channel_base=64, channel_max=8)
    with pytest.raises(MetricError, match="need a StyleGAN3 generator.*NVlabs' code refuses it too"):
        measure(sg2, ["eqt_int"])


def test_train_py_refuses_equivariance_metrics_for_stylegan2_before_it_starts(colour_zip, tmp_path):
    result = run_cli("train.py", "--data", colour_zip, "--cfg", "small", "--kimg", "1", "--metrics", "eqt_int,fid",
                     "--outdir", tmp_path)
    assert_one_line_error(result, "--metrics eqt_int", "StyleGAN3", "--cfg stylegan3-t")
    assert not any(tmp_path.iterdir())


@pytest.fixture
def sg3_snapshot(colour_zip, tmp_path):
    """An untrained conditional 16 px StyleGAN3-T snapshot whose config names the colours."""
    config = TrainConfig(data=str(colour_zip), cfg="stylegan3-t", cond=True, cbase=256, cmax=16).resolve(16)
    G_kwargs, D_kwargs = config.network_kwargs(c_dim=4)
    torch.manual_seed(0)
    path = tmp_path / "network-snapshot-000000.pt"
    G = SG3Generator(**G_kwargs)
    save_snapshot(path, dict(G=G.state_dict(), G_ema=G.state_dict(), D=Discriminator(**D_kwargs).state_dict(),
                             G_family="stylegan3", G_kwargs=G_kwargs, D_kwargs=D_kwargs, cur_nimg=0,
                             class_names=["red_male", "green_female", "blue_male", "yellow_female"],
                             config=config.to_dict()))
    return path


def test_metrics_cli_measures_equivariance_of_a_stylegan3_snapshot(sg3_snapshot, tmp_path):
    result = run_cli("-m", "cstylegan.metrics", "--network", sg3_snapshot, "--metrics", "eqt_int,eqt_frac,eqr",
                     "--num-gen", "8", "--verbose=0", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("eqt_int", "eqt_frac", "eqr"):
        [line] = [json.loads(text) for text in (tmp_path / f"metric-{name}.jsonl").read_text().splitlines()]
        assert set(line["results"]) == {name} and 10 < line["results"][name] < 200 and line["total_time"] > 0
        assert line["settings"]["num_gen"] == 8 and name in result.stdout


@pytest.mark.slow  # starts two processes (gloo), each importing torch
def test_metrics_cli_with_two_processes_gives_the_one_process_result(sg3_snapshot, tmp_path):
    results = {}
    for gpus in (1, 2):
        out = tmp_path / f"gpus{gpus}.jsonl"
        result = run_cli("-m", "cstylegan.metrics", "--network", sg3_snapshot, "--metrics", "eqt_frac,eqr",
                         "--num-gen", "12", "--quiet", "--device", "cpu", "--gpus", gpus, "--out", out)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(text) for text in out.read_text().splitlines()]
        assert all(line["num_gpus"] == gpus for line in lines)
        results[gpus] = {key: value for line in lines for key, value in line["results"].items()}
    assert results[2] == pytest.approx(results[1], abs=1e-6)  # the same transforms, shared by group

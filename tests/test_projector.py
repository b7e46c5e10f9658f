"""Projection: NVlabs' schedule and noise penalty against their formulas, a projection that finds
the right picture from the wrong start, the offline perceptual distances, and the CLI as a user runs it."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.data.labels import LabelSpace
from cstylegan.projection.cli import pick_class
from cstylegan.projection.optimiser import learning_rate, load_target, noise_maps, noise_penalty, project
from cstylegan.projection.perceptual import perceptual_distance
from cstylegan.snapshots.checkpoint import discriminator_from, load_snapshot
from tests.conftest import COLOURS, assert_one_line_error, run_cli
from tests.test_equivariance import sg3_snapshot  # noqa: F401  (a fixture)

RED, BLUE = list(COLOURS).index("red_male"), list(COLOURS).index("blue_male")


def solid(colour, size=16, noise=0.0, seed=0) -> torch.Tensor:
    """[1, 3, size, size] in [-1, 1] of one colour (0-255), with optional Gaussian noise (0-255 units)."""
    rng = np.random.default_rng(seed)
    pixels = np.array(colour, np.float32) + rng.normal(0, noise, (size, size, 3)) if noise else \
        np.broadcast_to(np.array(colour, np.float32), (size, size, 3))
    return torch.from_numpy(np.clip(pixels, 0, 255).astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1


def test_learning_rate_ramps_up_then_cosine_down():
    steps = 1000
    assert learning_rate(0, steps) == 0
    assert learning_rate(25, steps) == pytest.approx(0.1 * 0.5)  # halfway up the 5 % ramp
    assert learning_rate(500, steps) == pytest.approx(0.1)
    # at t = 0.875 the ramp-down argument is 0.5: 0.5 - 0.5 cos(pi / 2) = 0.5
    assert learning_rate(875, steps) == pytest.approx(0.1 * 0.5)
    assert learning_rate(999, steps) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.004 * math.pi)))


def test_noise_penalty_is_squared_autocorrelation_at_every_scale():
    ones16 = torch.ones(16, 16)
    # 16 px and its 8 px pooling: each has two shifts, each shift's mean product is 1
    assert float(noise_penalty([ones16])) == pytest.approx(4.0)
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(8)] for i in range(8)])
    assert float(noise_penalty([checker])) == pytest.approx(2.0)  # neighbours multiply to -1 both ways
    assert float(noise_penalty([torch.randn(64, 64, generator=torch.Generator().manual_seed(0))])) < 1e-3


@pytest.mark.slow
def test_projection_finds_red_starting_from_the_blue_class(G):
    target = solid(COLOURS["red_male"])
    before = [noise.clone() for noise in noise_maps(G)]
    result = project(G, target, steps=150, class_index=BLUE)
    assert result.ws.shape == (1, G.num_ws, G.w_dim)
    assert result.history.shape == (150, G.num_ws, G.w_dim)
    assert (result.history[:, 0] == result.history[:, 1]).all(), "plain W: one w repeated for every layer"
    mean = (result.image * 127.5 + 128).mean(dim=[0, 2, 3])
    distances = (torch.tensor(list(COLOURS.values()), dtype=torch.float32) - mean).norm(dim=1)
    assert distances.argmin() == RED, f"reconstruction's mean colour {mean.tolist()}"
    assert result.distances[-1] < result.distances[0] / 5
    assert all(torch.equal(a, b) for a, b in zip(before, noise_maps(G))), "G's noise must be restored"
    assert not any(noise.requires_grad for noise in noise_maps(G))


def test_w_plus_optimises_each_layer_on_its_own(G):
    result = project(G, solid(COLOURS["green_female"]), steps=20, w_plus=True, optimize_noise=False)
    assert not torch.equal(result.ws[0, 0], result.ws[0, -1])


def test_projection_refuses_a_target_of_the_wrong_size(G):
    with pytest.raises(ValueError, match="draws 16 px"):
        project(G, torch.zeros(1, 3, 32, 32), steps=1)


@pytest.mark.parametrize("kind", ["inception", "discriminator"])
def test_perceptual_distances_are_zero_for_equal_images_and_grow_with_difference(kind, snapshot_path):
    D = discriminator_from(load_snapshot(snapshot_path))
    distance = perceptual_distance(kind, D)
    red, red_noisy, blue = solid(COLOURS["red_male"]), solid(COLOURS["red_male"], noise=8), solid(COLOURS["blue_male"])
    same = distance(red, red)
    near = distance(red_noisy, red)
    far = distance(blue, red)
    assert same.shape == (1,) and float(same) == pytest.approx(0, abs=1e-6)
    assert 0 < float(near) < float(far)
    pixel_only = float((blue - red).square().mean())
    assert float(far) > pixel_only, "the feature term adds to the pixel term"


def test_load_target_crops_the_centre_square(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 10:30] = (255, 0, 0)  # the centre 20 x 20 of a 40-wide image is red; the sides black
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    target = load_target(tmp_path / "wide.png", 8)
    assert target.shape == (1, 3, 8, 8)
    assert torch.allclose(target[0, :, 2:6, 2:6], torch.tensor([1.0, -1.0, -1.0])[:, None, None], atol=0.02)


@pytest.mark.slow
def test_cli_writes_the_nvlabs_npz_that_generate_renders_identically(snapshot_path, tmp_path):
    Image.fromarray(np.full((24, 24, 3), COLOURS["yellow_female"], np.uint8)).save(tmp_path / "face.png")
    result = run_cli("-m", "cstylegan.projection", "--network", str(snapshot_path), "--target", str(tmp_path / "face.png"),
                     "--steps", "60", "--perceptual", "pixel", "--no-noise", "--class", "green_female",
                     "--outdir", str(tmp_path / "proj"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "PSNR" in result.stdout
    w = np.load(tmp_path / "proj" / "projected_w.npz")["w"]
    assert w.shape[0] == 1 and w.ndim == 3
    assert Image.open(tmp_path / "proj" / "target.png").size == (16, 16)
    progress = Image.open(tmp_path / "proj" / "progress.png")
    assert progress.width >= 9 * 16, "target + 8 steps"
    proj = np.asarray(Image.open(tmp_path / "proj" / "proj.png").convert("RGB"), np.float32)
    assert np.linalg.norm(proj.mean(axis=(0, 1)) - COLOURS["yellow_female"]) < 60

    rendered = run_cli("generate.py", "--network", str(snapshot_path), "--projected-w",
                       str(tmp_path / "proj" / "projected_w.npz"), "--outdir", str(tmp_path / "gen"), "--device", "cpu")
    assert rendered.returncode == 0, rendered.stderr
    # --no-noise: the network's own noise maps drew proj.png, so generate.py draws exactly the same picture
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gen" / "proj00.png").convert("RGB")), proj.astype(np.uint8))


@pytest.mark.parametrize("args, message", [
    (["--target", "{tmp}/none.png"], "file not found"),
    (["--target", "{tmp}/junk.png"], "not an image"),
])
def test_cli_file_errors_are_one_line(snapshot_path, tmp_path, args, message):
    (tmp_path / "junk.png").write_text("not a png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "ok.png")
    result = run_cli("-m", "cstylegan.projection", "--network", str(snapshot_path), "--steps", "1",
                     *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.slow
def test_projection_quality_benchmark_prints_a_row_per_distance(snapshot_path, colour_zip, tmp_path):
    result = run_cli("benchmarks/projection_quality.py", "--network", str(snapshot_path), "--data", str(colour_zip),
                     "--num", "1", "--steps", "20", "--kinds", "pixel,discriminator",
                     "--picture", str(tmp_path / "quality.png"))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in result.stdout.splitlines()
            if line.split()[:1] in (["pixel"], ["discriminator"])}
    assert set(rows) == {"pixel", "discriminator"}
    for psnr_db, ssim, inception, d_features, seconds in rows.values():
        assert psnr_db > 15 and 0 < ssim <= 1 and inception > 0 and d_features > 0 and seconds > 0
    assert Image.open(tmp_path / "quality.png").height >= 3 * 16, "targets and one row per distance"


@pytest.mark.parametrize("spec, message", [("purple_male", "unknown class 'purple_male'"),
                                           ("red_male,blue_male", "starts from one class; name one")])
def test_class_errors_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        pick_class(spec, LabelSpace.of_classes(COLOURS), len(COLOURS))


@pytest.mark.parametrize("name", ["target.png", "proj.png"])
def test_the_projector_never_writes_over_its_target(snapshot_path, tmp_path, name):
    """`--target me/target.png --outdir me` would replace the user's photo with its crop."""
    photo = tmp_path / "me" / name
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), np.uint8)).save(photo)
    before = photo.read_bytes()
    result = run_cli("-m", "cstylegan.projection", "--network", str(snapshot_path), "--target", str(photo),
                     "--outdir", str(photo.parent), "--steps", "1")
    assert_one_line_error(result, f"--outdir ({name}) {photo} is the same file as --target", "another path for --outdir")
    assert photo.read_bytes() == before and sorted(p.name for p in photo.parent.iterdir()) == [name]


def test_a_stylegan3_network_projects_and_its_projected_w_renders_and_swaps(sg3_snapshot, tmp_path):
    """StyleGAN3 has no noise maps to optimise: the projection is w alone, and generate.py draws
    exactly proj.png from the written w, also with --class and a swap layer."""
    Image.fromarray(np.full((24, 24, 3), COLOURS["red_male"], np.uint8)).save(tmp_path / "face.png")
    result = run_cli("-m", "cstylegan.projection", "--network", sg3_snapshot, "--target", tmp_path / "face.png",
                     "--steps", "5", "--perceptual", "pixel", "--outdir", tmp_path / "proj", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    rendered = run_cli("generate.py", "--network", sg3_snapshot, "--projected-w", tmp_path / "proj" / "projected_w.npz",
                       "--outdir", tmp_path / "gen", "--device", "cpu")
    assert rendered.returncode == 0, rendered.stderr
    proj = np.asarray(Image.open(tmp_path / "proj" / "proj.png").convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gen" / "proj00.png").convert("RGB")), proj)
    swapped = run_cli("generate.py", "--network", sg3_snapshot, "--projected-w", tmp_path / "proj" / "projected_w.npz",
                      "--class", "blue_male", "--swap-layer", "4", "--outdir", tmp_path / "swap", "--device", "cpu")
    assert swapped.returncode == 0, swapped.stderr
    [picture] = list((tmp_path / "swap" / "blue_male").glob("*.png"))
    assert not np.array_equal(np.asarray(Image.open(picture).convert("RGB")), proj)  # the later ws changed

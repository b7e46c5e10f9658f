"""generate.py as a user runs it: files per class and seed, official seeds, one-line errors."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.generation.seeds import z_from_seeds
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import export_generator, load_snapshot, open_for_inference, save_snapshot
from tests.conftest import COLOURS, run_cli


@pytest.mark.slow
def test_writes_one_png_per_class_and_seed_matching_the_official_recipe(snapshot_path, tmp_path):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--class", "red_male,3", "--seeds", "0-2,7",
                     "--outdir", str(tmp_path), "--grid=1", "--device", "cpu")  # NVlabs' spelling
    assert result.returncode == 0, result.stderr
    assert f"Network: {snapshot_path}" in result.stdout
    for name in ("red_male", "yellow_female"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    # The official recipe: z from RandomState(seed), psi 1, const noise, x*127.5+128 clamped to uint8.
    G = open_for_inference(snapshot_path).G
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float()
    c = torch.zeros([1, G.c_dim])
    c[0, 3] = 1
    with torch.no_grad():
        expected = (G(z, c, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "yellow_female" / "seed0007.png")), expected)
    # Class-aware truncation to psi 0 gives that class's average image for every seed.
    run_cli("generate.py", "--network", str(snapshot_path), "--class", "blue_male", "--seeds", "1,2", "--trunc", "0",
            "--outdir", str(tmp_path / "t0"), "--device", "cpu")
    a, b = (np.asarray(Image.open(tmp_path / "t0" / "blue_male" / f"seed000{s}.png")) for s in (1, 2))
    assert np.array_equal(a, b)
    assert a.mean(axis=(0, 1)).argmax() == 2  # blue


@pytest.mark.slow
def test_network_defaults_to_newest_snapshot_under_training_runs(trained_run, tmp_path):
    shutil.copytree(trained_run, tmp_path / "training-runs" / trained_run.name)
    result = run_cli("generate.py", "--class", "all", "--seeds", "0", "--outdir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "network-snapshot-000004.pt" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(COLOURS)


@pytest.fixture(scope="module")
def unconditional_path(tmp_path_factory):
    config = TrainConfig(data="", cfg="small").resolve(8)
    G_kwargs, D_kwargs = config.network_kwargs(c_dim=0)
    G, D = Generator(**G_kwargs), Discriminator(**D_kwargs)
    path = tmp_path_factory.mktemp("uncond") / "network-snapshot-000000.pt"
    save_snapshot(path, dict(G=G.state_dict(), G_ema=G.state_dict(), D=D.state_dict(), G_kwargs=G_kwargs,
                             D_kwargs=D_kwargs, class_names=[], cur_nimg=0))
    return path


@pytest.mark.slow
def test_unconditional_network_writes_straight_into_outdir(unconditional_path, tmp_path):
    result = run_cli("generate.py", "--network", str(unconditional_path), "--seeds", "3", "--outdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "seed0003.png").size == (8, 8)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "ghibli_male"], "unknown class 'ghibli_male'; known classes: red_male, green_female"),
        ([], "this network is conditional: pass --class"),
        (["--class", "0", "--seeds", "3-1"], "is not a seed list"),
        (["--class", "0", "--seeds", "a"], "is not a seed list"),
    ],
)
def test_errors_on_a_conditional_network(snapshot_path, tmp_path, args, message):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--outdir", str(tmp_path), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_file_errors(unconditional_path, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a snapshot at all")
    cases = [
        (["--network", str(unconditional_path), "--class", "a"], "network is unconditional"),
        (["--network", str(tmp_path / "missing.pt")], "network file not found"),
        (["--network", str(garbage)], "cannot read"),
    ]
    for args, message in cases:
        result = run_cli("generate.py", "--outdir", str(tmp_path / "out"), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    result = run_cli("generate.py", "--seeds", "0", cwd=tmp_path)
    assert result.returncode == 2 and "no network-snapshot-*.pt under training-runs/" in result.stderr


@pytest.mark.slow
def test_an_exported_generator_draws_the_same_pictures_from_a_small_file(snapshot_path, tmp_path):
    """The shipped model's format: G_ema alone in float16, opened by torch.load(weights_only=True) and generate.py."""
    exported = export_generator(load_snapshot(snapshot_path), tmp_path / "G_ema.pt")
    small = torch.load(exported, weights_only=True)
    assert set(small) == {"G_family", "G_kwargs", "class_names", "attributes", "label_names", "cur_nimg", "config",
                          "G_ema", "format"}
    assert exported.stat().st_size < 0.6 * snapshot_path.stat().st_size
    G, opened16 = open_for_inference(snapshot_path).G, open_for_inference(exported)
    G16 = opened16.G
    assert opened16.class_names == list(COLOURS)
    z = torch.from_numpy(np.random.RandomState(3).randn(4, G.z_dim)).float()
    c = torch.eye(G.c_dim)
    with torch.no_grad():
        difference = (G(z, c, noise_mode="const") - G16(z, c, noise_mode="const")).abs().max()
    assert 0 < difference < 0.02  # float16 weights: a few thousandths of the [-1, 1] range
    result = run_cli("generate.py", "--network", str(exported), "--class", "blue_male", "--seeds", "0", "--outdir",
                     str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "blue_male" / "seed0000.png").is_file()


def test_z_from_seeds_is_nvlabs_seed_to_latent_row_by_row():
    z = z_from_seeds([7, 0, 7], 512)
    assert z.shape == (3, 512) and z.dtype == torch.float32
    np.testing.assert_allclose(z[0].numpy(), np.random.RandomState(7).randn(512).astype(np.float32))
    np.testing.assert_allclose(z[1].numpy(), np.random.RandomState(0).randn(512).astype(np.float32))
    assert torch.equal(z[0], z[2])

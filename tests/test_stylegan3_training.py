"""StyleGAN3 T and R train through the same loop, loss and snapshots, and generate.py moves them."""


import numpy as np
import pytest
from PIL import Image

from cstylegan.training.progress import read_stats
from cstylegan.config import TrainConfig
from cstylegan.networks import StyleGAN3Generator
from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference
from cstylegan.training.loop import train
from tests.conftest import run_cli


def test_stylegan3_presets_follow_the_official_train_py():
    t = TrainConfig(data="x.zip", cfg="stylegan3-t").resolve(256)
    assert (t.batch, t.glr, t.dlr, t.map_depth, t.gamma) == (32, 0.0025, 0.002, 2, 2.0)
    assert (t.style_mixing_prob, t.pl_weight, t.G_reg_interval, t.blur_init_sigma) == (0, 0, None, 0)
    G_kwargs, D_kwargs = t.network_kwargs(c_dim=6)
    assert G_kwargs["magnitude_ema_beta"] == pytest.approx(0.5 ** (32 / 20e3))
    assert G_kwargs["channel_base"] == D_kwargs["channel_base"] == 32768
    r = TrainConfig(data="x.zip", cfg="stylegan3-r", batch=16).resolve(512)
    assert (r.blur_init_sigma, r.blur_fade_kimg, r.gamma) == (10, 16 * 200 / 32, 8.0)
    G_kwargs, D_kwargs = r.network_kwargs(c_dim=6)
    assert G_kwargs["conv_kernel"] == 1 and G_kwargs["use_radial_filters"]
    assert (G_kwargs["channel_base"], G_kwargs["channel_max"], D_kwargs["channel_base"]) == (65536, 1024, 32768)


@pytest.fixture(scope="module", params=["stylegan3-t", "stylegan3-r"])
def stylegan3_run(request, colour_zip, tmp_path_factory):
    config = TrainConfig(data=str(colour_zip), outdir=str(tmp_path_factory.mktemp("runs")), cfg=request.param,
                         cond=True, kimg=0.064, batch=8, cbase=512, cmax=16, tick=0.032, snap=1, workers=0,
                         device="cpu", aug="noaug")
    return request.param, train(config, log=lambda line: None)


@pytest.mark.slow
def test_stylegan3_trains_and_snapshots(stylegan3_run):
    arch, run_dir = stylegan3_run
    records = read_stats(run_dir / "stats.jsonl")
    assert records[-1]["Progress/kimg"] >= 0.064 and all(np.isfinite(r["Loss/G/loss"]) for r in records)
    assert not any("Loss/pl_penalty" in r for r in records)  # no path length in StyleGAN3
    if arch == "stylegan3-r":
        assert 0 < records[-1]["Progress/blur_sigma"] < 10  # fading from 10 over batch * 200 / 32 kimg
    snapshot = load_snapshot(sorted(run_dir.glob("network-snapshot-*.pt"))[-1])
    assert snapshot["G_family"] == "stylegan3"
    opened = open_for_inference(sorted(run_dir.glob("network-snapshot-*.pt"))[-1])
    G = opened.G
    assert isinstance(G, StyleGAN3Generator) and opened.class_names[0] == "red_male"
    # The magnitude EMA of every layer moved away from its initial 1 during training.
    magnitudes = [b for name, b in G.named_buffers() if name.endswith("magnitude_ema")]
    assert magnitudes and all(float(m) != 1.0 for m in magnitudes)


@pytest.mark.slow
def test_generate_translates_a_stylegan3_network(stylegan3_run, tmp_path):
    arch, run_dir = stylegan3_run
    network = str(sorted(run_dir.glob("network-snapshot-*.pt"))[-1])
    for name, extra in (("plain", []), ("moved", ["--translate", "0.25,0", "--rotate", "10"])):
        result = run_cli("generate.py", "--network", network, "--class", "0", "--seeds", "1",
                         "--outdir", str(tmp_path / name), *extra)
        assert result.returncode == 0, result.stderr
    plain, moved = (np.asarray(Image.open(tmp_path / n / "red_male" / "seed0001.png")) for n in ("plain", "moved"))
    assert plain.shape == moved.shape == (16, 16, 3) and not np.array_equal(plain, moved)


@pytest.mark.slow
def test_translate_is_refused_for_stylegan2(trained_run, tmp_path):
    network = str(sorted(trained_run.glob("network-snapshot-*.pt"))[-1])
    result = run_cli("generate.py", "--network", network, "--class", "0", "--translate", "0.1,0",
                     "--outdir", str(tmp_path))
    assert result.returncode == 2 and "StyleGAN2 network" in result.stderr

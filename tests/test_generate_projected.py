"""generate.py --projected-w: an NVlabs projected_w.npz renders as the seed it came from; class restyling."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli

RED, BLUE = 0, 2  # indices in the fixture's class list


def red_ws(G, seeds):
    """ws [N, num_ws, w_dim] of red_male for these seeds, as the projector would save them."""
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    c = torch.zeros([len(seeds), G.c_dim])
    c[:, RED] = 1
    with torch.no_grad():
        return G.mapping(z, c)


def project(snapshot_path, outdir, npz, *args):
    return run_cli("generate.py", "--network", str(snapshot_path), "--projected-w", str(npz), "--outdir", str(outdir),
                   "--device", "cpu", *args)


def png(path):
    return np.asarray(Image.open(path))


@pytest.mark.slow
def test_a_projected_w_renders_as_the_seed_it_was_mapped_from(snapshot_path, G, tmp_path):
    np.savez(tmp_path / "w.npz", w=red_ws(G, [7, 8]).numpy())
    np.savez(tmp_path / "w2d.npz", w=red_ws(G, [7])[0].numpy())  # [num_ws, w_dim] is accepted too
    result = project(snapshot_path, tmp_path / "proj", tmp_path / "w.npz")
    assert result.returncode == 0, result.stderr
    assert project(snapshot_path, tmp_path / "proj2d", tmp_path / "w2d.npz").returncode == 0
    run_cli("generate.py", "--network", str(snapshot_path), "--class", "red_male", "--seeds", "7,8",
            "--outdir", str(tmp_path / "seeds"), "--device", "cpu")
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["proj00.png", "proj01.png"]
    for i, seed in enumerate([7, 8]):
        seed_png = png(tmp_path / "seeds" / "red_male" / f"seed{seed:04d}.png")
        assert np.abs(png(tmp_path / "proj" / f"proj{i:02d}.png").astype(int) - seed_png).max() <= 1
    seed7 = png(tmp_path / "seeds" / "red_male" / "seed0007.png")
    assert np.array_equal(png(tmp_path / "proj2d" / "proj00.png"), seed7)  # one w alone: exactly generate.py's


@pytest.mark.slow
def test_class_keeps_the_first_k_projected_ws_and_takes_the_rest_from_its_average(snapshot_path, G, tmp_path):
    ws = red_ws(G, [7])
    np.savez(tmp_path / "w.npz", w=ws.numpy())
    result = project(snapshot_path, tmp_path, tmp_path / "w.npz", "--class", "blue_male", "--swap-layer", "1")
    assert result.returncode == 0, result.stderr
    restyled = torch.cat([ws[:, :1], G.mapping.w_avg_per_class[BLUE].expand(1, G.num_ws - 1, -1)], dim=1)
    with torch.no_grad():
        expected = (G.synthesis(restyled, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    image = png(tmp_path / "blue_male" / "proj00.png")
    assert np.array_equal(image, expected[0].permute(1, 2, 0).numpy())
    assert image.mean(axis=(0, 1)).argmax() == 2  # the red projection comes out blue


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, [], "--projected-w: file not found"),
        (lambda p: np.savez(p, ws=np.zeros([1, 6, 4])), [], "no 'w' array (it has: ws)"),
        (lambda p: np.savez(p, w=np.zeros([1, 5, 4])), [], "w has shape [1, 5, 4], this network needs [N, 6, "),
        (lambda p: p.write_bytes(b"not numpy"), [], "cannot read it as .npz"),
        ("ok", ["--class", "blue_male"], "--projected-w with --class needs --swap-layer K in 1..5"),
        ("ok", ["--class", "blue_male", "--swap-layer", "6"], "in 1..5"),
        ("ok", ["--swap-layer", "2"], "needs --class B"),
        ("ok", ["--class", "nobody", "--swap-layer", "2"], "unknown class 'nobody'"),
        ("ok", ["--video"], "--video and --projected-w write different things"),
    ],
)
def test_bad_projected_w_is_a_one_line_error(snapshot_path, G, tmp_path, make, args, message):
    npz = tmp_path / "w.npz"
    if make == "ok":
        np.savez(npz, w=red_ws(G, [0]).numpy())
    elif make is not None:
        make(npz)
    result = project(snapshot_path, tmp_path / "out", npz, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""generate.py --style-mix: the grid's layout and every mix against G.synthesis of hand-mixed ws."""

import numpy as np
import pytest
import torch
from PIL import Image

from cstylegan.generation.style_mix import mix_ws, parse_styles
from cstylegan.networks import stylegan2, stylegan3
from tests.conftest import run_cli

BLUE = 2  # blue_male's index in the fixture's class list
ROWS, COLS = [0, 1], [2, 3, 4]


def seed_ws(G, seed, psi):
    """ws of one seed of blue_male, truncated toward the class average, as generate.py's --trunc does."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    c = torch.zeros([1, G.c_dim])
    c[0, BLUE] = 1
    return G.mapping(z, c, truncation_psi=psi, truncation_center="class")


def render(G, ws):
    with torch.no_grad():
        image = (G.synthesis(ws, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return image[0].permute(1, 2, 0).numpy()


def style_mix(snapshot_path, outdir, styles):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--class", "blue_male", "--style-mix",
                     "--row-seeds", "0-1", "--col-seeds", "2-4", "--styles", styles, "--trunc", "0.7",
                     "--outdir", str(outdir), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(outdir / "stylemix_blue_male.png"))
    assert grid.shape == ((len(ROWS) + 1) * 16, (len(COLS) + 1) * 16, 3)
    return grid.reshape(len(ROWS) + 1, 16, len(COLS) + 1, 16, 3).transpose(0, 2, 1, 3, 4).astype(int)


@pytest.mark.slow
def test_coarse_mix_takes_ws_0_to_3_from_the_column_seed(snapshot_path, G, tmp_path):
    tiles = style_mix(snapshot_path, tmp_path, "coarse")
    assert (tiles[0, 0] == 255).all()  # the blank corner
    with torch.no_grad():
        rows = [seed_ws(G, s, 0.7) for s in ROWS]
        cols = [seed_ws(G, s, 0.7) for s in COLS]
    # A 16 px StyleGAN2 has 6 ws; the coarse ones (4 and 8 px) are 0-3. Batched and single
    # runs may differ in the last float bit, so allow one step of uint8 rounding.
    for c, col in enumerate(cols):
        assert np.abs(tiles[0, c + 1] - render(G, col)).max() <= 1
    for r, row in enumerate(rows):
        assert np.abs(tiles[r + 1, 0] - render(G, row)).max() <= 1
        for c, col in enumerate(cols):
            mixed = torch.cat([col[:, :4], row[:, 4:]], dim=1)
            assert np.abs(tiles[r + 1, c + 1] - render(G, mixed)).max() <= 1
    # The left column is what generate.py draws for those seeds.
    run_cli("generate.py", "--network", str(snapshot_path), "--class", "blue_male", "--seeds", "0-1", "--trunc", "0.7",
            "--outdir", str(tmp_path / "plain"), "--device", "cpu")
    for r, seed in enumerate(ROWS):
        plain = np.asarray(Image.open(tmp_path / "plain" / "blue_male" / f"seed000{seed}.png")).astype(int)
        assert np.abs(tiles[r + 1, 0] - plain).max() <= 1


@pytest.mark.slow
def test_the_whole_range_gives_the_column_image_and_an_empty_one_the_row(snapshot_path, G, tmp_path):
    tiles = style_mix(snapshot_path, tmp_path, f"0-{G.num_ws - 1}")
    for r in range(len(ROWS)):
        assert np.abs(tiles[r + 1, 1:] - tiles[0, 1:]).max() <= 1
    row, col = seed_ws(G, 0, 1), seed_ws(G, 2, 1)
    assert torch.equal(mix_ws(row, col, range(0)), row)
    assert torch.equal(mix_ws(row, col, range(G.num_ws)), col)


def test_named_groups_follow_the_papers_split_at_1024_px():
    """Karras et al.: coarse 4-8 px, middle 16-32 px, fine 64-1024 px, two ws per resolution."""
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=1024, img_channels=3, channel_base=2048,
                            channel_max=4)
    assert [parse_styles(g, G) for g in ("coarse", "middle", "fine")] == [range(0, 4), range(4, 8), range(8, 18)]
    G3 = stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=256, img_channels=3, channel_base=256,
                             channel_max=4)
    groups = [parse_styles(g, G3) for g in ("coarse", "middle", "fine")]
    assert groups[0].start == 0 and groups[-1].stop == G3.num_ws  # StyleGAN3's ws split into three, in order
    assert all(a.stop == b.start for a, b in zip(groups, groups[1:]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "blue_male", "--styles", "4-2"], "'4-2' is not coarse, middle, fine or a w range A-B within 0-5"),
        (["--class", "blue_male", "--styles", "0-6"], "within 0-5 (this network has 6 ws)"),
        (["--class", "blue_male", "--styles", "fine"], "this 16 px network has no ws at 64 px and up"),
        ([], "this network is conditional: pass --class"),
        (["--class", "blue_male", "--col-seeds", ""], "--style-mix needs --row-seeds"),
        (["--class", "blue_male", "--video"], "--style-mix and --video write different things"),
    ],
)
def test_bad_style_mix_is_a_one_line_error(snapshot_path, tmp_path, args, message):
    result = run_cli("generate.py", "--network", str(snapshot_path), "--style-mix", "--row-seeds", "0-1",
                     "--col-seeds", "2", "--outdir", str(tmp_path), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

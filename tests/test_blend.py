"""Layer swapping: between two generators (cstylegan.snapshots.blend) and between classes of one
(generate.py --style-class / --swap-grid)."""

import math
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import generate
from cstylegan.generation.class_swap import class_swap_ws
from cstylegan.generation.image_grid import make_grid
from cstylegan.networks import GENERATORS
from cstylegan.snapshots.blend import BlendError, blend_generators, layer_position
from cstylegan.snapshots.blend import main as blend_main
from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference, save_snapshot, with_defaults
from tests.conftest import COLOURS, REPO, assert_one_line_error, run_cli, run_command

SG2_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=8,
                  mapping_kwargs=dict(num_layers=2))
SG3_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=8,
                  num_layers=4)


def perturbed(family, kwargs, seed) -> dict:
    """A snapshot of the same base network with its own random change of every parameter,
    as two fine-tunings of one network would be."""
    torch.manual_seed(0)
    G = GENERATORS[family](**kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in G.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    state = G.state_dict()
    return with_defaults(dict(G=state, G_ema=state, G_family=family, G_kwargs=kwargs, class_names=[]))  # as loaded


def draw(snapshot, seeds=(0, 1)) -> torch.Tensor:
    G = GENERATORS[snapshot["G_family"]](**snapshot["G_kwargs"]).eval()
    G.load_state_dict(snapshot["G_ema"])
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    with torch.no_grad():
        return G(z, torch.zeros([len(seeds), 0]), noise_mode="const")


def blend_cli(*args):
    return run_cli("-m", "cstylegan.snapshots.blend", *args)


@pytest.fixture(scope="module")
def sg2_pair():
    return perturbed("stylegan2", SG2_KWARGS, 1), perturbed("stylegan2", SG2_KWARGS, 2)


def test_layer_position():
    assert layer_position("synthesis.b16.conv0.weight", "stylegan2") == 4
    assert layer_position("synthesis.b4.torgb.affine.weight", "stylegan2") == 2
    assert layer_position("mapping.fc0.weight", "stylegan2") is None
    assert layer_position("synthesis.L3_36_8.weight", "stylegan3") == 3
    assert layer_position("synthesis.L13_16_8.affine.bias", "stylegan3") == 13
    assert layer_position("synthesis.input.freqs", "stylegan3") == -1
    assert layer_position("mapping.w_avg", "stylegan3") is None


def test_stylegan2_hard_split_takes_coarse_blocks_and_mapping_from_lower(sg2_pair):
    lower, higher = sg2_pair
    blended = blend_generators(lower, higher, split_res=8, lower_name="a.pt", higher_name="b.pt")
    state = blended["G_ema"]
    assert state.keys() == lower["G_ema"].keys() and blended["G"] is state
    for name, tensor in state.items():
        source = higher if name.startswith("synthesis.b16.") else lower
        assert torch.equal(tensor, source["G_ema"][name]), name
    assert any(name.startswith("synthesis.b16.torgb") for name in state)
    assert blended["blend"] == dict(lower="a.pt", higher="b.pt", split=8, split_by="res", width=None)
    images = draw(blended)
    assert not torch.allclose(images, draw(lower)) and not torch.allclose(images, draw(higher))
    # Split at the output resolution: everything from lower, the very same images.
    assert torch.equal(draw(blend_generators(lower, higher, split_res=16)), draw(lower))


def test_stylegan2_soft_blend_is_a_sigmoid_in_log2_resolution(sg2_pair):
    lower, higher = sg2_pair
    state = blend_generators(lower, higher, split_res=8, width=0.5)["G_ema"]
    for name, position in (("synthesis.b4.conv1.weight", 2), ("synthesis.b8.conv0.affine.weight", 3),
                           ("synthesis.b16.torgb.weight", 4)):
        t = 1 / (1 + math.exp(-(position - 3) / 0.5))
        expected = lower["G_ema"][name] + t * (higher["G_ema"][name] - lower["G_ema"][name])
        torch.testing.assert_close(state[name], expected, atol=1e-6, rtol=0)
    assert torch.equal(state["mapping.fc0.weight"], lower["G_ema"]["mapping.fc0.weight"])


def test_stylegan3_splits_by_layer_index():
    lower, higher = perturbed("stylegan3", SG3_KWARGS, 1), perturbed("stylegan3", SG3_KWARGS, 2)
    state = blend_generators(lower, higher, split_layer=2)["G_ema"]
    layers = {name.split(".")[1] for name in state if name.startswith("synthesis.L")}
    assert layers == {"L0_36_8", "L1_36_8", "L2_36_8", "L3_16_8", "L4_16_3"}
    for name, tensor in state.items():
        source = higher if name.startswith(("synthesis.L3_", "synthesis.L4_")) else lower
        assert torch.equal(tensor, source["G_ema"][name]), name
    soft = blend_generators(lower, higher, split_layer=2, width=2.0)["G_ema"]
    name = "synthesis.L1_36_8.weight"
    t = 1 / (1 + math.exp(0.5))
    torch.testing.assert_close(soft[name], torch.lerp(lower["G_ema"][name], higher["G_ema"][name], t),
                               atol=1e-6, rtol=0)
    with pytest.raises(BlendError, match="--split-layer must be a layer index 0-4; got 5"):
        blend_generators(lower, higher, split_layer=5)


@pytest.fixture(scope="module")
def files(sg2_pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("blend")
    paths = {"a": sg2_pair[0], "wide": perturbed("stylegan2", {**SG2_KWARGS, "channel_max": 16}, 3),
             "sg3": perturbed("stylegan3", SG3_KWARGS, 1)}
    for name, snapshot in paths.items():
        save_snapshot(folder / f"{name}.pt", snapshot)
    return {name: folder / f"{name}.pt" for name in paths}


@pytest.mark.parametrize("lower, higher, split, message", [
    ("a", "wide", ["--split-res", "8"], "the networks differ in channel_max: 8 (lower) vs 16 (higher)"),
    ("sg3", "sg3", ["--split-res", "8"], "--split-res is for StyleGAN2 networks; this is StyleGAN3: use --split-layer"),
    ("a", "a", ["--split-res", "12"], "--split-res must be one of this network's resolutions 4, 8, 16; 12 is not"),
])
def test_refusals_are_one_line(files, tmp_path, lower, higher, split, message):
    result = blend_cli("--lower", files[lower], "--higher", files[higher], *split, "--out", tmp_path / "x.pt")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
def test_cli_writes_a_snapshot_and_preview_that_generate_reads(snapshot_path, tmp_path):
    # The higher network: the trained one with its 16 px block changed, as if fine-tuned.
    higher = load_snapshot(snapshot_path)
    for name, tensor in higher["G_ema"].items():
        if name.startswith("synthesis.b16.") and name.endswith("weight"):
            tensor.neg_()
    save_snapshot(tmp_path / "higher.pt", higher)
    result = blend_cli("--lower", snapshot_path, "--higher", tmp_path / "higher.pt", "--split-res", "8",
                       "--out", tmp_path / "blended.pt", "--preview", tmp_path / "preview.png", "--seeds", "0-2",
                       "--class", "red_male")
    assert result.returncode == 0, result.stderr
    blended = load_snapshot(tmp_path / "blended.pt")
    assert blended["class_names"] == list(COLOURS) and "D" not in blended
    assert blended["blend"]["split"] == 8 and blended["blend"]["lower"] == str(snapshot_path)
    labels = [f"lower: {snapshot_path.name}", "higher: higher.pt", "blended @8"]
    assert Image.open(tmp_path / "preview.png").size == make_grid(np.zeros([9, 16, 16, 3], np.uint8), 3, labels).size
    result = run_cli("generate.py", "--network", str(tmp_path / "blended.pt"), "--class", "red_male", "--seeds", "0",
                     "--outdir", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out" / "red_male" / "seed0000.png").size == (16, 16)


def test_class_swap_ws_takes_content_then_style(snapshot_path):
    G = open_for_inference(snapshot_path).G
    z = torch.randn([2, G.z_dim])
    red, blue = torch.zeros([2, G.c_dim]), torch.zeros([2, G.c_dim])
    red[:, 0], blue[:, 2] = 1, 1
    ws = class_swap_ws(G, z, red, blue, 2, truncation_psi=0.7, truncation_center="class")
    expected_red = G.mapping(z, red, truncation_psi=0.7, truncation_center="class")
    expected_blue = G.mapping(z, blue, truncation_psi=0.7, truncation_center="class")
    assert ws.shape == (2, G.num_ws, G.w_dim)
    assert torch.equal(ws[:, :2], expected_red[:, :2]) and torch.equal(ws[:, 2:], expected_blue[:, 2:])
    # psi 0: each part is its own class's average w.
    ws = class_swap_ws(G, z, red, blue, 3, truncation_psi=0, truncation_center="class")
    averages = G.mapping.w_avg_per_class
    assert torch.equal(ws[0, :3], averages[0].expand(3, -1)) and torch.equal(ws[0, 3:], averages[2].expand(3, -1))


def run_generate(*args):
    """generate.py in this process (much faster than a subprocess); returns its exit code."""
    try:
        generate.main.main([str(a) for a in args], prog_name="generate.py")
    except SystemExit as exit_:
        return exit_.code
    return 0


def test_swap_outputs(snapshot_path, tmp_path):
    common = ["--network", snapshot_path, "--seeds", "5", "--device", "cpu", "--outdir", tmp_path]
    assert run_generate(*common, "--class", "all", "--style-class", "all", "--swap-layer", 3) == 0
    assert run_generate(*common, "--class", "blue_male") == 0
    assert run_generate(*common, "--swap-grid", "--swap-layer", 3) == 0
    # The same class as content and style is the plain image of that class, byte for byte.
    plain = (tmp_path / "blue_male" / "seed0005.png").read_bytes()
    assert (tmp_path / "blue_male__style_blue_male" / "seed0005.png").read_bytes() == plain
    assert (tmp_path / "red_male__style_blue_male" / "seed0005.png").read_bytes() != plain
    # The grid: rows content, columns style, below and right of the label margins.
    grid = np.asarray(Image.open(tmp_path / "swap_grid_seed5.png"))
    names = list(COLOURS)
    assert grid.shape[:2] == make_grid(np.zeros([16, 16, 16, 3], np.uint8), 4, names, names).size[::-1]
    assert grid.shape[0] > 64 and grid.shape[1] > 64
    tiles = grid[-64:, -64:]
    for row, content in enumerate(names):
        for column, style in enumerate(names):
            tile = np.asarray(Image.open(tmp_path / f"{content}__style_{style}" / "seed0005.png"))
            assert np.array_equal(tiles[row * 16:(row + 1) * 16, column * 16:(column + 1) * 16], tile)


@pytest.mark.parametrize("args, message", [
    (["--class", "0", "--style-class", "1"], "--style-class needs --swap-layer K"),
    (["--class", "0", "--style-class", "1", "--swap-layer", "6"], "--swap-layer 6 is outside 1..5"),
    (["--class", "0", "--style-class", "1", "--swap-layer", "0"], "--swap-layer 0 is outside 1..5"),
    (["--swap-grid"], "--swap-grid needs --swap-layer K"),
    (["--class", "0", "--swap-layer", "2"], "--swap-layer needs --style-class B"),
])
def test_swap_errors(snapshot_path, tmp_path, capsys, args, message):
    assert run_generate("--network", snapshot_path, "--outdir", tmp_path, *args) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error


@pytest.mark.slow
def test_swap_on_an_unconditional_network_is_refused_on_the_command_line(files, tmp_path):
    result = run_cli("generate.py", "--network", str(files["a"]), "--style-class", "0", "--swap-layer", "2",
                     "--outdir", str(tmp_path))
    assert result.returncode == 2 and "needs a conditional network; this one is unconditional" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("outputs, words", [
    (["--out", "LOWER"], ["--out", "is the same file as --lower"]),
    (["--out", "LINK"], ["--out", "is the same file as --lower"]),  # a hard link to --lower
    (["--out", "NEW", "--preview", "HIGHER"], ["--preview", "is the same file as --higher"]),
    (["--out", "NEW", "--preview", "NEW"], ["--preview", "is the same file as --out"]),
    (["--out", "NEW", "--preview", "TMP/preview"], ["--preview", "no suffix is not an image format", ".png"]),
])
def test_outputs_never_overwrite_an_input_and_the_preview_is_an_image(files, tmp_path, outputs, words):
    lower, higher = tmp_path / "lower.pt", tmp_path / "higher.pt"
    shutil.copy(files["a"], lower)
    shutil.copy(files["a"], higher)
    os.link(lower, tmp_path / "link.pt")
    names = {"LOWER": lower, "HIGHER": higher, "LINK": tmp_path / "link.pt", "NEW": tmp_path / "new.pt"}
    args = [names.get(arg, arg.replace("TMP", str(tmp_path))) for arg in outputs]
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    result = run_command(blend_main, ["--lower", lower, "--higher", higher, "--split-res", "8", *args])
    assert_one_line_error(result, *words)
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing changed, nothing new

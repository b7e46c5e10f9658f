"""The benchmark scripts run as documented: train_speed.py prints one row per configuration,
ops_speed.py and gpu_check.sh their steps, class_probe_degraded.py spoils images as it says."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from cstylegan.config import TrainConfig
from cstylegan.data.writer import write_dataset_zip
from cstylegan.networks import GENERATORS
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.vit_discriminator import VitDiscriminator
from tests.conftest import REPO, run_cli


@pytest.mark.slow
def test_train_speed_prints_a_row_of_figures():
    """The ViT D's row: its D parameter count shows that the ViT, not the residual D, was measured."""
    result = run_cli("benchmarks/train_speed.py", "--res", "16", "--cfg", "small", "--batch", "4", "--repeats", "1",
                     "--dbackbone", "vit", "--channels-last")
    assert result.returncode == 0, result.stderr
    assert "channels-last" in result.stdout.splitlines()[0]
    [row] = [line.split() for line in result.stdout.splitlines() if line.split()[:3] == ["ours", "vit", "16"]]
    assert row[3] == "small" and row[6] == "4"
    config = TrainConfig(data="", cfg="small", batch=4, dbackbone="vit").resolve(16)
    D = VitDiscriminator(**config.network_kwargs(4)[1])
    assert int(row[8].replace(",", "")) == sum(p.numel() for p in D.parameters())
    train_img_per_s, sec_per_kimg = float(row[9]), float(row[10])
    assert train_img_per_s > 0 and abs(sec_per_kimg - 1000 / train_img_per_s) < 0.01 * sec_per_kimg + 0.1


@pytest.mark.slow
def test_train_speed_refuses_an_unknown_discriminator_in_one_line():
    result = run_cli("benchmarks/train_speed.py", "--res", "16", "--dbackbone", "resnet,convnext")
    assert result.returncode == 2 and "convnext: choose resnet and/or vit" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_vs_official_without_their_code_is_one_line(tmp_path):
    result = run_cli("benchmarks/train_speed.py", "--res", "16", "--cfg", "small", "--vs-official", str(tmp_path))
    assert result.returncode != 0
    assert re.search(r"is not a copy of NVlabs/stylegan3 .*clone it there", result.stderr)
    assert "Traceback" not in result.stderr


def test_flop_count_matches_the_official_networks_figures():
    """The issue's counts on NVlabs' StyleGAN2 at 256 px (channel base 16384, 6 classes):
    G forward 30.1 GFLOP per image, D forward 31.3 (our D filters its downsampling
    separably, which saves about 0.2)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import counted_flops

    G_kwargs, D_kwargs = TrainConfig(data="", cfg="paper256", batch=32).resolve(256).network_kwargs(6)
    G, D = GENERATORS["stylegan2"](**G_kwargs).eval(), Discriminator(**D_kwargs).eval()
    z, c = torch.randn(1, G.z_dim), torch.eye(6)[:1]
    with torch.no_grad():
        assert counted_flops(lambda: G(z, c, noise_mode="const")) / 1e9 == pytest.approx(30.1, rel=0.005)
        assert counted_flops(lambda: D(torch.zeros(1, 3, 256, 256), c)) / 1e9 == pytest.approx(31.3, rel=0.01)


@pytest.mark.parametrize("groups, transposed", [(1, False), (4, False), (8, False), (1, True), (4, True)])
def test_convolution_backward_flops_count_groups(groups, transposed):
    """A convolution's backward (input and weight gradients) costs twice its forward, whatever
    the groups: counted by hand as 2 * (multiply-adds) per gradient."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import counted_flops

    n, in_ch, out_ch, size = 3, 8, 16, 6
    x = torch.randn(n, in_ch, size, size, requires_grad=True)
    if transposed:
        w = torch.randn(in_ch, out_ch // groups, 3, 3, requires_grad=True)
        run = lambda: torch.nn.functional.conv_transpose2d(x, w, stride=2, groups=groups)  # noqa: E731
        macs = n * in_ch * size * size * (out_ch // groups) * 9  # every input pixel meets out_ch/groups * 9 taps
    else:
        w = torch.randn(out_ch, in_ch // groups, 3, 3, requires_grad=True)
        run = lambda: torch.nn.functional.conv2d(x, w, padding=1, groups=groups)  # noqa: E731
        macs = n * out_ch * size * size * (in_ch // groups) * 9  # every output pixel sums in_ch/groups * 9 taps
    assert counted_flops(lambda: run().sum().backward()) == 3 * 2 * macs


@pytest.mark.slow
def test_ops_speed_times_each_op_on_each_path_and_checks_it_against_the_reference():
    result = run_cli("benchmarks/ops_speed.py", "--batch", "1", "--channels", "2", "--size", "16",
                     "--impl", "reference,fast", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()
            if line.split()[:1] in (["bias_act"], ["upsample2d"], ["filtered_lrelu"])]
    assert [row[:2] for row in rows] == [[op, impl] for op in ("bias_act", "upsample2d", "filtered_lrelu")
                                         for impl in ("reference", "fast")]
    for op, impl, forward_ms, backward_ms, diff in rows:
        assert float(forward_ms) > 0 and float(backward_ms) > 0
        assert float(diff) == 0 if impl == "reference" else float(diff) < 1e-4
    refused = run_cli("benchmarks/ops_speed.py", "--impl", "fast,triton")
    assert refused.returncode == 2 and "triton: choose from reference, fast, fused" in refused.stderr


def test_rounds_of_ratios_print_their_median_and_range():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import median_and_range

    assert median_and_range([2.0]) == "2.00x"
    assert median_and_range([2.34, 2.01, 2.27]) == "2.27x (2.01-2.34)"
    assert median_and_range([1.0, 4.0, 2.0, 3.0]) == "2.50x (1.00-4.00)"


@pytest.mark.parametrize("args, env, message", [
    (["warp"], {}, "unknown step 'warp'; choose from env ops sg2"),
    (["sg2"], {"OFFICIAL": ""}, "step sg2 needs OFFICIAL"),
    (["fid"], {"REALS": ""}, "step fid needs REALS"),
])
def test_gpu_check_refuses_what_it_cannot_run_in_one_line(args, env, message):
    """The GPU script is only run on a lent GPU; its refusals can be checked anywhere."""
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), *args], capture_output=True, text=True,
                            env={**os.environ, **env})
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_class_probe_degradations_spoil_the_pictures_as_their_names_say():
    """Shuffled tiles keep every tile's pixels and lose only their places; noise of sigma 0 is
    no change; blurring to 8 px keeps each 4x4 block's mean (area down, then bilinear up)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from class_probe_degraded import blurred, noisy, tiles_shuffled

    rng = np.random.default_rng(0)
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    shuffled = tiles_shuffled(images, grid=2, rng=rng)
    tile = lambda x, i, j: x[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4]  # noqa: E731
    for n in range(2):
        before = sorted(tuple(tile(images[n:n + 1], i, j).flatten().tolist()) for i in range(2) for j in range(2))
        after = sorted(tuple(tile(shuffled[n:n + 1], i, j).flatten().tolist()) for i in range(2) for j in range(2))
        assert before == after
    assert not torch.equal(shuffled, images)  # seed 0 moves at least one tile of the two pictures
    assert torch.equal(tiles_shuffled(images, grid=1, rng=rng), images)
    assert torch.equal(noisy(images, sigma=0.0, rng=rng), images)
    assert noisy(images, sigma=24.0, rng=np.random.default_rng(1)).sub(images).std().item() == pytest.approx(24, rel=0.1)
    flat = torch.ones(1, 3, 32, 32) * 7.0
    assert torch.allclose(blurred(flat, size=8, rng=rng), flat)
    ramp = torch.linspace(0, 255, 32).repeat(1, 3, 32, 1)
    assert blurred(ramp, size=8, rng=rng).mean().item() == pytest.approx(ramp.mean().item(), abs=1.5)
    assert blurred(ramp, size=8, rng=rng).sub(ramp).abs().max().item() > 1  # and it does blur


def test_class_probe_benchmark_refuses_class_names_without_style_and_gender(tmp_path):
    """A data set whose classes are not <style>_<gender> is refused in one line, before Inception loads."""
    images = {name: [np.full((16, 16, 3), value, np.uint8)] * 2 for name, value in (("red", 200), ("dark_blue_male", 20))}
    data = write_dataset_zip(tmp_path / "colours.zip", images)
    result = run_cli("benchmarks/class_probe_degraded.py", "--data", str(data))
    assert result.returncode == 2, result.stderr
    assert "are not all <style>_<gender>" in result.stderr
    assert "Traceback" not in result.stderr

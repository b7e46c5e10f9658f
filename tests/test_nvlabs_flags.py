"""NVlabs' train.py commands work unchanged: `--flag=1` booleans, --desc, --subset, --mbstd-group,
--nobench, --allow-tf32, -n/--dry-run and --gpus."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from PIL import Image

from cstylegan.training.progress import read_stats
from cstylegan.config import TrainConfig
from cstylegan.data.dataset import ImageDataset
from cstylegan.networks.discriminator import Discriminator
from cstylegan.snapshots import checkpoint
from tests.conftest import REPO, assert_one_line_error, run_command, run_in_process

TINY = ["--cfg", "small", "--cbase", "256", "--cmax", "16", "--batch", "8", "--workers", "0", "--device", "cpu"]


def dry_run(colour_zip, tmp_path, *flags):
    """(resolved settings, stdout) of `train.py -n` with these flags."""
    result = run_in_process("train.py", ["--data", colour_zip, "--outdir", tmp_path / "runs", *TINY, *flags, "-n"],
                            REPO)
    assert result.returncode == 0, result.stderr
    options = result.stdout.split("Training options:\n")[1].split("\nData: ")[0]
    return yaml.safe_load(options), result.stdout


@pytest.mark.parametrize("flags, expected", [
    ([], dict(cond=False, mirror=False, channels_last=False, allow_tf32=True, nobench=False)),
    (["--cond=1", "--mirror=1", "--nhwc=1", "--allow-tf32=0", "--nobench=1"],
     dict(cond=True, mirror=True, channels_last=True, allow_tf32=False, nobench=True)),
    (["--cond", "--mirror", "--channels-last", "--nobench"],
     dict(cond=True, mirror=True, channels_last=True, allow_tf32=True, nobench=True)),
    (["--cond=true", "--mirror=yes", "--no-nhwc", "--nobench=false"],
     dict(cond=True, mirror=True, channels_last=False, allow_tf32=True, nobench=False)),
    (["--cond", "--mirror=0", "--fp32"], dict(cond=True, mirror=False, allow_tf32=False)),  # our --fp32: no TF32
    (["--fp32=1", "--allow-tf32"], dict(allow_tf32=True)),
])
def test_boolean_flags_take_ours_and_nvlabs_spellings(colour_zip, tmp_path, flags, expected):
    settings, _ = dry_run(colour_zip, tmp_path, *flags)
    assert {name: settings[name] for name in expected} == expected


def test_no_flag_overrides_a_config_file(colour_zip, tmp_path):
    saved, _ = dry_run(colour_zip, tmp_path, "--mirror", "--cond")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in saved.items()
                                      if k not in ("resolution", "img_channels", "class_names", "attributes", "label_names")}))
    result = run_in_process("train.py", ["--config", config, "--no-mirror", "-n"], REPO)
    assert result.returncode == 0, result.stderr
    assert "mirror: false" in result.stdout and "cond: true" in result.stdout


def test_a_config_file_may_hold_only_some_settings(colour_zip, tmp_path):
    """A hand-written file with a few settings: the flags give the rest, --data included."""
    config = tmp_path / "few.yaml"
    config.write_text("pl_weight: 0\nstyle_mixing_prob: 0\nmirror: true\n")
    result = run_in_process("train.py", ["--config", config, "--data", colour_zip, "--outdir", tmp_path / "runs",
                                         *TINY, "-n"], REPO)
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load(result.stdout.split("Training options:\n")[1].split("\nData: ")[0])
    assert (settings["pl_weight"], settings["style_mixing_prob"], settings["mirror"], settings["batch"]) == (0, 0, True, 8)
    assert settings["data"] == str(colour_zip)
    without_data = run_in_process("train.py", ["--config", config, "-n"], REPO)
    assert_one_line_error(without_data, "--data is required")


def test_a_boolean_flag_with_a_bad_value_is_one_line(colour_zip, tmp_path):
    result = run_in_process("train.py", ["--data", colour_zip, "--mirror=maybe", "-n"], REPO)
    assert_one_line_error(result, "--mirror", "maybe", "not a valid boolean")


def test_dry_run_prints_the_resolved_run_and_writes_nothing(colour_zip, tmp_path):
    settings, stdout = dry_run(colour_zip, tmp_path, "--cond", "--desc", "try-2", "--subset", "10", "--mbstd-group", "2",
                               "--seed", "5")
    assert settings["mbstd_group"] == 2 and settings["subset"] == 10 and settings["gamma"] == pytest.approx(0.0002 * 16**2 / 8)
    assert "Data: " in stdout and ", 10 images at 16px, 4 classes" in stdout
    counts = [int(line.split()[-1]) for line in stdout.splitlines() if line.startswith("  ") and "_" in line]
    assert len(counts) == 4 and sum(counts) == 10
    assert f"Run folder: {tmp_path / 'runs' / '00000-cond-colours-small-batch8-gamma0.0064-try-2'}" in stdout
    assert not (tmp_path / "runs").exists()


def test_subset_is_a_fixed_random_draw_by_seed(colour_zip):
    first, again, other = (ImageDataset(colour_zip, max_size=10, seed=s).names for s in (5, 5, 6))
    assert first == again and first != other and len(first) == 10 and first == sorted(first)
    assert set(first) < set(ImageDataset(colour_zip).names)


@pytest.mark.parametrize("flags, words", [
    (["--desc", "a/b"], ["--desc", "folder name"]),
    (["--subset", "0"], ["--subset", "at least 1"]),
    (["--mbstd-group", "0"], ["--mbstd-group", "at least 1"]),
    (["--mbstd-group", "3"], ["minibatch-std group 3"]),
    (["--gpus", "0"], ["--gpus"]),
])
def test_bad_nvlabs_settings_are_one_line(colour_zip, tmp_path, flags, words):
    result = run_in_process("train.py", ["--data", colour_zip, "--outdir", tmp_path, *TINY, *flags, "-n"], REPO)
    assert_one_line_error(result, *words)


def train_tiny(tmp_path, name, colour_zip, launcher, *flags):
    outdir = tmp_path / name
    result = subprocess.run([*launcher, str(REPO / "train.py"), "--data", str(colour_zip), "--outdir", str(outdir),
                             *TINY, "--cond", "--kimg", "0.032", "--tick", "0.016", "--aug", "noaug", "--seed", "3",
                             *flags], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = outdir.iterdir()
    return result, run_dir


@pytest.mark.slow  # about 30 s: two tiny runs on 2 processes each
def test_gpus_starts_the_processes_torchrun_would(colour_zip, tmp_path):
    result, ours = train_tiny(tmp_path, "gpus", colour_zip, [sys.executable], "--gpus", "2")
    _, theirs = train_tiny(tmp_path, "torchrun", colour_zip,
                           [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    assert "2 processes x 4 images" in result.stdout
    assert result.stdout.count("Training for") == 1  # the first process speaks for both
    a, b = (checkpoint.load_snapshot(next(d.glob("network-snapshot-*.pt"))) for d in (ours, theirs))
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), (net, key)
    losses = [[record["Loss/G/loss"] for record in read_stats(d / "stats.jsonl")]
              for d in (ours, theirs)]
    assert losses[0] == losses[1] and len(losses[0]) == 2
    # --aug noaug: NVlabs' Progress/augment is still written, as 0
    assert [record["Progress/augment"] for record in read_stats(ours / "stats.jsonl")] == [0.0, 0.0]


@pytest.mark.slow
def test_gpus_errors_are_one_line_from_one_process(colour_zip, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "--data", str(colour_zip), "--outdir",
                             str(tmp_path), *TINY, "--batch", "7", "--gpus", "2"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert_one_line_error(result, "--batch 7", "2 processes")


def test_run_folder_has_training_options_under_nvlabs_keys(colour_zip, tmp_path):
    from cstylegan.config import TrainConfig
    from cstylegan.training.loop import train

    run_dir = train(TrainConfig(data=str(colour_zip), outdir=str(tmp_path), cfg="small", cond=True, mirror=True,
                                cbase=256, cmax=16, batch=8, kimg=0.016, tick=0.008, snap=1, workers=0, device="cpu",
                                glr=0.003, gamma=0.5, aug="ada", augpipe="bg", metrics=[]), log=lambda line: None)
    options = json.loads((run_dir / "training_options.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert options["training_set_kwargs"] == dict(class_name="training.dataset.ImageFolderDataset", path=str(colour_zip),
                                                  use_labels=True, max_size=None, xflip=True, resolution=16)
    assert (options["batch_size"], options["batch_gpu"], options["total_kimg"], options["num_gpus"]) == (8, 8, 0.016, 1)
    assert options["loss_kwargs"]["r1_gamma"] == 0.5 and options["loss_kwargs"]["pl_weight"] == config["pl_weight"]
    assert options["G_opt_kwargs"] == dict(class_name="torch.optim.Adam", lr=0.003, betas=[0, 0.99], eps=1e-8)
    assert options["G_kwargs"]["class_name"] == "training.networks_stylegan2.Generator"
    assert options["G_kwargs"]["channel_base"] == 256 and options["G_kwargs"]["c_dim"] == 4
    assert options["D_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] == config["mbstd_group"]
    assert options["augment_kwargs"] == dict(class_name="training.augment.AugmentPipe", xflip=1, rotate90=1, xint=1,
                                             scale=1, rotate=1, aniso=1, xfrac=1)
    assert options["ada_target"] == 0.6 and options["ema_kimg"] == config["ema_kimg"]
    assert options["image_snapshot_ticks"] == options["network_snapshot_ticks"] == 1
    assert options["run_dir"] == str(run_dir)


def run_plot_stats(*args):
    from cstylegan.training.plot_stats import main as plot_main

    result = run_command(plot_main, args)
    return result.returncode, result.stdout, result.stderr


def test_plot_stats_draws_losses_augmentation_and_metrics(colour_zip, tmp_path):
    from cstylegan.config import TrainConfig
    from cstylegan.metrics.report import write_metric_jsonl
    from cstylegan.training.loop import train

    run_dir = train(TrainConfig(data=str(colour_zip), outdir=str(tmp_path), cfg="small", cond=True, cbase=256, cmax=16,
                                batch=8, kimg=0.048, tick=0.008, snap=1000, workers=0, device="cpu", aug="ada",
                                ada_kimg=1), log=lambda line: None)
    for kimg, fid in ((0.016, 300.0), (0.048, 250.0)):
        write_metric_jsonl(run_dir, {"fid": fid, "fid_per_class/a": fid + 5, "fid_per_class_mean": fid + 5}, kimg, "x.pt")
    code, out, err = run_plot_stats(run_dir)
    assert code == 0, err
    image = Image.open(run_dir / "stats.png")
    assert out.strip() == f"Wrote {run_dir / 'stats.png'}" and image.height > image.width > 400  # four panels stacked
    from cstylegan.training.plot_stats import metric_curves

    assert metric_curves(run_dir) == {"fid": [(0.016, 300.0), (0.048, 250.0)],
                                      "fid_per_class_mean": [(0.016, 305.0), (0.048, 255.0)]}
    code, _, err = run_plot_stats(tmp_path / "empty")
    assert code == 2 and err.startswith("Error: ") and "no stats.jsonl" in err and len(err.strip().splitlines()) == 1


def test_without_tensorboard_one_line_says_so_and_training_goes_on(colour_zip, tmp_path, monkeypatch):
    import sys

    from cstylegan.config import TrainConfig
    from cstylegan.training.loop import train

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    lines = []
    run_dir = train(TrainConfig(data=str(colour_zip), outdir=str(tmp_path), cfg="small", cbase=256, cmax=16, batch=8,
                                kimg=0.016, tick=0.008, snap=1, workers=0, device="cpu"), log=lines.append)
    assert [line for line in lines if line.startswith("TensorBoard:")] == [
        "TensorBoard: not installed, so no event files (pip install tensorboard); stats.jsonl has the numbers"]
    assert not list(run_dir.glob("events.out.tfevents.*")) and len(read_stats(run_dir / "stats.jsonl")) == 2


def test_cfg_cifar_is_their_cifar_config_and_its_discriminator_has_no_residual_skips(colour_zip, tmp_path):
    settings, _ = dry_run(colour_zip, tmp_path, "--cfg=cifar", "--cond=1", "--batch=64")
    assert {key: settings[key] for key in ("mbstd_group", "glr", "dlr", "gamma", "ema_kimg", "ema_rampup", "map_depth",
                                           "pl_weight", "style_mixing_prob", "d_architecture")} == dict(
        mbstd_group=32, glr=0.0025, dlr=0.0025, gamma=0.01, ema_kimg=500, ema_rampup=0.05, map_depth=2, pl_weight=0,
        style_mixing_prob=0, d_architecture="orig")
    config = TrainConfig(data=str(colour_zip), cfg="cifar", cbase=256, cmax=16, batch=4, mbstd_group=2).resolve(16)
    _, D_kwargs = config.network_kwargs(c_dim=4)
    D = Discriminator(**D_kwargs)
    assert D_kwargs["architecture"] == "orig" and not any("skip" in name for name, _ in D.named_parameters())
    assert D(torch.randn(4, 3, 16, 16), torch.eye(4)).shape == (4, 1)
    assert "architecture" not in TrainConfig(data="x", cfg="auto").resolve(16).network_kwargs(c_dim=0)[1]

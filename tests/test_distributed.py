"""Training on 2 processes (torchrun, gloo on CPU) takes the same steps as 1 process with the same global batch."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml

from cstylegan.training.progress import read_stats
from cstylegan.config import ConfigError, TrainConfig
from cstylegan.data.dataset import ImageDataset
from cstylegan.metrics import compute as compute_module
from cstylegan.metrics.compute import compute_metrics
from cstylegan.networks import GENERATORS
from cstylegan.networks.discriminator import Discriminator
from cstylegan.runtime.distributed import Processes
from cstylegan.snapshots import checkpoint
from cstylegan.training.phases import phase_step
from tests.conftest import COLOURS, REPO

# No style mixing, path length or augmentation: the random draws left (z, labels, data
# order) are the same whatever the process count, except the per-layer noise images.
SETTINGS = dict(cfg="small", cond=True, cbase=256, cmax=16, batch=8, kimg=0.064, tick=0.008, snap=1000,
                workers=0, device="cpu", aug="noaug", style_mixing_prob=0.0, pl_weight=0.0, seed=3)
# The per-layer noise images (random once their strengths leave 0 after the first G step)
# differ between layouts, and Adam's early steps (about lr * sign(gradient)) amplify that
# for near-zero gradients. Measured after 8 steps: losses within 0.6 %, weights 8.5 % (G)
# and 5.6 % (D) of the distance training moved them. The exact check of the averaging is
# the toy test below.
LOSS_TOLERANCE = 0.02
WEIGHT_TOLERANCE = 0.15


def run(tmp_path, name, data, processes: int, **overrides):
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({**SETTINGS, "data": str(data), "outdir": str(tmp_path / name), **overrides}))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--standalone"] if processes > 1 else [sys.executable]
    result = subprocess.run([*launcher, str(REPO / "train.py"), "--config", str(config)], cwd=REPO,
                            capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "CSTYLEGAN_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = (tmp_path / name).iterdir()
    stats = read_stats(run_dir / "stats.jsonl")
    return stats, checkpoint.load_snapshot(next(run_dir.glob("network-snapshot-*.pt"))), result.stdout


def relative_difference(a: dict, b: dict, start: dict) -> float:
    keys = [k for k in a if a[k].is_floating_point() and "w_avg" not in k]
    moved = torch.cat([(a[k] - start[k]).flatten() for k in keys]).norm()
    return float(torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm() / moved)


@pytest.mark.slow  # about 40 s: two tiny runs, one of them on 2 processes with an FID at the end
def test_two_processes_train_like_one_with_the_same_global_batch(colour_zip, tmp_path):
    single, one, _ = run(tmp_path, "one", colour_zip, 1, batch_gpu=4)
    double, two, stdout = run(tmp_path, "two", colour_zip, 2, metrics=["fid"], metrics_num_gen=8)
    assert "2 processes x 4 images" in stdout
    [fid] = [json.loads(line) for line in next((tmp_path / "two").glob("*/metric-fid.jsonl")).read_text().splitlines()]
    assert fid["results"]["fid"] > 0 and stdout.count("Metrics: fid ") == 1  # computed together, reported once
    torch.manual_seed(SETTINGS["seed"])  # the loop builds G, then D, right after seeding
    start = {"G": GENERATORS["stylegan2"](**one["G_kwargs"]).state_dict(),
             "D": Discriminator(**one["D_kwargs"]).state_dict()}

    # The first G step sees the same 8 images and latents with noise strengths still 0.
    assert double[0]["Loss/G/loss"] == pytest.approx(single[0]["Loss/G/loss"], rel=1e-5)
    assert double[-1]["Progress/kimg"] == single[-1]["Progress/kimg"] == 0.064
    for a, b in zip(single, double):  # 8 minibatches, losses averaged over the processes
        for key in ("Loss/G/loss", "Loss/D/loss"):
            assert b[key] == pytest.approx(a[key], rel=LOSS_TOLERANCE), (a["Progress/kimg"], key)
    for net in ("G", "D"):
        assert relative_difference(two[net], one[net], start[net]) < WEIGHT_TOLERANCE, net


def average_over_two_processes(rank: int, init_file: str, results) -> None:
    """One phase_step of a toy model on 2 gloo processes, each with its half of the batch."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model, data = toy_model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # proportional to the gradient, unlike Adam
    half = data[rank * 4 : (rank + 1) * 4]
    phase_step(list(model.parameters()), opt, lambda i: (model(half).square().mean(), {}), 1, Processes(rank, 2))
    results[rank] = [p.detach().clone() for p in model.parameters()]
    dist.destroy_process_group()


def toy_model_and_data():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2), torch.randn(8, 3)


@pytest.mark.slow
def test_gradients_are_averaged_over_processes_exactly_like_passes_in_one(tmp_path):
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(average_over_two_processes, args=(str(tmp_path / "init"), results), nprocs=2)
    model, data = toy_model_and_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # proportional to the gradient, unlike Adam
    chunks = data.split(4)
    phase_step(list(model.parameters()), opt, lambda i: (model(chunks[i]).square().mean(), {}), 2, Processes())
    for rank in (0, 1):
        for ours, theirs in zip(model.parameters(), results[rank]):
            torch.testing.assert_close(theirs, ours.detach(), rtol=1e-6, atol=1e-7)


class PooledColours(torch.nn.Module):
    """Stands in for Inception: 299x299 images -> their 4x4 average colours (deterministic)."""

    def forward(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images, 4).reshape(len(images), -1)


def colour_of_class_and_latent(z, c):
    """Fakes that depend only on (z, c), as a generator's do: the class colour shifted by z."""
    colours = torch.tensor(list(COLOURS.values()), dtype=torch.float32)[c.argmax(dim=1)]
    return (colours[:, :, None, None] + 20 * z[:, :3, None, None]).expand(-1, -1, 16, 16).clamp(0, 255).to(torch.uint8)


def metrics_with(processes: Processes, data, cache_dir, counted: list) -> dict:
    def generate(z, c):
        counted.append(len(z))
        return colour_of_class_and_latent(z, c)

    return compute_metrics(generate, ImageDataset(data, use_labels=True), "fid,kid,fid_per_class,class_acc",
                           num_gen=21, num_gen_per_class=9, batch=4, cache_dir=cache_dir, seed=2, z_dim=5,
                           progress=False, processes=processes)


def metrics_on_two_processes(rank: int, init_file: str, data, cache_dir, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    compute_module.load_inception = lambda path, device: PooledColours()  # this spawned process only
    counted = []
    results[rank] = (metrics_with(Processes(rank, 2), data, cache_dir, counted), sum(counted))
    dist.destroy_process_group()


@pytest.mark.slow
def test_metrics_are_shared_out_over_processes_and_agree_with_one(colour_zip, tmp_path, monkeypatch):
    monkeypatch.setattr(compute_module, "load_inception", lambda path, device: PooledColours())
    one_counted = []
    one = metrics_with(Processes(), colour_zip, tmp_path / "one", one_counted)
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(metrics_on_two_processes, nprocs=2,
                                args=(str(tmp_path / "init"), colour_zip, tmp_path / "two", results))
    assert sum(one_counted) == 21 + 4 * 9
    # 21 mixed fakes split 11 + 10, each class's 9 split 5 + 4; every image made once.
    assert [results[rank][1] for rank in (0, 1)] == [11 + 4 * 5, 10 + 4 * 4]
    for rank in (0, 1):
        two = results[rank][0]
        assert set(two) == set(one) and one["fid"] > 1
        for key in one:
            assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), (rank, key)
    # The real-image cache holds the gathered features in the data's order, as one process computes them.
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == names and len(names) == 6
    for name in names:
        with np.load(tmp_path / "one" / name) as a, np.load(tmp_path / "two" / name) as b:
            for key in a.files:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("batch, batch_gpu, processes, message", [
    (6, None, 4, "cannot be split evenly over 4 processes"),
    (8, 3, 2, "--batch-gpu 3 does not divide each process's share of the batch (4 = --batch 8 / 2 processes)"),
])
def test_batches_that_cannot_be_shared_are_refused(batch, batch_gpu, processes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(data="x", cfg="small", batch=batch, batch_gpu=batch_gpu).resolve(32, processes)


def test_minibatch_std_group_follows_the_pass_size():
    assert TrainConfig(data="x", cfg="small", batch=8).resolve(32, 4).mbstd_group == 2
    assert TrainConfig(data="x", cfg="small", batch=32, batch_gpu=8).resolve(32).mbstd_group == 4

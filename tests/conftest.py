"""Shared test data: a data set of solid colours, one colour per class, and one short run on it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cstylegan.checkpoint import load_generator
from cstylegan.config import TrainConfig
from cstylegan.dataset_writer import write_dataset_zip
from cstylegan.training.loop import train

REPO = Path(__file__).resolve().parents[1]
COLOURS = {
    "red_male": (230, 30, 30),
    "green_female": (30, 200, 30),
    "blue_male": (30, 30, 230),
    "yellow_female": (230, 220, 30),
}


def run_cli(*args, cwd=REPO):
    """Run one of the repo's scripts as a user would; returns the CompletedProcess."""
    script = REPO / args[0]
    return subprocess.run([sys.executable, str(script), *args[1:]], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="session")
def colour_zip(tmp_path_factory) -> Path:
    """4 classes x 16 images of 16x16 solid colour with a little noise, so images differ."""
    rng = np.random.default_rng(0)
    images = {
        name: [np.clip(np.array(colour) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8) for _ in range(16)]
        for name, colour in COLOURS.items()
    }
    return write_dataset_zip(tmp_path_factory.mktemp("data") / "colours.zip", images)


@pytest.fixture(scope="session")
def trained_run(colour_zip, tmp_path_factory) -> Path:
    """A short conditional run at 16 px; long enough to learn which class is which colour."""
    config = TrainConfig(
        data=str(colour_zip),
        outdir=str(tmp_path_factory.mktemp("runs")),
        cfg="small",
        cond=True,
        kimg=4,
        batch=16,
        cbase=1024,
        cmax=64,
        tick=0.5,
        snap=2,
        workers=0,
        device="cpu",
    )
    return train(config, log=lambda line: None)


@pytest.fixture(scope="session")
def snapshot_path(trained_run) -> Path:
    """The trained run's last snapshot."""
    return sorted(trained_run.glob("network-snapshot-*.pt"))[-1]


@pytest.fixture(scope="session")
def G(snapshot_path):
    """The trained run's G_ema, on the CPU."""
    return load_generator(snapshot_path)[0]


@pytest.fixture(autouse=True)
def grad_mode_is_left_on():
    """A test (or the code it calls in-process) must not switch autograd off for the tests after it."""
    yield
    assert torch.is_grad_enabled(), "autograd was left disabled (torch.set_grad_enabled(False) outside a with block?)"

"""Shared test data: a data set of solid colours, one colour per class, and one short run on it."""

import contextlib
import functools
import importlib
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cstylegan.config import TrainConfig
from cstylegan.data.writer import write_dataset_zip
from cstylegan.snapshots.checkpoint import open_for_inference
from cstylegan.training.loop import train

REPO = Path(__file__).resolve().parents[1]
COLOURS = {
    "red_male": (230, 30, 30),
    "green_female": (30, 200, 30),
    "blue_male": (30, 30, 230),
    "yellow_female": (230, 220, 30),
}


# Scripts whose click command the tests call in this process: the same arguments, exit status
# and output as a subprocess, without importing torch again for every call.
IN_PROCESS = ("generate.py", "train.py", "datasets/make_dataset.py", "datasets/emoji.py")
IN_PROCESS_MODULES = {"cstylegan.metrics": "cstylegan.metrics.__main__", "cstylegan.projection": "cstylegan.projection.cli",
                      "cstylegan.snapshots.blend": "cstylegan.snapshots.blend"}


def run_cli(*args, cwd=REPO):
    """Run one of the repo's scripts (or `-m module`) as a user would; returns a CompletedProcess."""
    if args[0] in IN_PROCESS:
        return run_in_process(args[0], args[1:], cwd)
    if args[0] == "-m" and args[1] in IN_PROCESS_MODULES:
        return run_command(importlib.import_module(IN_PROCESS_MODULES[args[1]]).main, args[2:], cwd, args[1])
    command = list(args) if args[0] == "-m" else [str(REPO / args[0]), *args[1:]]
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=cwd)


@functools.cache
def script_module(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem + "_cli", REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(script: str, args, cwd) -> subprocess.CompletedProcess:
    """`script`'s click command run here, in `cwd`."""
    return run_command(script_module(script).main, args, cwd, script)


def run_command(command, args, cwd=REPO, name="command") -> subprocess.CompletedProcess:
    """A click command run here as a user would run it, in `cwd`. A bug still surfaces: an
    exception the command does not turn into an `Error:` line propagates and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            command.main(args=[str(arg) for arg in args], prog_name=name)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    return subprocess.CompletedProcess([name, *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(result, *words):
    """Exit status 2 and one line `Error: ...` naming the problem (every word given), no traceback."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and all(w in lines[0] for w in words), result.stderr


@pytest.fixture(scope="session")
def colour_zip(tmp_path_factory) -> Path:
    """4 classes x 16 images of 16x16 solid colour with a little noise, so images differ."""
    rng = np.random.default_rng(0)
    images = {
        name: [np.clip(np.array(colour) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8) for _ in range(16)]
        for name, colour in COLOURS.items()
    }
    return write_dataset_zip(tmp_path_factory.mktemp("data") / "colours.zip", images)


def train_colours(colour_zip, outdir, **overrides) -> Path:
    """A short conditional run at 16 px on the colours, long enough to learn which class is which colour."""
    settings = dict(data=str(colour_zip), outdir=str(outdir), cfg="small", cond=True, kimg=4, batch=16, cbase=1024,
                    cmax=64, tick=0.5, snap=2, workers=0, device="cpu")
    return train(TrainConfig(**{**settings, **overrides}), log=lambda line: None)


def assert_class_k_has_colour_k(G) -> None:
    """Each class's mean generated colour is nearest its own colour, by a clear margin."""
    colours = torch.tensor(list(COLOURS.values()), dtype=torch.float32)
    z = torch.randn([64, G.z_dim], generator=torch.Generator().manual_seed(1))
    for k in range(len(COLOURS)):
        c = torch.zeros([64, G.c_dim])
        c[:, k] = 1
        with torch.no_grad():
            img = (G(z, c, noise_mode="const") * 127.5 + 128).clamp(0, 255)
        mean_colour = img.mean(dim=[0, 2, 3])
        distances = (colours - mean_colour).norm(dim=1)
        assert distances.argmin() == k, f"class {k}: mean colour {mean_colour.tolist()}, distances {distances.tolist()}"
        assert distances[k] < 0.5 * distances[torch.arange(len(COLOURS)) != k].min()


@pytest.fixture(scope="session")
def trained_run(colour_zip, tmp_path_factory) -> Path:
    """The residual-D run of `train_colours`, shared by every test that needs a trained network."""
    return train_colours(colour_zip, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def snapshot_path(trained_run) -> Path:
    """The trained run's last snapshot."""
    return sorted(trained_run.glob("network-snapshot-*.pt"))[-1]


@pytest.fixture(scope="session")
def G(snapshot_path):
    """The trained run's G_ema, on the CPU."""
    return open_for_inference(snapshot_path).G


@pytest.fixture(autouse=True)
def grad_mode_is_left_on():
    """A test (or the code it calls in-process) must not switch autograd off for the tests after it."""
    yield
    assert torch.is_grad_enabled(), "autograd was left disabled (torch.set_grad_enabled(False) outside a with block?)"

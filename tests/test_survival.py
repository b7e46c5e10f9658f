"""A run survives what happens to long runs: Ctrl-C / SIGTERM, kill -9, corrupt snapshots,
a full disk and NaN losses, without losing more than one snapshot interval of work."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cstylegan.config import TrainConfig
from cstylegan.runtime.distributed import Processes
from cstylegan.snapshots import checkpoint
from cstylegan.training import loop, phases
from cstylegan.training.loss import StyleGAN2Loss
from cstylegan.training.rng_state import capture_rng, restore_rng
from cstylegan.training.skipped_steps import SkippedSteps
from tests.conftest import REPO

TINY = ["--cfg", "small", "--cbase", "256", "--cmax", "16", "--batch", "8", "--workers", "0", "--device", "cpu"]


def tiny_config(data, outdir, **settings) -> TrainConfig:
    values = dict(data=str(data), outdir=str(outdir), cfg="small", cond=True, cbase=256, cmax=16, batch=8,
                  workers=0, device="cpu", kimg=0.048, tick=0.016, snap=1)
    return TrainConfig(**{**values, **settings})


@pytest.fixture
def start_training():
    """Start train.py in the background; whatever a test leaves running is killed after it."""
    started = []

    def start(*args) -> subprocess.Popen:
        started.append(subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out waiting for the training run"
        time.sleep(0.2)


def snapshots(outdir) -> list:
    return sorted(Path(outdir).glob("*/network-snapshot-*.pt"))


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_with_loader_workers_still_saves(colour_zip, tmp_path):
    """Slurm and systemd signal every process of a job: the data-loader worker must not die of it first."""
    args = ["--data", str(colour_zip), "--cond", "--outdir", str(tmp_path), "--kimg", "1000", "--tick", "0.016",
            "--snap", "1000", *TINY[:-4], "--workers", "2", "--device", "cpu"]
    process = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: any("tick 1 " in p.read_text() for p in tmp_path.glob("*/log.txt")))
        os.killpg(process.pid, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-2000:]
    assert "Stopped by SIGTERM" in stdout
    [stopped] = snapshots(tmp_path)
    assert checkpoint.load_snapshot(stopped)["cur_nimg"] >= 2 * 16


@pytest.mark.slow
def test_sigterm_saves_a_snapshot_exits_0_and_auto_resume_continues(colour_zip, tmp_path, start_training):
    process = start_training("--data", str(colour_zip), "--cond", "--outdir", str(tmp_path), "--kimg", "1000",
                             "--tick", "0.016", "--snap", "1000", *TINY)
    wait_for(lambda: any("tick 1 " in p.read_text() for p in tmp_path.glob("*/log.txt")))
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "Stopped by SIGTERM" in stdout and "--resume auto" in stdout
    [stopped] = snapshots(tmp_path)
    shown = checkpoint.load_snapshot(stopped)["cur_nimg"]
    assert shown >= 2 * 16 and shown % 8 == 0  # at least two ticks of 8-image batches were trained

    config_yaml = next(tmp_path.glob("*/config.yaml"))
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "--config", str(config_yaml), "--resume", "auto",
                             "--kimg", str((shown + 16) / 1000)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"Continuing {stopped} at kimg {shown / 1000:g}" in result.stdout
    newest = checkpoint.load_snapshot(snapshots(tmp_path)[-1])
    assert newest["cur_nimg"] == shown + 16


@pytest.mark.slow
def test_kill_9_loses_at_most_one_snapshot_interval(colour_zip, tmp_path, start_training):
    process = start_training("--data", str(colour_zip), "--cond", "--outdir", str(tmp_path), "--kimg", "1000",
                             "--tick", "0.016", "--snap", "2", *TINY)
    wait_for(lambda: any("Saved network-snapshot" in p.read_text() for p in tmp_path.glob("*/log.txt")))
    time.sleep(1.0)  # let it run into the next interval before the kill
    process.kill()
    process.communicate()
    path, snapshot = checkpoint.newest_valid_snapshot(tmp_path, say=lambda line: None)
    assert path is not None and snapshot["cur_nimg"] >= 32
    log = next(tmp_path.glob("*/log.txt")).read_text()
    ticks_done = log.count("\ntick ")
    assert snapshot["cur_nimg"] >= (ticks_done - 2) * 16  # at most one snapshot interval (2 ticks) behind

    config = tiny_config(colour_zip, tmp_path, resume="auto", kimg=(snapshot["cur_nimg"] + 8) / 1000)
    lines = []
    loop.train(config, log=lines.append)
    assert any(line.startswith(f"Continuing {path}") for line in lines)
    assert checkpoint.load_snapshot(snapshots(tmp_path)[-1])["cur_nimg"] == snapshot["cur_nimg"] + 8


def test_resume_auto_without_snapshots_starts_afresh(colour_zip, tmp_path):
    lines = []
    loop.train(tiny_config(colour_zip, tmp_path, resume="auto", kimg=0.016), log=lines.append)
    assert any("no snapshot under" in line and "starting from scratch" in line for line in lines)
    assert checkpoint.load_snapshot(snapshots(tmp_path)[-1])["cur_nimg"] == 16


def test_a_truncated_snapshot_is_named_and_auto_falls_back_to_the_previous(trained_run, tmp_path):
    run = tmp_path / "00000-run"
    shutil.copytree(trained_run, run)
    files = sorted(run.glob("network-snapshot-*.pt"))
    newest, previous = files[-1], files[-2]
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError, match=f"cannot read {newest}") as error:
        checkpoint.load_snapshot(newest)
    assert "\n" not in str(error.value)
    skipped = []
    path, snapshot = checkpoint.newest_valid_snapshot(tmp_path, say=skipped.append)
    assert path == previous and snapshot["cur_nimg"] == checkpoint.load_snapshot(previous)["cur_nimg"]
    assert len(skipped) == 1 and str(newest) in skipped[0]


def test_disk_full_while_saving_keeps_the_previous_snapshot(colour_zip, tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def save_until_full(obj, file, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            file.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    lines = []
    with pytest.raises(checkpoint.CheckpointError, match="final snapshot could not be written"):
        loop.train(tiny_config(colour_zip, tmp_path, kimg=0.048, tick=0.016, snap=1, cond=False), log=lines.append)
    assert any("No space left on device" in line and "previous snapshot is intact" in line for line in lines)
    [kept] = snapshots(tmp_path)
    assert checkpoint.load_snapshot(kept)["cur_nimg"] == 16  # the first, whole and loadable
    assert not list(tmp_path.glob("*/*.tmp"))


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 1 MiB filesystem (a tmpfs mounted for the test), or a skip saying why there is none."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"could not mount a small tmpfs ({mounted.stderr.strip()})")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.mark.slow  # a tiny training on a real 1 MiB tmpfs, then generate.py into the full disk
def test_a_real_full_disk_warns_keeps_the_previous_snapshot_and_ends_in_one_line(colour_zip, small_filesystem,
                                                                                   tmp_path):
    """The first snapshot (about 0.7 MB) fits, the next ones do not: torch.save's zip writer
    then fails with a RuntimeError ("unexpected pos"), which must count as a full disk."""
    outdir = small_filesystem / "runs"
    result = subprocess.run([sys.executable, "-c", SMALL_RUN, str(colour_zip), str(outdir)], capture_output=True,
                            text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [error] = result.stderr.strip().splitlines()
    assert error.startswith("Error: the final snapshot could not be written") and "--resume auto" in error
    assert "Warning: could not write network-snapshot-000000.pt (No space left on device); the previous " \
           "snapshot is intact" in result.stdout
    assert "tick 3 " in result.stdout  # training went on after the first failure
    [run_dir] = outdir.iterdir()
    assert not list(run_dir.glob("*.tmp"))
    [kept] = snapshots(outdir)
    assert checkpoint.load_snapshot(kept)["cur_nimg"] == 8  # the first, whole and loadable
    assert oct(kept.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())  # not mkstemp's private 0600
    shutil.copy(kept, tmp_path / "kept.pt")
    generated = subprocess.run([sys.executable, str(REPO / "generate.py"), "--network", str(tmp_path / "kept.pt"),
                                "--class", "all", "--seeds", "0-99", "--outdir", str(small_filesystem / "out"),
                                "--device", "cpu"], capture_output=True, text=True, cwd=REPO)
    assert generated.returncode == 2 and "Traceback" not in generated.stderr, generated.stderr[-2000:]
    [line] = generated.stderr.strip().splitlines()
    assert line.startswith(f"Error: {small_filesystem / 'out'}/") and "No space left on device; free some space" in line
    assert not [p for p in (small_filesystem / "out").rglob("*.png") if p.stat().st_size == 0]


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# train.py with z and w of 32 (so that one snapshot is about 0.7 MB), which its flags do not offer.
SMALL_RUN = """
import sys
from cstylegan.config import TrainConfig
from cstylegan.runtime.cli import Command
from cstylegan.training.loop import train
import click

@click.command(cls=Command)
@click.argument("data")
@click.argument("outdir")
def main(data, outdir):
    train(TrainConfig(data=data, outdir=outdir, cfg="small", cond=True, cbase=256, cmax=16, z_dim=32, w_dim=32,
                      batch=8, kimg=0.032, tick=0.008, snap=1, workers=0, device="cpu"))

main()
"""


def nan_after(calls: int, real):
    """A D_main whose loss is NaN from call number `calls` on."""
    count = [0]

    def d_main(self, *args):
        count[0] += 1
        loss, stats = real(self, *args)
        return (loss * float("nan") if count[0] > calls else loss), stats

    return d_main


def test_a_few_nan_losses_are_skipped_with_a_warning(colour_zip, tmp_path, monkeypatch):
    real = StyleGAN2Loss.D_main
    count = [0]

    def nan_twice(self, *args):
        count[0] += 1
        loss, stats = real(self, *args)
        return (loss * float("nan") if count[0] in (2, 3) else loss), stats

    monkeypatch.setattr(StyleGAN2Loss, "D_main", nan_twice)
    lines = []
    loop.train(tiny_config(colour_zip, tmp_path, kimg=0.048), log=lines.append)
    assert sum("non-finite loss" in line for line in lines) == 1
    G = checkpoint.load_snapshot(snapshots(tmp_path)[-1])["G"]
    assert all(torch.isfinite(t).all() for t in G.values())


def test_nan_losses_in_a_row_stop_with_the_last_good_weights(colour_zip, tmp_path, monkeypatch):
    monkeypatch.setattr(StyleGAN2Loss, "D_main", nan_after(2, StyleGAN2Loss.D_main))
    with pytest.raises(loop.TrainingDiverged, match="--gamma") as error:
        loop.train(tiny_config(colour_zip, tmp_path, kimg=1, snap=1000), log=lambda line: None)
    assert f"minibatches in a row (the limit is {loop.NONFINITE_LIMIT})" in str(error.value)
    D = checkpoint.load_snapshot(snapshots(tmp_path)[-1])["D"]
    assert all(torch.isfinite(t).all() for t in D.values())


def test_random_state_round_trips():
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(1)
    np.random.seed(2)
    state = capture_rng({"latents": generator})
    first = torch.rand(3), np.random.rand(3), torch.rand(3, generator=generator)
    restore_rng(state, {"latents": generator})
    second = torch.rand(3), np.random.rand(3), torch.rand(3, generator=generator)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second))


def test_out_of_memory_at_start_is_one_line(colour_zip, tmp_path, monkeypatch):
    import train as train_cli
    from click.testing import CliRunner

    def no_memory(config, log=print):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "train", no_memory)
    result = CliRunner().invoke(train_cli.main, ["--data", str(colour_zip), "--batch", "64", "--outdir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: out of memory on --device auto with batch 64 (CUDA out of memory. "
                                     "Tried to allocate 2.00 GiB); lower --batch, or --cbase/--cmax, or use --cfg small")


def test_a_non_finite_phase_leaves_the_weights_exactly_and_says_so_on_the_device():
    """phase_step zeroes the gradients instead of asking the host; with the loop's Adam
    (beta1 = 0) that is an exact skip, then a finite loss steps as usual."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    params = list(model.parameters())
    opt = phases.optimizer(params, lr=0.1, reg_interval=None)
    data = torch.randn(4, 3)
    phases.phase_step(params, opt, lambda i: (model(data).square().mean(), {}), 1, Processes())
    before = [p.detach().clone() for p in params]
    stepped, _ = phases.phase_step(params, opt, lambda i: (model(data).sum() * float("nan"), {}), 1, Processes())
    assert stepped.ndim == 0 and float(stepped) == 0.0
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    stepped, _ = phases.phase_step(params, opt, lambda i: (model(data).square().mean(), {}), 1, Processes())
    assert float(stepped) == 1.0
    assert all(not torch.equal(p, b) for p, b in zip(params, before))


def test_skipped_steps_count_streaks_between_reads():
    counts = SkippedSteps("cpu")
    for stepped in [1, 0, 0, 1, 0, 0, 0]:
        counts.record(torch.tensor(float(stepped)))
    assert counts.read() == (5, 3, True)  # skipping starts: the loop warns
    counts.record(torch.tensor(0.0))  # the streak of 3 goes on to 4
    counts.record(torch.tensor(1.0))
    assert counts.read() == (1, 4, False)  # still skipping since the last read: no second warning
    assert counts.read() == (0, 0, False)
    counts.record(torch.tensor(0.0))
    assert counts.read() == (1, 1, True)  # after a clean read, a new warning


def fill(folder: Path) -> None:
    """Write into `folder` until its filesystem is really full."""
    with open(folder / "filler", "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)  # tmpfs pages: not a byte left after the last one
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_real_full_disk_costs_metric_files_events_and_the_cache_only_a_warning(small_filesystem, capsys):
    """What a snapshot's --metrics write (metric-fid.jsonl, fid.png, the stats cache), stats.jsonl
    and the TensorBoard events, on a real full 1 MiB tmpfs: a warning each, no exception, no
    temporary file left."""
    import contextlib

    from cstylegan.metrics.cache import StatsCache
    from cstylegan.training.run_records import RunRecords
    from cstylegan.training.snapshot_writer import record_metrics

    run_dir = small_filesystem / "run"
    run_dir.mkdir()
    said = []
    with contextlib.ExitStack() as files:
        records = RunRecords(run_dir, said.append, files)
        fill(small_filesystem)
        record = {"Progress/kimg": {"mean": 1.0}, "Loss/G/loss": {"mean": 0.5}, "timestamp": time.time()}
        for kimg in range(3):
            records.tick({**record, "Progress/kimg": {"mean": float(kimg)}})
            records.metrics({"fid": 1.0 + kimg}, kimg)
        record_metrics(run_dir, {"fid": 1.0}, 1, "network-snapshot-000001.pt", {}, 1, True, said.append)
        StatsCache(small_filesystem / "cache").save("key", mu=np.zeros(300000))
    assert sum("could not append to" in line and "stats.jsonl" in line for line in said) == 1
    # tensorboard 2.21 drops events on a full disk without raising; should its flush raise, one warning at most.
    assert sum("could not write TensorBoard events" in line for line in said) <= 1, said
    assert any("could not write the metrics of network-snapshot-000001.pt (No space left on device)" in line
               for line in said)
    assert "the statistics cache" in capsys.readouterr().err
    assert not list(small_filesystem.rglob("*.tmp")) and not list(small_filesystem.rglob(".key.*"))

"""What --resume starts from: nothing, a file whose weights a new run takes, or the run's own
newest whole snapshot, continued with its image count; --nkimg counts only for a new run."""

import shutil

import numpy as np
import torch

from cstylegan.config import TrainConfig
from cstylegan.data.dataset import ImageDataset
from cstylegan.data.labels import LabelSpace
from cstylegan.data.writer import write_dataset_zip
from cstylegan.snapshots.checkpoint import load_snapshot, save_snapshot
from cstylegan.training.resume import Resume, start_nimg


def config(tmp_path, **fields) -> TrainConfig:
    return TrainConfig(data="unused.zip", outdir=str(tmp_path / "runs"), **fields)


def same_run(colour_zip, tmp_path, **fields) -> TrainConfig:
    """The settings of conftest's trained run (train_colours), in a new outdir."""
    values = dict(data=str(colour_zip), outdir=str(tmp_path / "runs"), cfg="small", cond=True, cbase=1024, cmax=64,
                  batch=16)
    return TrainConfig(**{**values, **fields})


def test_no_resume_is_none_and_starts_at_zero_or_nkimg(tmp_path):
    assert Resume.find(config(tmp_path), print, None) is None
    assert start_nimg(config(tmp_path), None) == 0
    assert start_nimg(config(tmp_path, nkimg=2.5), None) == 2500


def test_a_resume_file_gives_its_weights_and_count_unless_nkimg_says_otherwise(snapshot_path, tmp_path):
    resume = Resume.find(config(tmp_path, resume=str(snapshot_path)), print, None)
    assert (resume.path, resume.continuing) == (snapshot_path, False)
    written = load_snapshot(snapshot_path)
    assert torch.equal(resume.snapshot["G_ema"]["synthesis.b4.const"], written["G_ema"]["synthesis.b4.const"])
    assert start_nimg(config(tmp_path, resume=str(snapshot_path)), resume) == written["cur_nimg"] > 0
    assert start_nimg(config(tmp_path, resume=str(snapshot_path), nkimg=1), resume) == 1000
    assert resume.ada_p == float(written.get("ada_p", 0.0))


def test_auto_continues_the_newest_whole_snapshot_and_ignores_nkimg(snapshot_path, colour_zip, tmp_path):
    logged = []
    data = ImageDataset(colour_zip)
    assert Resume.find(same_run(colour_zip, tmp_path, resume="auto"), logged.append, data) is None
    assert "no snapshot" in logged[-1]
    assert start_nimg(config(tmp_path, resume="auto", nkimg=9), None) == 0  # as it always was: auto ignores --nkimg

    run = tmp_path / "runs" / "00000-run"
    run.mkdir(parents=True)
    shutil.copy(snapshot_path, run / "network-snapshot-000001.pt")
    (run / "network-snapshot-000002.pt").write_bytes(b"cut short")  # a newer file that does not load
    resume = Resume.find(same_run(colour_zip, tmp_path, resume="auto"), logged.append, data)
    assert (resume.path, resume.continuing) == (run / "network-snapshot-000001.pt", True)
    assert any("network-snapshot-000002.pt" in line for line in logged)
    cur_nimg = load_snapshot(snapshot_path)["cur_nimg"]
    assert start_nimg(config(tmp_path, resume="auto", nkimg=9), resume) == cur_nimg


def test_auto_continues_only_a_snapshot_of_the_same_run(snapshot_path, colour_zip, tmp_path):
    """The shared default outdir holds other runs: another data set, a changed one, other
    classes or another architecture start afresh, saying why in one line."""
    run = tmp_path / "runs" / "00000-run"
    run.mkdir(parents=True)
    shutil.copy(snapshot_path, run / "network-snapshot-000004.pt")
    other_zip = write_dataset_zip(tmp_path / "other.zip", {"a_x": [np.zeros((16, 16, 3), np.uint8)] * 2,
                                                           "b_x": [np.full((16, 16, 3), 255, np.uint8)] * 2})
    data = ImageDataset(colour_zip)
    cases = [
        (same_run(other_zip, tmp_path, resume="auto"), ImageDataset(other_zip), f"trained on {colour_zip}, not"),
        (same_run(colour_zip, tmp_path, resume="auto", cbase=512), data, "--cbase 1024 there, 512 here"),
        (same_run(colour_zip, tmp_path, resume="auto", cfg="auto"), data, "--cfg small there, auto here"),
        (same_run(colour_zip, tmp_path, resume="auto", cond=False), data, "its classes are"),
    ]
    for settings, dataset, words in cases:
        logged = []
        assert Resume.find(settings, logged.append, dataset) is None, words
        assert words in logged[-1] and "is of another run" in logged[-1] and "starting from scratch" in logged[-1]
    changed = {**load_snapshot(run / "network-snapshot-000004.pt"), "data_size": 12345}  # the data was 12345 bytes then
    save_snapshot(run / "network-snapshot-000005.pt", changed)
    logged = []
    assert Resume.find(same_run(colour_zip, tmp_path, resume="auto"), logged.append, data) is None
    assert f"{colour_zip} has changed since: 12345 bytes then, {colour_zip.stat().st_size} now" in logged[-1]
    (run / "network-snapshot-000005.pt").unlink()
    assert Resume.find(same_run(colour_zip, tmp_path, resume="auto"), print, data).continuing


def test_optimiser_states_load_only_into_the_same_networks_and_classes(snapshot_path, tmp_path):
    resume = Resume.find(config(tmp_path, resume=str(snapshot_path)), print, None)
    snapshot = resume.snapshot
    G_opt, D_opt = (torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]) for _ in range(2))
    other = {**snapshot["G_kwargs"], "w_dim": snapshot["G_kwargs"]["w_dim"] + 1}
    assert not resume.restore_optimisers(G_opt, D_opt, other, LabelSpace.of_snapshot(snapshot))
    another = LabelSpace.of_classes(["another"] * len(snapshot["class_names"]))
    assert not resume.restore_optimisers(G_opt, D_opt, snapshot["G_kwargs"], another)
    assert G_opt.state_dict()["state"] == {}


def test_the_log_of_a_continued_noaug_run_claims_no_ada_p(colour_zip, tmp_path):
    """Every restore line is true: with --aug noaug (or fixed) there is no ADA p to continue."""
    from tests.conftest import REPO, run_in_process

    args = ["--data", colour_zip, "--outdir", tmp_path / "runs", "--cfg", "small", "--cbase", "256", "--cmax", "16",
            "--batch", "8", "--workers", "0", "--device", "cpu", "--aug", "noaug", "--snap", "1", "--tick", "0.008"]
    assert run_in_process("train.py", [*args, "--kimg", "0.008"], REPO).returncode == 0
    result = run_in_process("train.py", [*args, "--kimg", "0.016", "--resume", "auto"], REPO)
    assert result.returncode == 0, result.stderr
    log = sorted((tmp_path / "runs").glob("*/log.txt"))[-1].read_text()
    line = next(line for line in log.splitlines() if line.startswith("Continuing "))
    assert line.endswith(": weights and random state restored (--aug noaug: no ADA p to continue)"), line
    assert "ADA p restored" not in log and "ADA p and" not in log

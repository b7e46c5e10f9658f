"""train.py --metrics: numbers at every snapshot, in metric-<name>.jsonl and fid.png."""

import json

import pytest

from cstylegan.config import TrainConfig
from cstylegan.metrics.errors import MetricError
from cstylegan.training.loop import train
from tests.conftest import COLOURS


@pytest.mark.slow
def test_metrics_at_every_snapshot(trained_run, colour_zip, tmp_path):
    config = TrainConfig(data=str(colour_zip), outdir=str(tmp_path),
                         cfg="small", cond=True, kimg=4.1, batch=16, tick=0.1, workers=0, device="cpu",
                         resume=str(trained_run / "network-snapshot-000004.pt"),
                         metrics=["fid", "fid_per_class"], metrics_num_gen=16)
    lines = []
    run_dir = train(config, log=lines.append)
    fid = [json.loads(line) for line in (run_dir / "metric-fid.jsonl").read_text().splitlines()]
    per_class = [json.loads(line) for line in (run_dir / "metric-fid_per_class.jsonl").read_text().splitlines()]
    assert len(fid) == len(per_class) == 1 and fid[0]["snapshot"] == "network-snapshot-000004.pt"
    assert fid[0]["results"]["fid"] > 0 and fid[0]["settings"]["num_gen"] == 16
    assert set(per_class[0]["results"]) == {f"fid_per_class/{name}" for name in COLOURS} | {"fid_per_class_mean"}
    assert (run_dir / "fid.png").stat().st_size > 0
    assert any(line.startswith("Metrics: fid ") for line in lines)


def test_per_class_metrics_need_labels_before_any_work(colour_zip, tmp_path):
    config = TrainConfig(data=str(colour_zip), outdir=str(tmp_path), cfg="small", kimg=1, metrics=["fid_per_class"])
    with pytest.raises(MetricError, match="needs --cond"):
        train(config, log=lambda line: None)
    assert not list(tmp_path.iterdir())  # refused before a run folder was made


@pytest.mark.parametrize("flags, words", [
    (["--metrics", "pr", "--metrics-num-gen", "3"], ["--metrics pr needs more than k=3 fakes", "--metrics-num-gen 4"]),
    (["--metrics", "fid", "--metrics-num-gen", "4"], ["$CSTYLEGAN_INCEPTION", "gone.pt: no such file"]),
])
def test_metrics_that_cannot_be_computed_are_refused_before_training(colour_zip, tmp_path, monkeypatch, flags, words):
    """Not at the first snapshot, hours in: too few fakes for k=3 neighbours, Inception weights missing."""
    from tests.conftest import REPO, assert_one_line_error, run_in_process

    monkeypatch.setenv("CSTYLEGAN_INCEPTION", str(tmp_path / "gone.pt"))
    if "pr" in flags:
        monkeypatch.delenv("CSTYLEGAN_INCEPTION")
    result = run_in_process("train.py", ["--data", colour_zip, "--outdir", tmp_path / "runs", "--cfg", "small",
                                         "--batch", "8", "--kimg", "0.016", "--workers", "0", *flags], REPO)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()

"""A short CPU run learns the conditioning, writes every file it promises, and resumes."""


import json
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cstylegan.training.progress import read_stats
from cstylegan.config import TrainConfig
from cstylegan.data.dataset import ImageDataset
from cstylegan.data.writer import write_dataset_zip
from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference
from cstylegan.training.loop import train
from tests.conftest import COLOURS, assert_class_k_has_colour_k, run_cli


def test_generated_class_k_has_colour_k(trained_run):
    opened = open_for_inference(sorted(trained_run.glob("network-snapshot-*.pt"))[-1])
    G = opened.G
    assert opened.class_names == list(COLOURS)
    assert_class_k_has_colour_k(G)


def test_run_folder_has_every_promised_file(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.yaml", "log.txt", "stats.jsonl", "reals.png", "fakes000000.png", "fakes000004.png"} <= names
    assert {"network-snapshot-000004.pt"} <= names
    assert "training_options.json" in names and any(name.startswith("events.out.tfevents.") for name in names)
    records = read_stats(trained_run / "stats.jsonl")
    assert [r["Progress/tick"] for r in records] == list(range(len(records)))
    assert records[-1]["Progress/kimg"] >= 4
    for key in ("Timing/sec_per_kimg", "Timing/img_per_s", "Loss/G/loss", "Loss/D/loss", "Resources/peak_gpu_mem_gb"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert any("Loss/r1_penalty" in r for r in records) and any("Loss/pl_penalty" in r for r in records)
    # NVlabs' format: {"num", "mean", "std"} per number, and a timestamp; a loss's num counts the
    # tick's minibatches (0.5 kimg of batch 16 = 32), a single reading has num 1.
    raw = [json.loads(line) for line in (trained_run / "stats.jsonl").read_text().splitlines()]
    for line in raw:
        assert all(set(v) == {"num", "mean", "std"} for k, v in line.items() if k != "timestamp")
        assert line["Progress/kimg"]["num"] == 1 and line["Progress/kimg"]["std"] == 0
    assert raw[1]["Loss/G/loss"]["num"] == 32 and raw[1]["Loss/G/loss"]["std"] > 0
    assert [line["timestamp"] for line in raw] == sorted(line["timestamp"] for line in raw)
    # TensorBoard's own reader finds the same scalars, at the kimg as the step, and a fakes grid per picture.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"Loss/G/loss", "Loss/D/loss", "Progress/kimg", "Timing/sec_per_kimg"} <= set(events.Tags()["scalars"])
    assert [e.value for e in events.Scalars("Loss/D/loss")] == pytest.approx([r["Loss/D/loss"] for r in records])
    assert [e.step for e in events.Scalars("Progress/kimg")] == [int(r["Progress/kimg"]) for r in records]
    assert len(events.Images("Fakes")) == len(list(trained_run.glob("fakes*.png")))
    # The progress line prints what the record holds.
    ticks = [line for line in (trained_run / "log.txt").read_text().splitlines() if line.startswith("tick ")]
    assert f"kimg {records[-1]['Progress/kimg']:<8.1f}" in ticks[-1] and f"G {records[-1]['Loss/G/loss']:.3f}" in ticks[-1]
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert TrainConfig.from_dict(config).class_names == list(COLOURS)
    # fakes: one row of 8 per class, plus a label column on the left.
    fakes = Image.open(trained_run / "fakes000004.png")
    assert fakes.height == 4 * 16 and fakes.width > 8 * 16


def test_snapshot_is_plain_tensors(trained_run):
    path = trained_run / "network-snapshot-000004.pt"
    snapshot = torch.load(path, weights_only=True)
    assert set(snapshot) >= {"G", "G_ema", "D", "G_opt", "D_opt", "G_kwargs", "D_kwargs", "config", "cur_nimg"}
    assert snapshot["cur_nimg"] >= 4000 and snapshot["cur_nimg"] % 16 == 0
    w_avg_per_class = snapshot["G_ema"]["mapping.w_avg_per_class"]
    assert w_avg_per_class.shape[0] == 4 and (w_avg_per_class.abs().sum(dim=1) > 0).all()
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.slow
def test_resume_continues_the_kimg_count(trained_run, tmp_path):
    start = load_snapshot(trained_run / "network-snapshot-000004.pt")["cur_nimg"]
    config = TrainConfig.from_dict(
        {
            **{k: v for k, v in TrainConfig.from_dict(yaml.safe_load((trained_run / "config.yaml").read_text())).to_dict().items()
               if k not in ("resolution", "class_names")},
            "outdir": str(tmp_path),
            "resume": str(trained_run / "network-snapshot-000004.pt"),
            "kimg": 4.5,
            "channels_last": True,  # a choice of this run, not of the resumed weights
        }
    )
    run_dir = train(config, log=lambda line: None)
    resumed = load_snapshot(run_dir / "network-snapshot-000004.pt")
    assert resumed["G_kwargs"]["fp16_channels_last"] and resumed["D_kwargs"]["block_kwargs"]["fp16_channels_last"]
    log = (run_dir / "log.txt").read_text()
    assert "Resumed weights from" in log and "every tensor copied as it was" in log
    source_opt = load_snapshot(trained_run / "network-snapshot-000004.pt")["G_opt"]["state"]
    steps = lambda state: float(next(iter(state.values()))["step"])  # noqa: E731 - Adam's count of its steps
    assert steps(resumed["G_opt"]["state"]) > steps(source_opt)  # the optimiser went on counting: restored
    records = read_stats(run_dir / "stats.jsonl")
    assert records[0]["Progress/kimg"] > start / 1000 and records[-1]["Progress/kimg"] >= 4.5
    assert resumed["cur_nimg"] == records[-1]["Progress/kimg"] * 1000


@pytest.mark.slow
def test_train_cli_errors_are_one_line(colour_zip, tmp_path):
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    Image.new("RGB", (8, 8)).save(unlabelled / "a.png")
    cases = [
        ([], "--data is required"),
        (["--data", str(tmp_path / "missing.zip")], "no such file"),
        (["--cond", "--data", str(unlabelled)], "no class labels"),
        (["--data", str(colour_zip), "--batch", "6", "--cfg", "small"], "not divisible"),
        (["--data", str(colour_zip), "--resume", str(tmp_path / "nope.pt")], "not found"),
    ]
    for args, message in cases:
        result = run_cli("train.py", "--outdir", str(tmp_path / "runs"), "--device", "cpu", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_resume_into_new_classes_with_freeze_d(trained_run, colour_zip, tmp_path):
    """From the 4-class run into a data set with one class renamed: shared classes kept, the
    architecture taken from the snapshot (no --cbase given), the first D layers frozen."""
    source = load_snapshot(trained_run / "network-snapshot-000004.pt")
    reals = ImageDataset(colour_zip)
    renamed = {"red_male": [], "green_female": [], "blue_male": [], "purple_female": []}
    for i in range(len(reals)):
        image, label = reals[i]
        renamed[list(renamed)[int(label.argmax())]].append(image.transpose(1, 2, 0))
    data = write_dataset_zip(tmp_path / "renamed.zip", renamed)
    config = TrainConfig(data=str(data), outdir=str(tmp_path / "runs"), cfg="small", cond=True, kimg=4.25,
                         batch=16, tick=0.25, workers=0, device="cpu", freezed=2, aug="noaug",
                         resume=str(trained_run / "network-snapshot-000004.pt"))
    run_dir = train(config, log=lambda line: None)
    log = (run_dir / "log.txt").read_text()
    assert "G.mapping.embed.weight: kept 3 of 4 class columns" in log
    assert "frozen by --freezed 2" in log
    result = load_snapshot(sorted(run_dir.glob("network-snapshot-*.pt"))[-1])
    assert result["class_names"] == list(renamed)
    assert result["cur_nimg"] > source["cur_nimg"]
    first_block = "b16"
    for layer in ("fromrgb", "conv0"):
        assert torch.equal(result["D"][f"{first_block}.{layer}.weight"], source["D"][f"{first_block}.{layer}.weight"])
    assert not torch.equal(result["D"][f"{first_block}.conv1.weight"], source["D"][f"{first_block}.conv1.weight"])

"""The experiment runner: config checks, per-class routing, and one tiny comparison end to end."""

import csv
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cstylegan.config import save_yaml
from cstylegan.data.writer import write_dataset_zip
from cstylegan.networks.stylegan2 import Generator
from experiments.matrix import conditional_config
from experiments.methods import PerClassModels
from experiments.plan import plan_lines
from experiments.report import read_references, unit_status, write_tables
from experiments.spec import SpecError, load_spec, parse_spec
from tests.conftest import COLOURS, REPO as ROOT, run_cli

CLASSES = ["red_male", "blue_male"]
METHODS = ["transfer", "transfer_swap8", "cond_sg2", "cond_sg3t"]


def tiny_config(data) -> dict:
    """16 px, 2 classes, whole-kimg snapshots so that curves have two points."""
    return {
        "data": str(data),
        "make_data": "(made by the test)",
        "device": "cpu",
        "train": {"cfg": "small", "cbase": 256, "cmax": 16, "batch": 8, "tick": 0.5, "workers": 0},
        "num_gen": 8,
        "num_gen_per_class": 6,
        "curve_num_gen_per_class": 4,
        "sample_seeds": "0-2",
        "swap_layer": 2,
        "generator_num_gen": 4,
        "transfer": {"base_kimg": 1, "finetune_kimg": 2, "snap_kimg": 1, "swap_split_res": [8]},
        "conditional": [
            {"name": "cond_sg2", "kimg": 2, "snap_kimg": 1},
            {"name": "cond_sg3t", "kimg": 1, "snap_kimg": 1, "notes": "same hours",
             "train": {"cfg": "stylegan3-t", "cbase": 128, "cmax": 8}},  # SG3 is slow on a CPU
        ],
    }


def write_data_and_config(root):
    rng = np.random.default_rng(1)
    images = {name: [np.clip(np.array(COLOURS[name]) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8)
                     for _ in range(6)] for name in CLASSES}
    config = tiny_config(write_dataset_zip(root / "two.zip", images))
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_table(results) -> list:
    with open(results / "table.csv") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """The runner as a time-slotted user runs it: the plan; cond_sg2 alone after a killed start
    (an unfinished run left at 1 of 2 kimg); then transfer and cond_sg3t. Then the whole config
    at once into another results folder (every training and measurement found in the work
    folder), and once more with an empty work folder (every unit done from its results files)."""
    root = tmp_path_factory.mktemp("comparison")
    config = write_data_and_config(root)
    work, results = root / "work", root / "results"
    common = ("experiments/run.py", str(config), "--workdir", str(work))
    plan = run_cli(*common, "--plan", "--results", str(results))
    assert plan.returncode == 0, plan.stderr[-3000:]

    killed = replace(conditional_config(load_spec(config), "cond_sg2"), kimg=1, outdir=str(work / "cond_sg2"))
    save_yaml(killed, root / "killed.yaml")
    assert run_cli("train.py", "--config", str(root / "killed.yaml")).returncode == 0

    runs = {"cond_sg2": run_cli(*common, "--only", "cond_sg2", "--results", str(results))}
    assert runs["cond_sg2"].returncode == 0, runs["cond_sg2"].stderr[-3000:]
    after = {"cond_sg2": work_state(work, results)}
    one_row = read_table(results)
    runs["rest"] = run_cli(*common, "--only", "transfer,cond_sg3t", "--results", str(results))
    assert runs["rest"].returncode == 0, runs["rest"].stderr[-3000:]
    after["rest"] = work_state(work, results)
    runs["all_at_once"] = run_cli(*common, "--results", str(root / "at_once"))
    assert runs["all_at_once"].returncode == 0, runs["all_at_once"].stderr[-3000:]
    after["all_at_once"] = work_state(work, results)
    runs["no_workdir"] = run_cli("experiments/run.py", str(config), "--workdir", str(root / "empty"),
                                 "--results", str(results))
    assert runs["no_workdir"].returncode == 0, runs["no_workdir"].stderr[-3000:]
    after["no_workdir"] = work_state(root / "empty", results)
    return root, plan, runs, one_row, after


def work_state(work, results) -> dict:
    """What a runner call left: each training's run folders with the kimg of their first
    tick, the stored measurements, and the committed records."""
    folders = {}
    for stats in sorted(work.glob("*/*/stats.jsonl")):
        first = json.loads(stats.read_text().splitlines()[0])
        folders.setdefault(stats.parts[-3], []).append(first["Progress/kimg"]["mean"])
    evaluations = work / "evaluations.json"
    return {"runs": folders, "evaluations": evaluations.read_text() if evaluations.is_file() else None,
            "records": {path.name: path.read_text() for path in sorted((results / "methods").glob("*.json"))}}


@pytest.mark.slow  # about three minutes on 2 cores: 8 trainings and a few hundred images through Inception
def test_runner_writes_every_output(comparison):
    root, _, runs, _, _ = comparison
    results = root / "results"
    expected = {"table.md", "table.csv", "fid_curves.png", "swap_grid.png", "sg2_vs_sg3.md", "sg2_vs_sg3.csv",
                "sg2_vs_sg3.png", "motion_cond_sg3t.png", "environment.txt",
                "config.yaml", *(f"samples_{m}.png" for m in METHODS)}
    assert expected <= {p.name for p in results.iterdir()}
    assert {p.name for p in (results / "methods").iterdir()} == {f"{m}.json" for m in METHODS}

    rows = read_table(results)
    per_class = [f"fid_{c}" for c in CLASSES] + ["fid_per_class_mean"]
    kids = [column for c in CLASSES for column in (f"kid_{c}", f"kid_{c}_std")] + ["kid_per_class_mean"]
    assert list(rows[0]) == ["method", "cfg", *per_class, *kids, "fid", "kid", "kid_std", "class_acc", "style_acc", "kimg",
                             "wall_time_s", "models", "G_params", "peak_mem_gb", "notes"]
    by_method = {row["method"]: row for row in rows}
    assert list(by_method) == METHODS
    for row in rows:
        fids = [float(row[f"fid_{c}"]) for c in CLASSES]
        assert all(np.isfinite(fids)) and min(fids) > 0
        assert float(row["fid_per_class_mean"]) == pytest.approx(np.mean(fids))
        assert float(row["kid_per_class_mean"]) == pytest.approx(np.mean([float(row[f"kid_{c}"]) for c in CLASSES]))
        # Every KID subset holds all 6 reals and 6 fakes of a class, so only the overall KID varies over subsets.
        assert all(float(row[f"kid_{c}_std"]) >= 0 for c in CLASSES) and float(row["kid_std"]) > 0
        assert 0 <= float(row["class_acc"]) <= 1 and float(row["wall_time_s"]) > 0
        assert 0 <= float(row["style_acc"]) <= 1  # the data's classes are style_gender; gender has one value
    # Transfer: a 1 kimg base and two 2 kimg fine-tunes, 3 models; the swap reuses them.
    assert float(by_method["transfer"]["kimg"]) == pytest.approx(5, abs=0.05)
    assert by_method["transfer"]["models"] == by_method["transfer_swap8"]["models"] == "3"
    assert by_method["cond_sg2"]["models"] == "1"
    assert float(by_method["cond_sg2"]["kimg"]) == pytest.approx(2, abs=0.05)
    assert by_method["cond_sg3t"]["cfg"] == "stylegan3-t" and by_method["cond_sg3t"]["notes"] == "same hours"
    # Two per-style generators hold twice the parameters of one unconditional generator.
    assert int(by_method["transfer"]["G_params"]) > int(by_method["cond_sg2"]["G_params"])

    markdown = (results / "table.md").read_text()
    assert markdown.count("\n| ") == len(METHODS) and "**" in markdown and " ± " in markdown
    assert "cond_sg2: " in markdown and "of transfer's kimg" in markdown or "never reaches" in markdown

    record = json.loads((results / "methods" / "cond_sg2.json").read_text())
    assert [point["kimg"] for point in record["curve"]] == [1, 2]  # a point at every snapshot, 1 kimg apart
    assert record["curve_num_gen_per_class"] == 4 and "kid_per_class/red_male" in record["final"]
    assert record["row"]["fid_per_class_mean"] == record["final"]["fid_per_class_mean"]
    transfer = json.loads((results / "methods" / "transfer.json").read_text())
    assert [point["kimg"] for point in transfer["curve"]] == [3, 5]  # base 1 + 2 classes x fine-tune kimg 1 and 2

    shipped = torch.load(results / "cond_sg2_G_ema.pt", weights_only=True)
    assert "D" not in shipped and "G_opt" not in shipped and shipped["class_names"] == CLASSES
    assert all(t.dtype == torch.float16 for t in shipped["G_ema"].values() if t.is_floating_point())
    samples = Image.open(results / "samples_cond_sg2.png")
    assert samples.height >= 2 * 16 and samples.width >= 3 * 16
    environment = (results / "environment.txt").read_text()
    assert all(f"{m} (unit " in environment for m in METHODS) and "commit" in environment
    # Metric time adds up every measurement of the method, whichever runner call made it.
    stored = json.loads((root / "work" / "evaluations.json").read_text())
    measured = sum(stored["cond_sg2"]["seconds"].values()) + stored["cond_sg2/generator"]["seconds"]
    assert set(stored["cond_sg2"]["seconds"]) == {"1", "2", "final"}
    assert record["metric_seconds"] == pytest.approx(measured) and measured > 0
    assert "cond_sg2 (unit" in environment and "(over every call that measured them); the runner's last call" in environment
    assert "transfer_base: training" in runs["rest"].stdout


def test_a_table_of_old_and_new_records_shows_a_newer_column_beside_its_neighbour(tmp_path):
    old = {"method": "transfer", "fid": 200.0, "class_acc": 0.4, "kimg": 84}
    new = {"method": "cond_sg2", "fid": 150.0, "class_acc": 0.5, "style_acc": 0.9, "gender_acc": 0.55, "kimg": 160}
    write_tables([old, new], tmp_path)
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[0] == "| method | fid | class_acc | style_acc | gender_acc | kimg |"
    assert lines[2] == "| transfer | 200.0 | 0.400 | — | — | 84 |"
    assert lines[3] == "| cond_sg2 | **150.0** | **0.500** | 0.900 | 0.550 | 160 |"  # best of two only
    assert read_table(tmp_path)[0]["style_acc"] == ""


@pytest.mark.slow
def test_sg2_vs_sg3_has_equivariance_for_stylegan3_path_length_for_both_and_the_motion_figure(comparison):
    root, _, _, _, _ = comparison
    results = root / "results"
    with open(results / "sg2_vs_sg3.csv") as file:
        rows = {row["method"]: row for row in csv.DictReader(file)}
    assert list(rows) == ["cond_sg2", "cond_sg3t"]
    sg2, sg3 = rows["cond_sg2"], rows["cond_sg3t"]
    assert all(sg2[name] == "" for name in ("eqt_int", "eqt_frac", "eqr"))  # no input grid to move
    assert all(0 < float(sg3[name]) < 200 for name in ("eqt_int", "eqt_frac", "eqr"))
    assert all(float(row["ppl_w_inception"]) > 0 for row in rows.values())
    for row in rows.values():
        assert float(row["sec_per_kimg"]) == pytest.approx(3600 * float(row["training_h"]) / float(row["kimg"]))
    record = json.loads((results / "methods" / "cond_sg3t.json").read_text())
    assert record["generator_num_gen"] == 4 and record["final"]["eqr"] == pytest.approx(float(sg3["eqr"]))
    markdown = (results / "sg2_vs_sg3.md").read_text()
    assert markdown.count("\n| cond_") == 2 and "| — |" in markdown and "not NVlabs' VGG16 PPL" in markdown
    strip = Image.open(results / "motion_cond_sg3t.png")
    assert not (results / "motion_cond_sg2.png").exists()
    figure = Image.open(results / "sg2_vs_sg3.png")
    assert figure.size == strip.size and strip.width > 8 * 16 * 4  # 8 frames of 16 px shown 4x, and row labels


@pytest.mark.slow
def test_plan_measures_each_unit_before_anything_runs(comparison):
    _, plan, _, _, _ = comparison
    lines = {line.split()[0]: line.split() for line in plan.stdout.splitlines() if line.strip()}
    for unit, kimg in (("transfer", "5"), ("cond_sg2", "2"), ("cond_sg3t", "1")):
        assert lines[unit][1] == kimg and float(lines[unit][2]) > 0 and lines[unit][-2:] == ["to", "run"]
        hours, minutes, seconds = map(int, lines[unit][5].split(":"))  # expected time, training + metrics
        assert 3600 * hours + 60 * minutes + seconds > 0
    assert "measuring its training speed" in plan.stdout


def test_plan_columns_line_up_for_long_unit_names(monkeypatch):
    units = ["cond_sg2", "attr_holdout_uniform_with_a_long_name"]
    spec = SimpleNamespace(units=lambda: units)
    monkeypatch.setattr("experiments.plan.estimate", lambda spec, unit, *args: {
        "kimg": 140, "img_per_s": 22.5, "train_h": 1.5, "metric_h": 0.25, "hours": 1.75})
    monkeypatch.setattr("experiments.plan.unit_status", lambda spec, unit, results: "to run")
    lines = plan_lines(spec, None, None, None, print)
    assert [line.split()[0] for line in lines] == ["unit"] + units
    kimg_ends = {lines[0].index("kimg") + len("kimg")} | {line.index("140") + len("140") for line in lines[1:]}
    assert len(kimg_ends) == 1 and lines[2].split()[1:6] == ["140", "22.5", "1:30:00", "0:15:00", "1:45:00"]


@pytest.mark.slow
def test_a_killed_training_continues_and_units_merge(comparison):
    root, _, _, one_row, after = comparison
    # The killed run (ticks from 0.5 kimg) and its continuation from its 1 kimg snapshot, nothing else.
    assert list(after["cond_sg2"]["runs"]) == ["cond_sg2"]
    assert after["cond_sg2"]["runs"]["cond_sg2"] == pytest.approx([0.5, 1.5], abs=0.01)
    assert [row["method"] for row in one_row] == ["cond_sg2"] and list(after["cond_sg2"]["records"]) == ["cond_sg2.json"]
    # The whole config at once finds every training and measurement of the separate units.
    assert after["all_at_once"] == after["rest"]
    assert read_table(root / "at_once") == read_table(root / "results")
    # With an empty work folder every unit is done from its committed results alone.
    assert after["no_workdir"] == {"runs": {}, "evaluations": None, "records": after["rest"]["records"]}
    assert len(after["rest"]["records"]) == len(read_table(root / "results")) == 4


@pytest.mark.slow
def test_max_hours_refuses_a_unit_that_would_not_fit(comparison, tmp_path):
    root, _, _, _, _ = comparison
    result = run_cli("experiments/run.py", str(root / "tiny.yaml"), "--workdir", str(root / "work"),
                     "--results", str(tmp_path / "fresh"), "--only", "cond_sg2", "--max-hours", "0.0001")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unit cond_sg2 would take about" in result.stderr and "--max-hours leaves" in result.stderr
    assert not (tmp_path / "fresh" / "methods").exists()


@pytest.mark.slow
def test_a_changed_config_makes_a_unit_stale(comparison):
    root, _, _, _, _ = comparison
    spec = load_spec(root / "tiny.yaml")
    assert unit_status(spec, "cond_sg2", root / "results") == "done"
    spec.conditional[0].kimg = 3
    assert unit_status(spec, "cond_sg2", root / "results").startswith("stale")
    assert unit_status(spec, "transfer", root / "results") == "done"


def test_per_class_models_route_each_image_to_its_class_model():
    torch.manual_seed(0)
    models = [Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64,
                        channel_max=8).eval() for _ in range(2)]
    z = torch.randn([4, 8])
    c = torch.eye(2)[[0, 1, 1, 0]]
    with torch.no_grad():
        images = PerClassModels(models)(z, c)
        for i, k in enumerate([0, 1, 1, 0]):
            expected = (models[k](z[i : i + 1], torch.zeros([1, 0]), noise_mode="const") * 127.5 + 128).clamp(0, 255)
            assert torch.equal(images[i : i + 1], expected.to(torch.uint8))
            other = (models[1 - k](z[i : i + 1], torch.zeros([1, 0]), noise_mode="const") * 127.5 + 128)
            assert not torch.equal(images[i : i + 1], other.clamp(0, 255).to(torch.uint8))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(colour=1), "unknown key colour"),
    (lambda c: c["train"].update(kimg=5), "kimg cannot be set here"),
    (lambda c: c["transfer"].update(snap_kimg=0.5), "snap_kimg must be from 1"),
    (lambda c: c["transfer"].update(swap_lower="middle"), "swap_lower must be base or finetune"),
    (lambda c: c["conditional"][0].update(train={"tick": 0.75}), "snap_kimg 1 is not a whole number of ticks of 0.75"),
    (lambda c: c["conditional"].append({"name": "cond_sg2", "kimg": 1, "snap_kimg": 1}), "method names must differ"),
    (lambda c: c["conditional"][0].pop("kimg"), "missing key kimg"),
    (lambda c: c.update(num_gen=1), "at least 2"),
    (lambda c: c.update(curve_num_gen_per_class=1), "at least 2"),
    (lambda c: c["train"].update(labels="attributes"), "is for one conditional model; set it in that model's own"),
    (lambda c: c["conditional"][0].update(train={"class_fraction": {"red_male": 0}}), "add --cond --labels attributes"),
    (lambda c: c.update(references=["cond_sg2"]), "'cond_sg2' is not config/method"),
])
def test_bad_configs_are_refused_by_name(change, message):
    config = tiny_config("two.zip")
    change(config)
    with pytest.raises(SpecError, match=message):
        parse_spec(config, "tiny")


def test_units_and_only():
    spec = parse_spec(tiny_config("two.zip"), "tiny")
    assert spec.units() == {"transfer": ["transfer", "transfer_swap8"], "cond_sg2": ["cond_sg2"],
                            "cond_sg3t": ["cond_sg3t"]}
    assert spec.parse_units(None) == ["transfer", "cond_sg2", "cond_sg3t"]
    assert spec.parse_units("cond_sg3t,transfer_swap8") == ["transfer", "cond_sg3t"]  # config order; a swap is transfer's
    with pytest.raises(SpecError, match="no unit cond_sg4 in tiny; units: transfer, cond_sg2, cond_sg3t"):
        spec.parse_units("cond_sg2,cond_sg4")
    assert spec.curve_num_gen_per_class == 4 and spec.unit_settings("cond_sg2")["cond_sg2"]["kimg"] == 2


@pytest.mark.parametrize("path", sorted((ROOT / "experiments" / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_are_valid(path):
    spec = load_spec(path)
    assert spec.units() and spec.curve_num_gen_per_class >= 2


def test_emoji32_cpu_gives_every_method_the_same_budget():
    spec = load_spec(ROOT / "experiments" / "configs" / "emoji32_cpu.yaml")
    transfer = spec.transfer.base_kimg + 4 * spec.transfer.finetune_kimg
    assert transfer == spec.conditional[0].kimg and spec.transfer.finetune_kimg / spec.transfer.snap_kimg >= 6
    assert spec.conditional[0].kimg / spec.conditional[0].snap_kimg >= 6 and spec.num_gen >= 5000


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path):
    config = tiny_config(tmp_path / "missing.zip")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("experiments/run.py", str(path), "--workdir", str(tmp_path / "work"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing.zip not found; build it with: (made by the test)" in result.stderr
    result = run_cli("experiments/run.py", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "experiments/configs/" in result.stderr


@pytest.mark.slow  # about a minute: one 1-kimg attribute model, measured on all four classes
def test_a_held_out_pair_is_measured_beside_a_quoted_reference(tmp_path):
    """An attribute model trained without cool_female is measured against cool_female's real
    images; class_shares.md puts it beside a model quoted from another results folder."""
    rng = np.random.default_rng(2)
    colours = {"warm_male": (230, 30, 30), "warm_female": (230, 30, 230), "cool_male": (30, 30, 30),
               "cool_female": (30, 30, 230)}
    images = {name: [np.clip(np.array(c) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
              for name, c in colours.items()}
    config = {**tiny_config(write_dataset_zip(tmp_path / "four.zip", images)), "transfer": None,
              "generator_num_gen": None, "conditional": [
                  {"name": "held_out", "kimg": 1, "snap_kimg": 1,
                   "train": {"labels": "attributes", "class_fraction": {"cool_female": 0}}}]}
    (tmp_path / "holdout.yaml").write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    run = run_cli("experiments/run.py", tmp_path / "holdout.yaml", "--workdir", tmp_path / "work", "--results",
                  results / "holdout")
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((results / "holdout" / "methods" / "held_out.json").read_text())
    assert np.isfinite(record["final"]["fid_per_class/cool_female"]) and record["final_fakes_per_class"]["cool_female"]
    shares = (results / "holdout" / "class_shares.md").read_text().splitlines()
    assert shares[2:5] == ["## cool_female", "",
                           "| method | labels | share_trained_on | fid | kid | class_acc | style_acc | gender_acc |"]
    assert shares[6].startswith(f"| held_out | attributes, --label-mix data | 0 | "
                                f"{record['final']['fid_per_class/cool_female']:.1f} | ")
    samples = Image.open(results / "holdout" / "samples_held_out.png")
    assert samples.height == 4 * 16  # a row per combination, the unseen one too

    quoting = parse_spec({**config, "conditional": [{**config["conditional"][0], "name": "other"}],
                          "references": ["holdout/held_out"]}, "quoting")
    quoted = read_references(quoting, results)
    assert [r["method"] for r in quoted] == ["holdout/held_out"] and quoted[0]["final"] == record["final"]
    with pytest.raises(SpecError, match="holdout/held_out was measured with other train than quoting"):
        read_references(replace(quoting, train={**quoting.train, "batch": 4}), results)
    with pytest.raises(SpecError, match="holdout/gone has no results"):
        read_references(replace(quoting, references=["holdout/gone"]), results)

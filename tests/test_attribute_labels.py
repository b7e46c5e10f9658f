"""Labels made of attributes (--labels attributes): one one-hot block per attribute, fakes'
labels drawn from the data or attribute by attribute, and combinations the data never had."""

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.data.classes import UnknownClassError
from cstylegan.data.dataset import DatasetError, ImageDataset
from cstylegan.data.labels import LabelError, LabelSpace
from cstylegan.data.writer import write_dataset_zip
from cstylegan.metrics.compute import compute_metrics, generated_batches
from cstylegan.snapshots.checkpoint import open_for_inference
from cstylegan.training.batches import FakeLabels
from cstylegan.training.grids import grid_labels
from cstylegan.training.loop import train
from tests.conftest import assert_one_line_error, run_cli
from tests.test_metrics import cheap_inception  # noqa: F401 - a fixture: pooled colours for Inception features

# Style sets red, gender sets blue; cool_female (low red, high blue) is left out of the data.
COLOURS = {"warm_male": (230, 30, 30), "warm_female": (230, 30, 230), "cool_male": (30, 30, 30)}
UNSEEN = (30, 30, 230)


def noisy_images(colour, count, rng):
    return [np.clip(np.array(colour) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def attribute_zip(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    images = {name: noisy_images(colour, 16, rng) for name, colour in COLOURS.items()}
    return write_dataset_zip(tmp_path_factory.mktemp("data") / "warm_cool.zip", images)


def test_a_label_is_one_one_hot_block_per_attribute():
    space = LabelSpace.of_attributes({"style": ["warm", "cool"], "gender": ["male", "female"]}, seen=COLOURS)
    assert space.class_names == ("warm_male", "warm_female", "cool_male", "cool_female")
    assert space.c_dim == 4 and space.column_names == ["style=warm", "style=cool", "gender=male", "gender=female"]
    for k, (style, gender) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        expected = np.concatenate([np.eye(2)[style], np.eye(2)[gender]])
        assert np.array_equal(space.vector(k), expected)
    assert space.values_of(3) == {"style": "cool", "gender": "female"}
    assert space.describe(3) == "cool_female (unseen)" and space.describe(0) == "warm_male"
    three = LabelSpace.of_attributes({"a": ["x", "y", "z"], "b": ["p", "q"]}, seen=())
    assert three.c_dim == 5 and np.array_equal(three.vector(5), [0, 0, 1, 0, 1])  # z_q
    classes = LabelSpace.of_classes(["a", "b", "c"])
    assert classes.kind == "class" and np.array_equal(classes.vectors(range(3)), np.eye(3))


def test_any_combination_is_named_or_spelt_out_and_bad_values_list_the_known_ones():
    space = LabelSpace.of_attributes({"style": ["warm", "cool"], "gender": ["male", "female"]}, seen=COLOURS)
    assert space.resolve("cool_female") == [3]
    assert space.resolve("style=cool,gender=female") == [3] == space.resolve("gender=female, style=cool")
    assert space.resolve("all") == [0, 1, 2, 3] and space.resolve("warm_male,2") == [0, 2]
    for spec, words in [("style=hot,gender=male", ["unknown style 'hot'", "style: warm, cool", "gender: male, female"]),
                        ("colour=red", ["unknown attribute 'colour'"]),
                        ("style=cool", ["gives no gender"]),
                        ("purple_female", ["unknown class 'purple_female'", "style: warm, cool"])]:
        with pytest.raises(UnknownClassError) as error:
            space.resolve(spec)
        assert all(word in str(error.value) for word in words), str(error.value)


def test_the_data_set_gives_attribute_labels_and_keeps_its_classes(attribute_zip):
    data = ImageDataset(attribute_zip, labels="attributes", xflip=True)
    assert data.class_names == list(COLOURS) and data.c_dim == 4
    assert data.label_space.attributes == {"style": ("warm", "cool"), "gender": ("male", "female")}
    assert data.label_space.seen == tuple(COLOURS)
    expected = {"warm_male": [1, 0, 1, 0], "warm_female": [1, 0, 0, 1], "cool_male": [0, 1, 1, 0]}
    for i in range(len(data)):
        image, label = data[i]
        assert np.array_equal(label, expected[data.class_names[data.item_classes[i]]])
    assert np.array_equal(data.label_space.vectors_named(list(COLOURS)), [expected[name] for name in COLOURS])
    assert np.array_equal(ImageDataset(attribute_zip).labels, np.eye(3)[ImageDataset(attribute_zip).raw_classes])


def test_data_without_attributes_or_with_clashing_names_is_refused(tmp_path, attribute_zip):
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(attribute_zip) as source, zipfile.ZipFile(bare, "w") as target:
        info = json.loads(source.read("dataset.json"))
        for name in source.namelist():
            if name != "dataset.json":
                target.writestr(name, source.read(name))
        target.writestr("dataset.json", json.dumps({"labels": info["labels"], "class_names": info["class_names"]}))
    with pytest.raises(LabelError, match="no per-image attributes; train with --labels class"):
        ImageDataset(bare, labels="attributes")
    # s in {a_b, a} and g in {c, b_c}: both (a_b, c) and (a, b_c) would be named a_b_c.
    rng = np.random.default_rng(0)
    attributes = {"a_b_c": {"s": "a_b", "g": "c"}, "a_b_b_c": {"s": "a_b", "g": "b_c"}, "a_c": {"s": "a", "g": "c"}}
    clash = write_dataset_zip(tmp_path / "clash.zip", {name: noisy_images((9, 9, 9), 2, rng) for name in attributes},
                              attributes_by_class=attributes)
    with pytest.raises(LabelError, match="both named 'a_b_c'"):
        ImageDataset(clash, labels="attributes")


@pytest.fixture(scope="module")
def four_class_zip(tmp_path_factory) -> Path:
    """The three classes of attribute_zip and cool_female too, 16 images each."""
    rng = np.random.default_rng(0)
    images = {name: noisy_images(colour, 16, rng) for name, colour in {**COLOURS, "cool_female": UNSEEN}.items()}
    return write_dataset_zip(tmp_path_factory.mktemp("data") / "four.zip", images)


def test_a_class_fraction_keeps_a_fixed_share_of_that_class_alone(four_class_zip):
    full = ImageDataset(four_class_zip)
    cut = ImageDataset(four_class_zip, class_fraction={"cool_female": 0.25})
    assert cut.class_counts == {"warm_male": 16, "warm_female": 16, "cool_male": 16, "cool_female": 4}
    assert set(cut.names) < set(full.names)
    assert cut.names == ImageDataset(four_class_zip, class_fraction={"cool_female": 0.25}).names
    other_seed = ImageDataset(four_class_zip, class_fraction={"cool_female": 0.25}, seed=1)
    assert other_seed.names != cut.names and other_seed.class_counts == cut.class_counts
    kept = [full.names.index(name) for name in cut.names]
    assert np.array_equal(cut.labels, full.labels[kept]) and np.array_equal(cut.raw_classes, full.raw_classes[kept])
    assert ImageDataset(four_class_zip, class_fraction={"cool_female": 0.01}).class_counts["cool_female"] == 1


def test_a_class_held_out_leaves_the_data_and_its_combination_is_unseen(four_class_zip, attribute_zip):
    held_out = ImageDataset(four_class_zip, labels="attributes", class_fraction={"cool_female": 0})
    without = ImageDataset(attribute_zip, labels="attributes")
    assert held_out.class_names == list(COLOURS) and held_out.class_counts == without.class_counts
    assert held_out.label_space == without.label_space
    assert held_out.label_space.describe(3) == "cool_female (unseen)"
    assert np.array_equal(held_out.labels, without.labels)
    with pytest.raises(DatasetError, match="--class-fraction purple_male: no such class.*its classes: warm_male"):
        ImageDataset(four_class_zip, class_fraction={"purple_male": 0.5})
    with pytest.raises(DatasetError, match="cool_male=0 leaves no image with one of its attribute values"):
        ImageDataset(attribute_zip, labels="attributes", class_fraction={"cool_male": 0})  # cool's only class
    with pytest.raises(DatasetError, match="leaves no images"):
        ImageDataset(four_class_zip, labels="attributes", class_fraction={name: 0 for name in held_out.class_names
                                                                          + ["cool_female"]})


def test_an_attribute_run_without_a_class_records_it_as_unseen(four_class_zip, tmp_path):
    config = TrainConfig(data=str(four_class_zip), outdir=str(tmp_path), cfg="small", cond=True, labels="attributes",
                         class_fraction={"cool_female": 0}, kimg=0.016, batch=8, cbase=256, cmax=16, workers=0,
                         device="cpu")
    lines = []
    run_dir = train(config, log=lines.append)
    opened = open_for_inference(sorted(run_dir.glob("network-snapshot-*.pt"))[-1])
    assert opened.labels.seen == tuple(COLOURS) and opened.labels.describe(3) == "cool_female (unseen)"
    assert opened.class_names == [*COLOURS, "cool_female"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["class_fraction"] == {"cool_female": 0}
    assert any("not in the data: cool_female" in line for line in lines)


def test_class_fraction_flags_are_checked_before_anything_runs(four_class_zip, tmp_path):
    for flags, words in [(["--class-fraction", "cool_female=0"], ["cool_female=0 holds the class out",
                                                                   "--labels attributes"]),
                         (["--class-fraction", "cool_female=2"], ["cool_female=2.0", "from 0", "to 1"]),
                         (["--class-fraction", "cool_female"], ["'cool_female' is not CLASS=SHARE"]),
                         (["--class-fraction", "cool=0.5"], ["--class-fraction cool: no such class", "cool_female"])]:
        result = run_cli("train.py", "--data", four_class_zip, "--cond", "--cfg", "small", *flags, "--outdir",
                         tmp_path, "--device", "cpu", "--dry-run")
        assert_one_line_error(result, *words)
    assert not list(tmp_path.iterdir()), "no run folder for a refused run"


def test_fake_labels_come_from_the_data_or_attribute_by_attribute(attribute_zip):
    data = ImageDataset(attribute_zip, labels="attributes")
    from_data = FakeLabels(data, "cpu", seed=0).sample(3000)
    uniform = FakeLabels(data, "cpu", seed=0, mix="uniform").sample(3000)
    unseen = torch.tensor([0, 1, 0, 1.0])
    assert not (from_data == unseen).all(dim=1).any(), "the data's own mix never asks for an absent combination"
    assert ((uniform == unseen).all(dim=1).float().mean() - 0.25).abs() < 0.03
    assert (uniform.sum(dim=1) == 2).all() and ((uniform[:, :2].sum(1) == 1) & (uniform[:, 2:].sum(1) == 1)).all()
    assert (uniform[:, 1].mean() - 0.5).abs() < 0.03 and (uniform[:, 3].mean() - 0.5).abs() < 0.03


def test_metrics_give_each_class_its_own_label_vector():
    seen = []

    def generate(z, c):
        seen.append(c.clone())
        return torch.zeros([len(z), 3, 4, 4], dtype=torch.uint8)

    vectors = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0.0]])
    list(generated_batches(generate, 8, vectors, np.array([2, 0, 1, 2]), range(4), seed=0, batch=3, device="cpu"))
    assert torch.equal(torch.cat(seen), vectors[[2, 0, 1, 2]])


def test_the_fakes_grid_has_a_row_for_every_combination_the_unseen_marked(attribute_zip):
    data = ImageDataset(attribute_zip, labels="attributes")
    c, rows = grid_labels(data.label_space, 2, "cpu")
    assert rows == ["warm_male", "warm_female", "cool_male", "cool_female (unseen)"]
    assert torch.equal(c[6:], torch.tensor([[0, 1, 0, 1.0]] * 2))


@pytest.fixture(scope="module")
def attribute_run(attribute_zip, tmp_path_factory) -> Path:
    """--labels attributes, fakes' labels from the data: cool_female is never trained, only asked for.
    (On this toy data that generalises better than --label-mix uniform: at 4 kimg the unseen pair's
    mean colour was (97, 50, 145) against (156, 96, 153) with uniform; the target is (30, 30, 230).)"""
    config = TrainConfig(data=str(attribute_zip), outdir=str(tmp_path_factory.mktemp("runs")), cfg="small", cond=True,
                         labels="attributes", kimg=2, batch=16, cbase=1024, cmax=64, tick=0.5, snap=8, workers=0,
                         device="cpu", mirror=True)
    run_dir = train(config, log=lambda line: None)
    return sorted(run_dir.glob("network-snapshot-*.pt"))[-1]


def mean_colour(G, c) -> torch.Tensor:
    z = torch.randn([64, G.z_dim], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (G(z, c.expand(64, -1), noise_mode="const") * 127.5 + 128).clamp(0, 255).mean(dim=[0, 2, 3])


@pytest.mark.slow
def test_an_attribute_model_learns_each_attribute_and_draws_the_unseen_pair(attribute_run):
    opened = open_for_inference(attribute_run)
    assert opened.labels.attributes == {"style": ("warm", "cool"), "gender": ("male", "female")}
    assert opened.class_names == ["warm_male", "warm_female", "cool_male", "cool_female"]
    targets = torch.tensor([*COLOURS.values(), UNSEEN], dtype=torch.float32)
    for k, target in enumerate(targets):
        colour = mean_colour(opened.G, torch.from_numpy(opened.labels.vector(k)))
        distances = (targets - colour).norm(dim=1)
        assert distances.argmin() == k, f"{opened.class_names[k]}: mean colour {colour.tolist()}"
    unseen = mean_colour(opened.G, torch.from_numpy(opened.labels.vector(3)))
    assert unseen[0] < 130 < unseen[2], f"cool (low red) and female (high blue): {unseen.tolist()}"


@pytest.mark.slow
def test_generate_draws_any_combination_with_its_own_truncation_centre(attribute_run, tmp_path):
    result = run_cli("generate.py", "--network", attribute_run, "--class", "style=cool,gender=female",
                     "--seeds", "0-3", "--trunc", "0.5", "--outdir", tmp_path / "one")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "one" / "cool_female").glob("seed*.png"))) == 4
    result = run_cli("generate.py", "--network", attribute_run, "--class", "all", "--seeds", "0",
                     "--outdir", tmp_path / "all")
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(["warm_male", "warm_female", "cool_male",
                                                                          "cool_female"])
    assert_one_line_error(run_cli("generate.py", "--network", attribute_run, "--class", "style=hot,gender=male",
                                  "--outdir", tmp_path / "bad"), "unknown style 'hot'", "style: warm, cool")


@pytest.mark.slow
def test_class_and_attribute_snapshots_do_not_resume_into_each_other(attribute_run, attribute_zip, tmp_path):
    result = run_cli("train.py", "--data", attribute_zip, "--cond", "--cfg", "small", "--resume", attribute_run,
                     "--kimg", "1", "--outdir", tmp_path, "--workers", "0", "--device", "cpu")
    assert_one_line_error(result, "--labels attributes", "this run uses --labels class")


def test_label_flags_are_checked_before_anything_runs(attribute_zip, tmp_path):
    for flags, words in [(["--label-mix", "uniform", "--cond"], ["--label-mix uniform", "--labels attributes"]),
                         (["--labels", "attributes"], ["add --cond"])]:
        result = run_cli("train.py", "--data", attribute_zip, "--cfg", "small", *flags, "--outdir", tmp_path,
                         "--device", "cpu")
        assert_one_line_error(result, *words)


def colour_generator(gender_matters: bool):
    """(z, c) -> uint8 images of one colour: the style block sets red, the gender block blue
    (or, when gender does not matter, every image is male-blue)."""
    def generate(z, c):
        red = 230 * c[:, 0] + 30 * c[:, 1]
        blue = 30 * c[:, 2] + 230 * c[:, 3] if gender_matters else torch.full_like(red, 30)
        colour = torch.stack([red, torch.full_like(red, 30), blue], dim=1)
        noise = torch.from_numpy(np.random.default_rng(len(z)).normal(0, 8, (len(z), 3, 16, 16)))
        return (colour[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)
    return generate


def test_class_acc_judges_each_attribute_of_seen_and_unseen_pairs(attribute_zip, tmp_path, cheap_inception):
    data = ImageDataset(attribute_zip, labels="attributes")
    common = dict(num_gen=8, num_gen_per_class=6, z_dim=4, batch=8, cache_dir=tmp_path, progress=False,
                  label_space=data.label_space)
    right = compute_metrics(colour_generator(True), data, "class_acc", **common)
    assert right["class_acc_mean"] == 1.0
    assert right["attr_acc_real_heldout/style"] == 1.0 == right["attr_acc_real_heldout/gender"]
    assert right["attr_acc/style/cool_female"] == 1.0 == right["attr_acc/gender/cool_female"]
    assert right["attr_acc_unseen_mean/gender"] == 1.0 == right["attr_acc_mean/gender"]
    no_gender = compute_metrics(colour_generator(False), data, "class_acc", **common)
    assert no_gender["attr_acc_mean/style"] == 1.0 == no_gender["attr_acc_unseen_mean/style"]
    assert no_gender["attr_acc/gender/warm_female"] == 0.0 == no_gender["attr_acc_unseen_mean/gender"]
    assert no_gender["attr_acc_mean/gender"] == pytest.approx(2 / 3)  # warm_male and cool_male right, warm_female not


def test_class_acc_of_a_class_model_says_which_attribute_its_fakes_get_wrong(attribute_zip, tmp_path,
                                                                           cheap_inception):
    data = ImageDataset(attribute_zip)  # class labels: warm_male, warm_female, cool_male

    def female_drawn_male(z, c):
        colours = torch.tensor([COLOURS["warm_male"], COLOURS["warm_male"], COLOURS["cool_male"]], dtype=torch.float32)
        colour = c @ colours
        noise = torch.from_numpy(np.random.default_rng(len(z)).normal(0, 8, (len(z), 3, 16, 16)))
        return (colour[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)

    results = compute_metrics(female_drawn_male, data, "class_acc", num_gen=8, num_gen_per_class=6, z_dim=4,
                              batch=8, cache_dir=tmp_path, progress=False)
    assert results["class_acc/warm_female"] == 0.0 and results["class_acc_mean"] == pytest.approx(2 / 3)
    assert results["attr_acc/style/warm_female"] == 1.0 == results["attr_acc_mean/style"]
    assert results["attr_acc/gender/warm_female"] == 0.0 and results["attr_acc_mean/gender"] == pytest.approx(2 / 3)
    assert not any(key.startswith("attr_acc_unseen") for key in results)  # a class model has no unseen pairs


@pytest.mark.slow
def test_the_page_draws_every_combination_and_marks_the_unseen(attribute_run, tmp_path):
    from tests.test_app import free_port, get, start_app

    port = free_port()
    process = start_app(attribute_run, port, tmp_path, "--device", "cpu", "--project-steps", "3")
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                status, _, body = get(f"{url}/api/info")
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
                time.sleep(0.3)
        info = json.loads(body)
        assert [(c["name"], c["seen"]) for c in info["classes"]] == [
            ("warm_male", True), ("warm_female", True), ("cool_male", True), ("cool_female", False)]
        status, _, body = get(f"{url}/api/image?class=cool_female&seed=1&psi=0.7")
        assert status == 200
        red, _, blue = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).mean(axis=(0, 1))
        assert red < 130 < blue, (red, blue)
        assert get(f"{url}/api/every-class?seed=3&psi=0.7")[0] == 200
        photo = io.BytesIO()
        Image.new("RGB", (20, 20), UNSEEN).save(photo, "PNG")
        status, _, body = get(f"{url}/api/project?class=cool_female&swap_layer=2", photo.getvalue())
        assert status == 200, body[:300]
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_runner_measures_an_attribute_model_and_draws_its_unseen_pair(attribute_zip, tmp_path):
    config = {"data": str(attribute_zip), "make_data": "(made by the test)", "device": "cpu",
              "train": {"cfg": "small", "cbase": 256, "cmax": 16, "batch": 8, "tick": 0.5, "workers": 0},
              "num_gen": 8, "num_gen_per_class": 6, "curve_num_gen_per_class": 4, "sample_seeds": "0-2",
              "swap_layer": 2,
              "conditional": [{"name": "cond_attr", "kimg": 1, "snap_kimg": 1, "train": {"labels": "attributes"}}]}
    path = tmp_path / "attr.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("experiments/run.py", path, "--workdir", tmp_path / "work", "--results", tmp_path / "results")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results" / "methods" / "cond_attr.json").read_text())
    assert set(record["row"]) >= {f"fid_{name}" for name in COLOURS}
    final = record["final"]
    assert {"attr_acc/style/cool_female", "attr_acc_unseen_mean/gender", "attr_acc_mean/style"} <= set(final)
    assert 0 <= final["attr_acc_unseen_mean/gender"] <= 1
    samples = Image.open(tmp_path / "results" / "samples_cond_attr.png")
    assert samples.height >= 4 * 16  # a row for each of the 4 combinations, the unseen one too

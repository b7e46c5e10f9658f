"""Every setting is checked before any work and before the run folder is made: out-of-range
numbers, NaN and infinity, wrong types from YAML, bad paths (issue 25, items 7-10)."""

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, assert_one_line_error, run_cli, run_in_process

TINY = ["--cfg", "small", "--cbase", "256", "--cmax", "16", "--batch", "8", "--kimg", "0.016", "--workers", "0"]


@pytest.mark.parametrize("flags, words", [
    (["--snap", "0"], "--snap 0 is out of range"),
    (["--kimg", "nan"], "--kimg nan is out of range"),
    (["--kimg", "inf"], "--kimg inf is out of range"),
    (["--kimg", "0.000001"], "less than one minibatch"),
    (["--glr", "-1"], "--glr -1.0 is out of range"),
    (["--cbase", "0"], "--cbase 0 is out of range"),
    (["--map-depth", "0"], "--map-depth 0 is out of range"),
    (["--ada-kimg", "0"], "--ada-kimg 0.0 is out of range"),
    (["--workers", "-1"], "--workers -1 is out of range"),
    (["--seed", "-1"], "--seed -1 is out of range"),
    (["--seed", str(2**32)], "from 0 to 2^32 - 1"),
    (["--device", "bogus"], "--device 'bogus' is not a device"),
    (["--gamma", "nan"], "--gamma nan is out of range"),
    (["--target", "1.5"], "--target 1.5 is out of range"),
    (["--metrics-num-gen", "1"], "--metrics-num-gen 1 is out of range"),
    (["--cbase", str(2**21)], "at most 1048576"),  # upper bounds: typos that would exhaust memory
    (["--cmax", "51200"], "--cmax 51200 is out of range"),
    (["--batch", "320000"], "at most 65536"),
    (["--workers", "1000"], "0 to 256 data loader processes"),
    (["--map-depth", "800"], "1 to 64 mapping layers"),
])
def test_out_of_range_settings_are_one_line_and_leave_no_run_folder(colour_zip, tmp_path, flags, words):
    result = run_in_process("train.py", ["--data", colour_zip, "--outdir", tmp_path / "runs", *TINY, *flags], REPO)
    assert_one_line_error(result, words)
    assert not (tmp_path / "runs").exists()


def test_outdir_that_cannot_hold_a_run_is_one_line(colour_zip, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    for outdir, words in ((tmp_path / "a_file", "File exists"), ("/proc/cstylegan-test", "cannot make a run folder")):
        result = run_in_process("train.py", ["--data", colour_zip, "--outdir", outdir, *TINY], REPO)
        assert_one_line_error(result, f"--outdir {outdir}", words)


@pytest.mark.parametrize("content, words", [
    (None, "No such file or directory"),
    ("key: [unclosed", "is not YAML"),
    ("- a\n- list\n", "holds a list, not settings"),
    ("data: x.zip\nkimg: lots\n", "--kimg takes a number"),
    ("data: x.zip\ncond: maybe\n", "--cond is true or false, not 'maybe'"),
    ("data: 5\n", "--data takes text, not 5"),
    ("data: x.zip\nmetrics: fid\n", "--metrics takes a list"),
    ("data: x.zip\nbatch: 8.5\n", "--batch 8.5 is not a whole number"),
    ("data: x.zip\nworkers: 1.5\n", "--workers 1.5 is not a whole number"),
    ("data: x.zip\nmap_depth: 2.5\n", "--map-depth 2.5 is not a whole number"),
    ("data: x.zip\nz_dim: 100000\n", "--z-dim 100000 is out of range; give 1 to 8192"),
])
def test_bad_config_files_are_one_line(tmp_path, content, words):
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content)
    result = run_in_process("train.py", ["--config", path, "--outdir", tmp_path / "runs"], REPO)
    assert_one_line_error(result, words)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("config, words", [
    (["a", "list"], "must be a mapping of keys to values"),
    ({"data": "x.zip", "make_data": "", "train": {}, "num_gen": 8, "seed": "zero", "conditional": [{"name": "c", "kimg": 4}]},
     "seed must be int"),
    ({"data": "x.zip", "make_data": "", "train": {"glr": -1}, "num_gen": 8, "conditional": [{"name": "c", "kimg": 4}]},
     "train: --glr -1 is out of range"),
])
def test_bad_experiment_configs_are_one_line(tmp_path, config, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert_one_line_error(run_cli("experiments/run.py", path, "--plan"), words)


@pytest.mark.slow  # the shared trained run
def test_generate_refuses_nan_and_huge_seeds(snapshot_path, tmp_path):
    base = ["generate.py", "--network", snapshot_path, "--class", "0", "--outdir", tmp_path / "out", "--device", "cpu"]
    assert_one_line_error(run_cli(*base, "--trunc", "nan"), "--trunc", "not a finite number")
    assert_one_line_error(run_cli(*base, "--seeds", str(2**32)), "seeds go up to 4294967295")
    assert_one_line_error(run_cli(*base, "--seeds", "0-2000000"), "more than 1,000,000 images")
    w = tmp_path / "nan.npz"
    np.savez(w, w=np.full((1, 6, 512), np.nan, np.float32))  # the shape of the trained network's ws
    G_ws = run_cli("generate.py", "--network", snapshot_path, "--projected-w", w, "--outdir", tmp_path / "p")
    assert_one_line_error(G_ws, "NaN or infinite")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.png"))


@pytest.mark.slow
def test_metrics_refuse_data_of_another_resolution(snapshot_path, tmp_path):
    from cstylegan.data.writer import write_dataset_zip

    other = write_dataset_zip(tmp_path / "big.zip", {f"c{i}_x": [np.zeros((32, 32, 3), np.uint8)] * 2 for i in range(4)})
    result = run_cli("-m", "cstylegan.metrics", "--network", snapshot_path, "--data", other, "--cache-dir", tmp_path)
    assert_one_line_error(result, "draws 16 px images but big.zip holds 32 px ones")


@pytest.mark.parametrize("w, words", [
    (np.full([1, 4, 4], "x"), "holds <U1 values, not real numbers"),
    (np.array([[None]], dtype=object), "holds Python objects, not numbers, so it was not loaded"),
])
def test_a_projected_w_of_a_wrong_dtype_is_one_line(tmp_path, w, words):
    from tests.test_class_names import snapshot_with_classes

    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    np.savez(tmp_path / "w.npz", w=w)
    result = run_cli("generate.py", "--network", network, "--projected-w", tmp_path / "w.npz", "--outdir",
                     tmp_path / "out")
    assert_one_line_error(result, f"--projected-w {tmp_path / 'w.npz'}", words)
    assert not (tmp_path / "out").exists()


def test_nan_and_infinity_are_refused_by_every_float_flag(tmp_path):
    """click's FloatRange lets NaN through (every comparison with it is false); FiniteFloat does not."""
    from tests.test_class_names import snapshot_with_classes

    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    (tmp_path / "photo.png").write_bytes(b"")
    for args in (["generate.py", "--network", network, "--class", "a", "--video", "--fps", "{}", "--outdir",
                  tmp_path / "out"],
                 ["experiments/run.py", REPO / "experiments/configs/emoji32_cpu.yaml", "--max-hours", "{}"],
                 ["datasets/extract_faces.py", tmp_path / "photo.png", "--out", tmp_path / "f", "--margin", "{}"],
                 ["-m", "cstylegan.snapshots.blend", "--lower", network, "--higher", network, "--split-res", "4",
                  "--out", tmp_path / "b.pt", "--blend-width", "{}"]):
        for value in ("nan", "inf"):
            result = run_cli(*[str(arg).replace("{}", value) for arg in args])
            assert_one_line_error(result, f"'{value}' is not a finite number")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network-snapshot-000000.pt", "photo.png"]


def test_more_cpu_processes_than_cores_are_refused_before_any_start(colour_zip, tmp_path):
    import os

    import torch

    if torch.cuda.is_available():
        pytest.skip("with a GPU, --gpus counts GPUs (test_distributed.py)")
    cores = os.cpu_count()
    result = run_in_process("train.py", ["--data", colour_zip, "--outdir", tmp_path / "runs", *TINY, "--gpus",
                                         cores + 1, "--device", "cpu"], REPO)
    assert_one_line_error(result, f"--gpus {cores + 1} starts {cores + 1} CPU processes", f"give --gpus {cores}")
    assert not (tmp_path / "runs").exists()


def test_metrics_seeds_stay_below_2_to_the_32(tmp_path):
    """Fake i uses seed SEED+i: SEED + --num-gen - 1 must be a seed numpy takes."""
    from tests.test_class_names import snapshot_with_classes

    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    base = ["-m", "cstylegan.metrics", "--network", network, "--data", tmp_path / "d.zip", "--num-gen", "100"]
    assert_one_line_error(run_cli(*base, "--seed", str(2**32)), "--seed", "4294967296 is not in the range")
    assert_one_line_error(run_cli(*base, "--seed", str(2**32 - 50)), "seeds up to 4294967345",
                          "give --seed 4294967196 or less")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network-snapshot-000000.pt"]

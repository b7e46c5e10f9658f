"""No command writes over one of its own inputs (issue 25, item 6; the projector's case is in
test_projector.py), and a file's code is never run, nor its loading advised."""

import os

import pytest
from PIL import Image

from tests.conftest import assert_one_line_error, run_cli, run_command
from tests.test_class_names import snapshot_with_classes


def test_emoji_preview_and_metrics_out_never_overwrite_an_input(tmp_path):
    zip_path = tmp_path / "e.zip"
    result = run_cli("datasets/emoji.py", "--out", zip_path, "--resolution", "8", "--preview", zip_path, "--limit", "1")
    assert_one_line_error(result, f"--preview {zip_path} is the same file as --out")
    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    before = network.read_bytes()
    result = run_cli("-m", "cstylegan.metrics", "--network", network, "--data", zip_path, "--out", network)
    assert_one_line_error(result, f"--out {network} is the same file as --network")
    assert network.read_bytes() == before


def test_a_pt_file_with_code_is_refused_without_torchs_unsafe_advice(tmp_path):
    """torch's own error suggests weights_only=False, which would run the file's code."""
    import os

    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"format": "cstylegan-snapshot", "G_ema": Payload()}, tmp_path / "network-snapshot-000000.pt")
    result = run_cli("generate.py", "--network", tmp_path / "network-snapshot-000000.pt", "--outdir", tmp_path / "o")
    assert_one_line_error(result, "holds pickled objects beyond tensors", "so it was not loaded")
    assert "weights_only" not in result.stderr and not (tmp_path / "ran").exists()


def test_plot_stats_never_writes_over_what_it_reads(tmp_path):
    from cstylegan.training.plot_stats import main as plot_main

    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"Progress/kimg": 1}\n')
    (run / "metric-fid.jsonl").write_text("{}\n")
    os.link(run / "stats.jsonl", tmp_path / "linked.png")  # a hard link: another name, the same file
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for out, words in ((run / "stats.jsonl", "is the same file as"), (run / "metric-fid.jsonl", "is the same file as"),
                       (tmp_path / "linked.png", "is the same file as"), (run / "stats.txt", "not a format matplotlib")):
        assert_one_line_error(run_command(plot_main, [run, "--out", out]), f"--out {out}", words)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_augment_preview_never_writes_into_its_data_and_errors_are_exit_2(colour_zip, tmp_path):
    from cstylegan.training.augment_preview import main as preview_main

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    for data, out, words in ((colour_zip, colour_zip, "is the same file as --data"),
                             (folder, folder / "a.png", "inside the data folder"),
                             (folder, folder / "new.png", "inside the data folder"),
                             (colour_zip, tmp_path / "preview", "not an image format"),
                             (tmp_path / "missing.zip", tmp_path / "p.png", "missing.zip")):
        assert_one_line_error(run_command(preview_main, ["--data", data, "--out", out]), words)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "images"]


def test_outputs_under_proc_or_below_a_file_are_one_line_before_any_work(tmp_path):
    """WRITE_ERRORS' ENOENT and ENOTDIR for real (plot_stats writes where it is told), and the
    commands that work for minutes check their output folder first."""
    from cstylegan.training.plot_stats import main as plot_main

    network = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    Image.new("RGB", (8, 8)).save(tmp_path / "target.png")
    (tmp_path / "stats.jsonl").write_text('{"Progress/kimg": 1, "Loss/G/loss": 1.0}\n')
    before = sorted(tmp_path.iterdir())
    for args, words in [
        (["generate.py", "--network", network, "--class", "a", "--outdir", "/proc/x"], "no file can be written there"),
        (["generate.py", "--network", network, "--class", "a", "--outdir", network / "x"], "is a file, not a folder"),
        (["-m", "cstylegan.projection", "--network", network, "--target", tmp_path / "target.png", "--outdir",
          "/proc/x"], "--outdir /proc/x: no file can be written there"),
        (["-m", "cstylegan.metrics", "--network", network, "--data", "d.zip", "--out", "/proc/x/m.jsonl"],
         "--out /proc/x: no file can be written there"),
        (["-m", "cstylegan.metrics", "--network", network, "--data", "d.zip", "--out", tmp_path], "is a folder"),
        (["datasets/emoji.py", "--out", tmp_path / "e.zip", "--preview", tmp_path / "sheet"], "not an image format"),
    ]:
        assert_one_line_error(run_cli(*args), words)
    for out, words in (("/proc/x.png", "No such file or directory; no folder can be made there"),
                       (tmp_path / "stats.jsonl" / "x.png", "Not a directory; part of that path is a file")):
        assert_one_line_error(run_command(plot_main, [tmp_path, "--out", out]), words)
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("G_kwargs"), "has no G_kwargs"),
    (lambda s: s.pop("G_ema"), "has no G_ema"),
    (lambda s: s.update(G_kwargs=[1, 2]), "its G_kwargs is a list, not a dict"),
    (lambda s: s.update(class_names="ab"), "its class_names is a str, not a list"),
    (lambda s: s.update(attributes=["style"]), "its attributes is a list, not a dict"),
    (lambda s: s["G_kwargs"].update(c_dim="2"), "its G_kwargs c_dim is '2', not a whole number"),
    (lambda s: s["G_kwargs"].update(bogus=1), "unexpected keyword argument 'bogus'"),
    (lambda s: s.update(G_ema={}), "do not make a generator (Error(s) in loading state_dict for Generator: Missing"),
    (lambda s: s.update(G_ema={"x": 1}), "its G_ema holds other things than tensors"),
])
def test_a_snapshot_looking_file_with_missing_or_wrong_fields_is_one_line(tmp_path, change, words):
    import torch

    path = snapshot_with_classes(tmp_path / "network-snapshot-000000.pt", ["a", "b"])
    snapshot = torch.load(path, weights_only=True)
    change(snapshot)
    torch.save(snapshot, path)
    result = run_cli("generate.py", "--network", path, "--class", "a", "--seeds", "0", "--outdir", tmp_path / "out")
    assert_one_line_error(result, str(path), words)
    assert not (tmp_path / "out").exists()

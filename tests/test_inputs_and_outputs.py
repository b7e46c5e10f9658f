"""No command writes over one of its own inputs (issue 25, item 6; the projector's case is in
test_projector.py), and a file's code is never run, nor its loading advised."""

from tests.conftest import assert_one_line_error, run_cli
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

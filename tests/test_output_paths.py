"""No command writes over one of its own inputs (issue 25, item 6); the projector's case is
in test_projector.py."""

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

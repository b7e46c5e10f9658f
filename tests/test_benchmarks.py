"""benchmarks/train_speed.py runs as documented and prints one row per configuration."""

import re

from tests.conftest import run_cli


def test_train_speed_prints_a_row_of_figures():
    result = run_cli("benchmarks/train_speed.py", "--res", "16", "--cfg", "small", "--batch", "4", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    [row] = [line.split() for line in result.stdout.splitlines() if line.split()[:2] == ["ours", "16"]]
    assert row[2] == "small" and row[5] == "4"
    train_img_per_s, sec_per_kimg = float(row[8]), float(row[9])
    assert train_img_per_s > 0 and abs(sec_per_kimg - 1000 / train_img_per_s) < 0.01 * sec_per_kimg + 0.1


def test_vs_official_without_their_code_is_one_line(tmp_path):
    result = run_cli("benchmarks/train_speed.py", "--res", "16", "--cfg", "small", "--vs-official", str(tmp_path))
    assert result.returncode != 0
    assert re.search(r"is not a copy of NVlabs/stylegan3 .*clone it there", result.stderr)
    assert "Traceback" not in result.stderr

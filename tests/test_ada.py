"""The ADA rule: p moves by the official step toward the target, never below 0, and rises in a real run."""


import pytest
import torch

from cstylegan.training.progress import read_stats
from cstylegan.config import TrainConfig
from cstylegan.training.ada import AdaptiveP
from cstylegan.training.loop import train


class Pipe:
    def __init__(self):
        self.p = torch.zeros([])


def test_p_moves_by_the_official_step():
    pipe = Pipe()
    ada = AdaptiveP(pipe, target=0.6, batch=32, interval=4, ada_kimg=500)
    for batch_idx in range(1, 9):
        ada.observe(torch.tensor(0.9))  # D overfits: real scores mostly positive
        ada.maybe_adjust(batch_idx)
    assert float(pipe.p) == pytest.approx(2 * 32 * 4 / 500_000)
    for batch_idx in range(9, 21):
        ada.observe(torch.tensor(0.1))  # D no longer overfits
        ada.maybe_adjust(batch_idx)
    assert float(pipe.p) == 0  # clamped at 0, not negative
    assert float(ada.last_rt) == pytest.approx(0.1)


@pytest.mark.slow
def test_p_rises_when_d_overfits_a_tiny_data_set(colour_zip, tmp_path):
    config = TrainConfig(data=str(colour_zip), outdir=str(tmp_path), cfg="small", cond=True, kimg=1.5, batch=16,
                         cbase=1024, cmax=64, tick=0.5, snap=10, workers=0, device="cpu", ada_kimg=2,
                         target=0.4)  # below the ~0.5 E[sign(D(real))] this short run reaches
    run_dir = train(config, log=lambda line: None)
    records = read_stats(run_dir / "stats.jsonl")
    assert all(0 <= r["Progress/augment"] <= 1.5 for r in records)
    assert records[-1]["Progress/augment"] > 0.1, records
    assert max(r["Progress/ada_rt"] for r in records) > 0.4  # what drove p up: D scored reals above the target
    snapshot = torch.load(next(run_dir.glob("network-snapshot-*.pt")), weights_only=True)
    assert snapshot["ada_p"] == pytest.approx(records[-1]["Progress/augment"])

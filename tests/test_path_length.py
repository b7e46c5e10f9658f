"""Path length (cstylegan/metrics/path_length.py): slerp and the crop against their formulas,
the whole recipe on a linear network with a known answer, and the command that runs it."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from cstylegan.metrics.compute import parse_metrics
from cstylegan.metrics.path_length import EPSILON, centre_crop, path_length, slerp
from tests.conftest import run_cli
from tests.test_nvlabs_metrics import snapshot_of  # noqa: F401  (a fixture)


def test_slerp_walks_the_great_circle():
    a, b = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 3.0, 0.0]])  # a right angle apart
    for t in (0.0, 0.25, 0.5, 1.0):
        expected = torch.tensor([[math.cos(t * math.pi / 2), math.sin(t * math.pi / 2), 0.0]])
        assert torch.allclose(slerp(a, b, t), expected, atol=1e-6)


def test_centre_crop_is_nvlabs_window():
    pictures = torch.arange(32 * 32, dtype=torch.float32).reshape(1, 1, 32, 32)
    crop = centre_crop(pictures)
    assert crop.shape == (1, 1, 16, 16) and crop[0, 0, 0, 0] == 12 * 32 + 8 and crop[0, 0, -1, -1] == 27 * 32 + 23


class LinearGenerator(nn.Module):
    """w = z M, picture = w A: every step's picture change is known exactly."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.z_dim, self.c_dim, self.img_resolution = 6, 0, 32
        self.M = torch.randn(6, 5, generator=generator)
        self.A = torch.randn(5, 32 * 32, generator=generator) / 8

    def mapping(self, z, c):
        return (z @ self.M).unsqueeze(1)

    def synthesis(self, ws, noise_mode="const"):
        return (ws[:, 0] @ self.A).reshape(-1, 1, 32, 32)


def squared_pixels(a, b):
    return (a - b).square().flatten(1).sum(dim=1)


def trimmed_mean(values: np.ndarray) -> float:
    """Mean of the values from the 1st percentile (rounded down) to the 99th (rounded up), by sorting."""
    ordered = np.sort(values)
    low, high = ordered[math.floor(0.01 * (len(values) - 1))], ordered[math.ceil(0.99 * (len(values) - 1))]
    return float(values[(values >= low) & (values <= high)].mean())


def test_path_length_of_a_linear_network_is_the_known_step_length():
    G, n = LinearGenerator(), 200
    z0 = np.stack([np.random.RandomState(7 + 2 * i).randn(6) for i in range(n)])
    z1 = np.stack([np.random.RandomState(7 + 2 * i + 1).randn(6) for i in range(n)])
    M, A = G.M.double().numpy(), G.A.double().numpy()
    w_steps = ((z1 - z0) @ M @ A) ** 2  # lerp: the picture moves EPSILON (w1 - w0) A
    # slerp by its classic formula: sin((1-t) angle) / sin(angle) a + sin(t angle) / sin(angle) b, on unit vectors
    a, b = z0 / np.linalg.norm(z0, axis=1, keepdims=True), z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    angle = np.arccos((a * b).sum(axis=1, keepdims=True))
    stepped = (np.sin((1 - EPSILON) * angle) * a + np.sin(EPSILON * angle) * b) / np.sin(angle)
    z_pictures = (stepped - a) @ M @ A
    z_steps = (z_pictures.reshape(n, 32, 32)[:, 12:28, 8:24] ** 2).reshape(n, -1)  # ppl_z crops the centre
    results = path_length(G, ["ppl_w_inception", "ppl_z_inception"], n, torch.zeros([1, 0]),
                          np.zeros(n, dtype=np.int64), seed=7, distance=squared_pixels)
    assert results["ppl_w_inception"] == pytest.approx(trimmed_mean(w_steps.sum(axis=1)), rel=1e-2)
    assert results["ppl_z_inception"] == pytest.approx(trimmed_mean(z_steps.sum(axis=1) / EPSILON**2), rel=2e-2)
    assert trimmed_mean(w_steps.sum(axis=1)) < np.mean(w_steps.sum(axis=1))  # the trim took the largest off


def test_path_length_names_parse():
    assert parse_metrics("ppl_w_inception,ppl2_wend_inception,ppl_zend_inception") == [
        "ppl_w_inception", "ppl2_wend_inception", "ppl_zend_inception"]


@pytest.mark.slow  # the real Inception on 2 x 4 pictures
def test_metrics_cli_measures_the_path_length_of_a_stylegan2_snapshot(snapshot_of, colour_zip, tmp_path):
    path = snapshot_of(colour_zip)
    result = run_cli("-m", "cstylegan.metrics", "--network", path, "--metrics", "ppl_w_inception", "--num-gen", "4",
                     "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in (tmp_path / "metric-ppl_w_inception.jsonl").read_text().splitlines()]
    assert np.isfinite(line["results"]["ppl_w_inception"]) and line["results"]["ppl_w_inception"] > 0

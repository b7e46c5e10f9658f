"""NVlabs' metric names and their FID recipe: fid50k_full & co. with their sample counts, real
images and Inception resize, their result keys and metric-*.jsonl fields, --metrics none."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cstylegan.config import TrainConfig
from cstylegan.data import emoji_set
from cstylegan.data.dataset import ImageDataset
from cstylegan.metrics import compute as compute_module
from cstylegan.metrics.__main__ import main as metrics_main
from cstylegan.metrics.compute import compute_metrics
from cstylegan.metrics.images import dataset_images
from cstylegan.metrics.inception import extract_features, load_inception, torch_nvlabs_resize
from cstylegan.metrics.nvlabs_names import NVLABS_METRICS, NvlabsMetric
from cstylegan.metrics.report import write_metric_jsonl
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import save_snapshot
from tests.conftest import run_command
from tests.test_nvlabs_flags import dry_run
from tests.test_metrics import ColourGenerator, MeanColourNet


def their_resize(images: torch.Tensor) -> torch.Tensor:
    """NVlabs' recipe written independently: an identity affine grid shifted by half an input
    pixel less half an output pixel, sampled bilinearly with the edges repeated."""
    x = images.float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    n, _, height, width = x.shape
    theta = torch.tensor([[1, 0, 1 / width - 1 / 299], [0, 1, 1 / height - 1 / 299]], dtype=torch.float32)
    grid = F.affine_grid(theta[None].repeat(n, 1, 1), [n, 3, 299, 299], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("height, width, channels", [(16, 16, 3), (32, 32, 1), (24, 40, 3), (299, 299, 3),
                                                     (512, 512, 4)])
def test_nvlabs_resize_equals_their_sampling_grid(height, width, channels):
    images = torch.from_numpy(np.random.default_rng(height).integers(0, 256, (2, channels, height, width), np.uint8))
    ours = torch_nvlabs_resize(images)
    assert ours.shape == (2, 3, 299, 299) and ours.dtype == torch.float32
    assert (ours - their_resize(images)).abs().max() < 0.01  # float32 grid coordinates round


def test_nvlabs_resize_samples_at_i_times_size_over_299():
    """A ramp 0, 10, 20, ... along x: output column j is 10 * j * 32 / 299, the last one held past the edge."""
    ramp = torch.arange(32, dtype=torch.uint8).mul(8).expand(1, 3, 8, 32)
    row = torch_nvlabs_resize(ramp)[0, 0, 4]
    position = torch.arange(299, dtype=torch.float64) * 32 / 299
    assert torch.allclose(row.double(), (8 * position).clamp(max=8 * 31), atol=1e-3)


@pytest.fixture(scope="module")
def emoji_images(tmp_path_factory):
    out = tmp_path_factory.mktemp("emoji") / "emoji.zip"
    emoji_set.build(out, 32, ("twemoji", "openmoji"), limit=3)
    images = dataset_images(ImageDataset(out, use_labels=False))
    return np.stack(next(images.batches(range(6), 6)))


@pytest.mark.slow  # the real Inception on 6 emojis
def test_nvlabs_features_agree_with_their_recipe_and_differ_from_clean(emoji_images):
    inception = load_inception()
    with torch.no_grad():
        theirs = inception.layers((their_resize(torch.from_numpy(emoji_images)) - 128) / 128).reshape(6, -1).numpy()
    ours = extract_features(inception, [emoji_images], 6, progress=False, recipe="nvlabs")
    clean = extract_features(inception, [emoji_images], 6, progress=False)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.abs(clean - theirs).max() > 0.1  # the two recipes are not the same features


def test_nvlabs_names_have_their_sample_counts():
    assert NVLABS_METRICS == {
        "fid50k_full": NvlabsMetric("fid", 50000, None), "kid50k_full": NvlabsMetric("kid", 50000, 1000000),
        "pr50k3_full": NvlabsMetric("pr", 50000, 200000), "fid50k": NvlabsMetric("fid", 50000, 50000, True),
        "kid50k": NvlabsMetric("kid", 50000, 50000, True), "eqt50k_int": NvlabsMetric("eqt_int", 50000, None),
        "eqt50k_frac": NvlabsMetric("eqt_frac", 50000, None), "eqr50k": NvlabsMetric("eqr", 50000, None),
        "ppl2_wend_inception": NvlabsMetric("ppl_w_inception", 50000, None),
        "ppl_zend_inception": NvlabsMetric("ppl_z_inception", 50000, None)}


@pytest.fixture
def small_nvlabs_counts(monkeypatch):
    """The NVlabs names at 40 fakes (and fid50k at the first 30 reals), a cheap Inception, and a
    record of every feature extraction: (recipe, images)."""
    counts = {name: NvlabsMetric(spec.metric, 40, 30 if name == "fid50k" else None, spec.mirrored)
              for name, spec in NVLABS_METRICS.items()}
    monkeypatch.setattr(compute_module, "NVLABS_METRICS", counts)
    torch.manual_seed(0)
    monkeypatch.setattr(compute_module, "load_inception", lambda path, device: MeanColourNet())
    extracted = []

    def recording(*args, recipe="clean", **kwargs):
        extracted.append((recipe, args[2]))
        return extract_features(*args, recipe=recipe, **kwargs)

    monkeypatch.setattr(compute_module, "extract_features", recording)
    return extracted


def test_nvlabs_names_use_their_counts_reals_recipe_and_keys(colour_zip, tmp_path, small_nvlabs_counts):
    data = ImageDataset(colour_zip, use_labels=False)
    generate = ColourGenerator()
    results = compute_metrics(generate, data, "fid,fid50k_full,kid50k_full,pr50k3_full,fid50k", num_gen=12,
                              batch=8, cache_dir=tmp_path, z_dim=6, progress=False)
    assert set(results) == {"fid", "fid50k_full", "kid50k_full", "kid50k_full_std", "pr50k3_full_precision",
                            "pr50k3_full_recall", "fid50k"}
    assert all(np.isfinite(v) for v in results.values()) and 0 <= results["pr50k3_full_recall"] <= 1
    assert sum(len(z) for z, _ in generate.calls) == 12 + 4 * 40
    # ours: 12 fakes, 64 reals, clean; each NVlabs name: its 40 fakes by the nvlabs resize;
    # real features once per recipe and real set (64 all, 30 first for fid50k), cached after.
    assert sorted(small_nvlabs_counts) == sorted([("clean", 64), ("clean", 12), ("nvlabs", 64)] + [("nvlabs", 40)] * 4
                                                 + [("nvlabs", 30)])
    assert set(results.seconds) == {"fid", "fid50k_full", "kid50k_full", "pr50k3_full", "fid50k"}


def test_mirror_flips_the_reals_of_the_names_that_follow_the_training_set(colour_zip, tmp_path, small_nvlabs_counts,
                                                                         monkeypatch):
    monkeypatch.setitem(compute_module.NVLABS_METRICS, "fid50k", NvlabsMetric("fid", 40, 200, mirrored=True))
    data = ImageDataset(colour_zip, use_labels=False)
    compute_metrics(ColourGenerator(), data, "fid50k,fid50k_full", num_gen=12, batch=8, cache_dir=tmp_path, z_dim=6,
                    progress=False, mirror=True)
    reals = sorted(count for recipe, count in small_nvlabs_counts if count != 40)
    assert reals == [64, 128]  # fid50k_full: the 64 images; fid50k: them and their 64 flipped copies
    images = dataset_images(data)
    flipped = images.mirrored()
    assert flipped.count == 128 and list(flipped.labels) == list(images.labels) * 2
    [original], [copy] = next(images.batches([5], 1)), next(flipped.batches([64 + 5], 1))
    assert np.array_equal(copy, original[:, :, ::-1]) and flipped.fingerprint != images.fingerprint


def test_metrics_cli_none_computes_nothing(tmp_path):
    code, out, err = run_metrics("--network", tmp_path / "absent.pt", "--metrics", "none")
    assert code == 0 and "--metrics none: nothing to compute" in out and not list(tmp_path.iterdir())


def test_nvlabs_jsonl_fields_and_files(tmp_path):
    results = compute_module.MetricResults({"fid50k_full": 12.5, "kid50k_full": 0.01, "kid50k_full_std": 0.001,
                                            "pr50k3_full_precision": 0.6, "pr50k3_full_recall": 0.3},
                                           seconds={"fid50k_full": 3725.0, "kid50k_full": 45.2, "pr50k3_full": 61})
    written = write_metric_jsonl(tmp_path, results, 200.0, "network-snapshot-000200.pt", num_gpus=2)
    assert sorted(p.name for p in written) == ["metric-fid50k_full.jsonl", "metric-kid50k_full.jsonl",
                                               "metric-pr50k3_full.jsonl"]
    line = json.loads((tmp_path / "metric-kid50k_full.jsonl").read_text())
    assert line["results"] == {"kid50k_full": 0.01, "kid50k_full_std": 0.001} and line["metric"] == "kid50k_full"
    assert line["total_time"] == 45.2 and line["total_time_str"] == "45s" and line["num_gpus"] == 2
    assert line["snapshot_pkl"] == "network-snapshot-000200.pt" and line["timestamp"] > 1.7e9
    assert json.loads((tmp_path / "metric-fid50k_full.jsonl").read_text())["total_time_str"] == "1h 02m"
    assert json.loads((tmp_path / "metric-pr50k3_full.jsonl").read_text())["total_time_str"] == "1m 01s"


@pytest.mark.parametrize("given, expected", [("none", []), ("fid50k_full,kid50k_full", ["fid50k_full", "kid50k_full"]),
                                             ("fid,pr50k3_full", ["fid", "pr50k3_full"])])
def test_train_takes_nvlabs_metric_names(colour_zip, tmp_path, given, expected):
    settings, _ = dry_run(colour_zip, tmp_path, "--metrics", given)
    assert settings["metrics"] == expected


def run_metrics(*args) -> tuple:
    result = run_command(metrics_main, args)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def snapshot_of(colour_zip, tmp_path):
    """A conditional 16 px snapshot (untrained) whose config names `data`."""
    def make(data):
        config = TrainConfig(data=str(data), cfg="small", cond=True, cbase=256, cmax=16).resolve(16)
        G_kwargs, D_kwargs = config.network_kwargs(c_dim=4)
        G, D = Generator(**G_kwargs), Discriminator(**D_kwargs)
        path = tmp_path / "network-snapshot-000000.pt"
        save_snapshot(path, dict(G=G.state_dict(), G_ema=G.state_dict(), D=D.state_dict(), G_kwargs=G_kwargs,
                                 D_kwargs=D_kwargs, class_names=list(ImageDataset(colour_zip).class_names),
                                 cur_nimg=0, config=config.to_dict()))
        return path
    return make


def test_metrics_cli_takes_the_data_from_the_snapshot(snapshot_of, colour_zip, tmp_path, small_nvlabs_counts):
    path = snapshot_of(colour_zip)
    code, out, err = run_metrics("--network", path, "--metrics", "fid50k_full", "--cache-dir", tmp_path / "cache",
                                 "--quiet", "--device", "cpu")
    assert code == 0, err
    assert f"Data: {colour_zip} (from the snapshot's config)" in out and "fid50k_full" in out
    [line] = [json.loads(text) for text in (tmp_path / "metric-fid50k_full.jsonl").read_text().splitlines()]
    assert set(line["results"]) == {"fid50k_full"} and line["num_gpus"] == 1 and line["total_time"] > 0


def test_metrics_cli_without_the_snapshots_data_is_one_line(snapshot_of, tmp_path):
    code, _, err = run_metrics("--network", snapshot_of(tmp_path / "gone.zip"), "--metrics", "fid")
    assert code == 2 and err.strip().startswith("Error: ") and "gone.zip, which is not here; give --data" in err
    assert len(err.strip().splitlines()) == 1

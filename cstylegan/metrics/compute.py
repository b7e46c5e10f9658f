"""The entry point: generator + real images -> {metric key: value}.

Takes a generator (our Generator, or any callable z, c -> uint8 NCHW images) and the real
images, nothing else from training. Fakes follow the official tools: G(z, c,
truncation_psi=1, noise_mode='const'), converted with x * 127.5 + 128 clamped to uint8. Image
i of every generated set uses z = RandomState(seed + i).randn(z_dim), as generate.py's seed
seed + i does. For `fid`, `kid` and `pr` the labels are drawn from the data's own label
distribution (as NVlabs does); for the per-class metrics each class gets its own set of
exactly `num_gen_per_class` images.
"""

import dataclasses
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

from cstylegan.generation.drawer import Drawer
from cstylegan.generation.seeds import z_from_seeds
from cstylegan.metrics.cache import StatsCache, cache_key
from cstylegan.metrics.class_consistency import class_agreement, fit_probe
from cstylegan.metrics.equivariance import EQUIVARIANCE_METRICS, equivariance
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.path_length import PATH_LENGTH_METRICS, path_length
from cstylegan.metrics.fid import feature_stats, frechet_distance
from cstylegan.metrics.images import ImageSet, dataset_images, folder_images
from cstylegan.metrics.inception import extract_features, load_inception
from cstylegan.metrics.kid import kid_with_spread
from cstylegan.metrics.nvlabs_names import NO_METRICS, NVLABS_METRICS, NVLABS_RECIPE, with_nvlabs_keys
from cstylegan.metrics.precision_recall import precision_recall
from cstylegan.runtime.distributed import Processes

MIN_REALS_PER_CLASS = 2  # fewer real images of a class give no covariance


class Reals:
    """Features and statistics of the real images, each computed at most once, kept in the cache.

    With several processes each extracts its shard of the features; every process then holds
    them all, and only the main one writes the cache. Whether to recompute is decided by all
    together (a cache missing on one node means all take part), so their collectives match.
    """

    def __init__(self, images: ImageSet, extract, cache: StatsCache, batch: int, processes: Processes = Processes(),
                 device="cpu", fake_classes=None, recipe: str = "clean"):
        self.images = images
        self.recipe = recipe  # the Inception resize `extract` uses (inception.py)
        self.fake_classes = fake_classes  # what the per-class fakes are made for (FakeClasses)
        self._extract = extract
        self._cache = cache
        self._batch = batch
        self._processes = processes
        self._device = device
        self._features = None

    def _key(self, class_index, what: str) -> str:
        return cache_key(self.images.fingerprint, self.images.resolution, class_index, self.recipe, what)

    def _load(self, key: str):
        stored = self._cache.load(key)
        return None if self._processes.any(stored is None, self._device) else stored

    def _save(self, key: str, **arrays) -> None:
        if self._processes.main:
            self._cache.save(key, **arrays)

    def features(self) -> np.ndarray:
        """Features of every real image, in the image set's order."""
        if self._features is None:
            stored = self._load(self._key(None, "features"))
            if stored is None:
                count = self.images.count
                shard = self._processes.shard(count)
                local = self._extract(self.images.batches(shard, self._batch), len(shard), desc=f"reals {self.images.name}")
                stored = {"features": self._processes.gather_rows(local, count, self._device)}
                self._save(self._key(None, "features"), **stored)
            self._features = stored["features"]
        return self._features

    def stats(self, class_index=None) -> tuple:
        """(mean, covariance) of all real images, or of one class's."""
        key = self._key(class_index, "stats")
        stored = self._load(key)
        if stored is None:
            features = self.features()
            if class_index is not None:
                features = features[self.images.labels == class_index]
            mu, sigma = feature_stats(features)
            stored = {"mu": mu, "sigma": sigma}
            self._save(key, **stored)
        return stored["mu"], stored["sigma"]

    def classes(self) -> list:
        """Indices of the classes with enough real images to have statistics."""
        counts = np.bincount(self.images.labels, minlength=len(self.images.class_names))
        return [k for k, count in enumerate(counts) if count >= MIN_REALS_PER_CLASS]


class Fakes:
    """Features of generated images: `features()` for the mixed set, `features(k)` for class k; each made once."""

    def __init__(self, make):
        self._make = make
        self._made = {}

    def features(self, class_index=None) -> np.ndarray:
        if class_index not in self._made:
            self._made[class_index] = self._make(class_index)
        return self._made[class_index]


def _fid(reals: Reals, fakes: Fakes) -> dict:
    return {"fid": frechet_distance(*reals.stats(), *feature_stats(fakes.features()))}


def _kid(reals: Reals, fakes: Fakes) -> dict:
    kid, spread = kid_with_spread(reals.features(), fakes.features())
    return {"kid": kid, "kid_std": spread}


def _kid_per_class(reals: Reals, fakes: Fakes) -> dict:
    """KID of each class's fakes against that class's reals; unbiased, so fair at a few hundred images."""
    names, features = reals.images.class_names, reals.features()
    results, kids = {}, []
    for k in reals.classes():
        kid, spread = kid_with_spread(features[reals.images.labels == k], fakes.features(k))
        results.update({f"kid_per_class/{names[k]}": kid, f"kid_per_class_std/{names[k]}": spread})
        kids.append(kid)
    return {**results, "kid_per_class_mean": float(np.mean(kids))}


def _pr(reals: Reals, fakes: Fakes) -> dict:
    precision, recall = precision_recall(reals.features(), fakes.features())
    return {"precision": precision, "recall": recall}


def _fid_per_class(reals: Reals, fakes: Fakes) -> dict:
    names = reals.images.class_names
    results = {
        f"fid_per_class/{names[k]}": frechet_distance(*reals.stats(k), *feature_stats(fakes.features(k)))
        for k in reals.classes()
    }
    return {**results, "fid_per_class_mean": float(np.mean(list(results.values())))}


def _class_acc(reals: Reals, fakes: Fakes) -> dict:
    names = reals.images.class_names
    probe, heldout_accuracy = fit_probe(reals.features(), reals.images.labels, len(names))
    results = {f"class_acc/{names[k]}": class_agreement(probe, fakes.features(k), k) for k in reals.classes()}
    results.update(class_acc_mean=float(np.mean(list(results.values()))), class_acc_real_heldout=heldout_accuracy)
    if reals.fake_classes is not None and reals.fake_classes.attributes:
        results.update(_attribute_acc(reals, fakes))
    return results


def _attribute_acc(reals: Reals, fakes: Fakes) -> dict:
    """For a network trained on attributes, or on the classes of data with attributes
    (with_data_attributes): per attribute, a probe trained on the real images'
    values of it judges the fakes of every combination, seen and unseen (does an unseen
    openmoji_female look OpenMoji? does it look female?): attr_acc/<attribute>/<class>,
    attr_acc_mean/<attribute> over the data's classes, attr_acc_unseen_mean/<attribute>
    over the others, attr_acc_real_heldout/<attribute>."""
    made, results = reals.fake_classes, {}
    for attribute, values in made.attributes.items():
        real_values = np.array([values.index(made.values[k][attribute]) for k in reals.images.labels])
        if len(np.unique(real_values)) < 2:
            continue  # one value in the data: nothing to tell apart
        probe, heldout_accuracy = fit_probe(reals.features(), real_values, len(values))
        seen, unseen = [], []
        for k, name in enumerate(made.names):
            agreement = class_agreement(probe, fakes.features(k), values.index(made.values[k][attribute]))
            results[f"attr_acc/{attribute}/{name}"] = agreement
            (seen if k < made.num_data_classes else unseen).append(agreement)
        results[f"attr_acc_mean/{attribute}"] = float(np.mean(seen))
        if unseen:
            results[f"attr_acc_unseen_mean/{attribute}"] = float(np.mean(unseen))
        results[f"attr_acc_real_heldout/{attribute}"] = heldout_accuracy
    return results


METRICS = {"fid": _fid, "kid": _kid, "fid_per_class": _fid_per_class, "kid_per_class": _kid_per_class, "pr": _pr,
           "class_acc": _class_acc}
PER_CLASS_METRICS = ("fid_per_class", "kid_per_class", "class_acc")
GENERATOR_METRICS = (*EQUIVARIANCE_METRICS, *PATH_LENGTH_METRICS)  # of the network alone: no real images
FOLDER_METRICS = tuple(m for m in METRICS if m not in PER_CLASS_METRICS)


def parse_metrics(metrics, folders: bool = False) -> list:
    """A comma string or list of metric names (ours, NVlabs' or `none`) -> list; an unknown name
    is an error that lists the known ones."""
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    if names == [NO_METRICS]:
        return []
    known = (*METRICS, *GENERATOR_METRICS)
    unknown = [m for m in names if m not in known and m not in NVLABS_METRICS]
    if unknown or not names:
        raise MetricError(f"unknown metric {', '.join(unknown) or '(none)'}; known metrics: {', '.join(known)}, "
                          f"and NVlabs' {', '.join(NVLABS_METRICS)} or {NO_METRICS}")
    per_class = [m for m in names if m in PER_CLASS_METRICS or m in GENERATOR_METRICS]
    if folders and per_class:
        raise MetricError(
            f"{', '.join(per_class)} needs a network and labelled data; two folders compare with {', '.join(FOLDER_METRICS)}"
        )
    nvlabs = [m for m in names if m in NVLABS_METRICS]
    if folders and nvlabs:
        raise MetricError(f"{', '.join(nvlabs)} generates {NVLABS_METRICS[nvlabs[0]].num_gen:,} fakes from a network; "
                          f"two folders compare with {', '.join(FOLDER_METRICS)} and --features {NVLABS_RECIPE}")
    return list(dict.fromkeys(names))


def equivariance_names(names) -> list:
    """The names among `names` that measure equivariance, ours or NVlabs' (they need StyleGAN3)."""
    return [m for m in names if m in EQUIVARIANCE_METRICS
            or (m in NVLABS_METRICS and NVLABS_METRICS[m].metric in EQUIVARIANCE_METRICS)]


class MetricResults(dict):
    """{key: value}, and in `.seconds` how long each metric took (its share of the features included)."""

    def __init__(self, values=(), seconds=None):
        super().__init__(values)
        self.seconds = dict(seconds or {})


def _evaluate(metrics: list, reals: Reals, fakes: Fakes) -> MetricResults:
    results = MetricResults()
    for name in metrics:
        start = time.time()
        results.update(METRICS[name](reals, fakes))
        results.seconds[name] = time.time() - start
    return results


def image_function(generator, z_dim=None, truncation_psi: float = 1, label_space=None) -> tuple:
    """(fn(z, c) -> uint8 NCHW, z_dim, c_dim or None): a Generator module is run the official
    way, at psi 1 unless `truncation_psi` says otherwise, each fake then truncated toward its
    own label's centre as generate.py --trunc draws it."""
    if isinstance(generator, torch.nn.Module):
        drawer = None if truncation_psi == 1 else Drawer(generator, next(generator.parameters()).device,
                                                         label_space=label_space)

        def generate(z, c):
            if drawer is None:
                images = generator(z, c, truncation_psi=1, noise_mode="const")
            else:
                images = generator.synthesis(drawer.labelled_ws(z, c, truncation_psi), noise_mode="const")
            return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)

        return generate, generator.z_dim, generator.c_dim
    if truncation_psi != 1:
        raise MetricError("truncation needs the generator network itself, not a function that draws images")
    if z_dim is None:
        raise MetricError("a generator callable needs z_dim (the length of its latent)")
    return generator, z_dim, None


def generated_batches(generate, z_dim: int, class_vectors, classes, indices: range, seed: int, batch: int, device):
    """uint8 NCHW batches of the fakes numbered `indices`; image i has seed `seed + i` and the
    label of class classes[i], row classes[i] of class_vectors [classes, c_dim]."""
    for start in range(indices.start, indices.stop, batch):
        numbers = range(start, min(indices.stop, start + batch))
        z = z_from_seeds([seed + i for i in numbers], z_dim, device)
        if class_vectors.shape[1]:
            c = class_vectors[torch.as_tensor(classes[numbers.start : numbers.stop])].to(device)
        else:
            c = torch.zeros([len(numbers), 0], device=device)
        with torch.no_grad():
            yield generate(z, c)


def mixed_labels(labels: np.ndarray, num_gen: int, seed: int) -> np.ndarray:
    """The class of each of the `num_gen` mixed fakes: the labels of data items drawn at random."""
    return labels[np.random.default_rng(seed).integers(len(labels), size=num_gen)]


@dataclass
class FakeClasses:
    """The classes fakes are made for: the data's (index k = the data's class k), then, for a
    network trained on attributes, the combinations the data lacks; with each one's label."""
    names: list
    vectors: torch.Tensor  # [len(names), c_dim]
    attributes: dict  # {} when neither the labels nor the data have attributes; else {attribute: values} ...
    values: list  # ... and each class's {attribute: value}
    num_data_classes: int


def fake_classes(images, c_dim: int, label_space=None) -> FakeClasses:
    """One-hot data classes by default; `label_space` (data/labels.py) gives every class of a
    network trained on attributes its own vector."""
    num_classes = len(images.class_names) if images.labels is not None else 0
    names = list(images.class_names) if c_dim else []
    if label_space is None or not label_space.attributes:
        if c_dim and c_dim != num_classes:
            raise MetricError(f"the network has {c_dim} classes but {images.name} has {num_classes}; "
                              "give the data it was trained on")
        return FakeClasses(names, torch.eye(c_dim), {}, [], num_classes)
    names += [name for name in label_space.class_names if name not in names]
    vectors = torch.from_numpy(label_space.vectors_named(names))
    if vectors.shape[1] != c_dim:
        raise MetricError(f"the network takes labels of {c_dim} entries but {images.name}'s classes make "
                          f"{vectors.shape[1]}; give the data it was trained on")
    return FakeClasses(names, vectors, label_space.attributes, label_space.values_named(names), num_classes)


def with_data_attributes(made: FakeClasses, dataset) -> FakeClasses:
    """A class-label network's classes with the attributes its data gives them (the emoji:
    style and gender), so that class_acc also says which attribute its fakes get wrong."""
    space = None if made.attributes or not made.names else dataset.attribute_space()
    if space is None:
        return made
    return dataclasses.replace(made, attributes=space.attributes, values=space.values_named(made.names))


def compute_metrics(generator, dataset, metrics, num_gen: int, recipe: str = "clean", mirror: bool = False,
                    **options) -> MetricResults:
    """Our metrics (see `_compute`) from `num_gen` fakes and features by `recipe`, the
    generator's own (equivariance, path length) from `num_gen` latents, and NVlabs' names
    (nvlabs_names.py) each from its own samples, real images and recipe, under their keys.
    `mirror`: the data set trains with x-flips, which NVlabs' fid50k and kid50k then compare with too."""
    metrics = parse_metrics(metrics)
    ours = [m for m in metrics if m in METRICS]
    at_psi_one = [m for m in metrics if m not in METRICS]
    if options.get("truncation_psi", 1) != 1 and at_psi_one:
        raise MetricError(f"--trunc applies to {', '.join(METRICS)}; {', '.join(at_psi_one)} are defined without "
                          "truncation: measure them in a run without --trunc")
    results = _compute(generator, dataset, ours, num_gen, recipe=recipe, **options) if ours else MetricResults()
    of_generator = _generator_metrics(generator, dataset, [m for m in metrics if m in GENERATOR_METRICS], num_gen,
                                      **options)
    results.update(of_generator)
    results.seconds.update(of_generator.seconds)
    for name in [m for m in metrics if m in NVLABS_METRICS]:
        spec = NVLABS_METRICS[name]
        if spec.metric in GENERATOR_METRICS:
            theirs = _generator_metrics(generator, dataset, [spec.metric], spec.num_gen, **options)
        else:
            theirs = _compute(generator, dataset, [spec.metric], spec.num_gen, recipe=NVLABS_RECIPE,
                              max_reals=spec.max_reals, mirrored_reals=mirror and spec.mirrored, **options)
        results.update(with_nvlabs_keys(name, theirs))
        results.seconds[name] = theirs.seconds[spec.metric]
    return results


def _generator_metrics(generator, dataset, names, num_gen: int, device="cpu", seed: int = 0, progress: bool = True,
                       processes: Processes = Processes(), label_space=None, batch: int = 64,
                       **_inception_options) -> MetricResults:
    """The metrics of the generator alone: EQ-T / EQ-T frac / EQ-R (equivariance.py, in one
    pass that shares each reference picture; each is given an equal share of its time) and the
    path lengths (path_length.py), with labels drawn from the data as for `fid`."""
    results = MetricResults()
    if not names:
        return results
    if not isinstance(generator, torch.nn.Module):
        raise MetricError(f"{', '.join(names)} need the generator network itself, not a function that draws images")
    images = dataset_images(dataset)
    made = fake_classes(images, generator.c_dim, label_space)
    classes = mixed_labels(images.labels, num_gen, seed) if generator.c_dim else np.zeros(num_gen, dtype=np.int64)
    vectors = made.vectors if generator.c_dim else torch.zeros([1, 0])
    common = dict(seed=seed, device=torch.device(device), processes=processes)
    groups = [[m for m in names if m in EQUIVARIANCE_METRICS], *[[m] for m in names if m in PATH_LENGTH_METRICS]]
    for group in filter(None, groups):
        start = time.time()
        bar = partial(tqdm, desc=",".join(group), leave=False) if progress and processes.main else None
        if group[0] in EQUIVARIANCE_METRICS:
            results.update(equivariance(generator, group, num_gen, vectors, classes, progress=bar, **common))
        else:
            results.update(path_length(generator, group, num_gen, vectors, classes, progress=bar, batch=batch, **common))
        results.seconds.update({name: (time.time() - start) / len(group) for name in group})
    return results


def _compute(generator, dataset, metrics, num_gen: int, device="cpu", batch: int = 64, cache_dir=None,
             inception_path=None, seed: int = 0, num_gen_per_class=None, z_dim=None,
             progress: bool = True, processes: Processes = Processes(), per_class_from_mixed: bool = False,
             label_space=None, recipe: str = "clean", max_reals=None, mirrored_reals: bool = False,
             truncation_psi: float = 1) -> MetricResults:
    """{key: value} for the metrics named (see METRICS); keys such as fid, kid, kid_std,
    fid_per_class/<class>, fid_per_class_mean, kid_per_class/<class>, kid_per_class_std/<class>,
    kid_per_class_mean, precision, recall, class_acc/<class>, class_acc_mean, class_acc_real_heldout
    (and attr_acc/... for a network trained on attributes, see `_attribute_acc`).

    `generator`: our Generator (or any module called as G(z, c, truncation_psi=, noise_mode=)),
    or a callable (z, c) -> uint8 NCHW images, with `z_dim` given. `dataset`: an ImageDataset.
    `num_gen` fakes for fid/kid/pr; `num_gen_per_class` (default num_gen) per class for
    fid_per_class/kid_per_class/class_acc, or with `per_class_from_mixed` the fakes of that
    class among the `num_gen` (independent latents, about num_gen x the class's share of the
    data; half the Inception work when both kinds of metric are asked for). Real-image
    features and statistics are cached in `cache_dir`. `label_space`: the network's, when
    it was trained with --labels attributes (default: one-hot classes). `recipe`: the
    Inception resize (inception.py); `max_reals`: only the first this many real images, of the
    images and their x-flipped copies with `mirrored_reals`. `truncation_psi` < 1 truncates
    each fake toward its class's own average w (NVlabs measure at 1, the default).
    With `processes` (torchrun), every process must call this: each generates and extracts
    its shard of every image set, and all get the same results.
    """
    if label_space is not None and label_space.kind == "vector":
        raise MetricError("metrics of a network trained on vector labels are not supported yet (they draw fakes "
                          "per class)")
    generate, z_dim, c_dim = image_function(generator, z_dim, truncation_psi, label_space)
    images = dataset_images(dataset)
    images = (images.mirrored() if mirrored_reals else images).first(max_reals)
    made = getattr(generator, "img_resolution", None)
    if made is not None and made != images.resolution:
        raise MetricError(f"the network draws {made} px images but {images.name} holds {images.resolution} px ones; "
                          "give the data set it was trained on (or one made at its resolution)")
    if c_dim is None:  # a callable takes the labels the data makes
        attributes = label_space is not None and label_space.attributes
        c_dim = 0 if images.labels is None else label_space.c_dim if attributes else len(images.class_names)
    per_class = [m for m in metrics if m in PER_CLASS_METRICS]
    if per_class and not c_dim:
        raise MetricError(f"{', '.join(per_class)} needs a conditional network; this one is unconditional")
    if c_dim and images.labels is None:
        raise MetricError(f"{images.name} has no class labels, and a conditional network needs them; give the labelled training data")
    classes_made = with_data_attributes(fake_classes(images, c_dim, label_space), dataset)
    num_gen_per_class = num_gen if num_gen_per_class is None else num_gen_per_class
    device = torch.device(device)
    extract = partial(extract_features, load_inception(inception_path, device), device=device,
                      progress=progress and processes.main, recipe=recipe)
    reals = Reals(images, extract, StatsCache(cache_dir), batch, processes, device, classes_made, recipe)
    mixed_classes = mixed_labels(images.labels, num_gen, seed) if c_dim else None

    def make(class_index):
        if class_index is not None and per_class_from_mixed and class_index < classes_made.num_data_classes:
            return fakes.features()[mixed_classes == class_index]
        count = num_gen if class_index is None else num_gen_per_class
        classes = mixed_classes if class_index is None else np.full(count, class_index)
        label = "fakes" if class_index is None else f"fakes {classes_made.names[class_index]}"
        shard = processes.shard(count)
        batches = generated_batches(generate, z_dim, classes_made.vectors, classes, shard, seed, batch, device)
        local = extract(batches, len(shard), desc=label)
        return processes.gather_rows(local, count, device)

    fakes = Fakes(make)
    return _evaluate(metrics, reals, fakes)


def compare_folders(ref, gen, metrics=("fid",), device="cpu", batch: int = 64, cache_dir=None,
                    inception_path=None, progress: bool = True, recipe: str = "clean") -> MetricResults:
    """fid / kid / pr of the images in folder `gen` against those in folder `ref` (cached like real data)."""
    metrics = parse_metrics(metrics, folders=True)
    reference, generated = folder_images(ref), folder_images(gen)
    device = torch.device(device)
    extract = partial(extract_features, load_inception(inception_path, device), device=device, progress=progress,
                      recipe=recipe)
    reals = Reals(reference, extract, StatsCache(cache_dir), batch, recipe=recipe)
    fakes = Fakes(lambda _: extract(generated.batches(range(generated.count), batch), generated.count, desc=f"gen {generated.name}"))
    return _evaluate(metrics, reals, fakes)

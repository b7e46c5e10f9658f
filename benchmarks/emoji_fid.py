"""How far apart FID puts the emoji classes, to calibrate what the metrics say.

Three comparisons, each with n images on both sides (FID is strongly biased at small n):
two disjoint halves of twemoji_female (the floor: same class), twemoji_male vs
twemoji_female (gender), openmoji_female vs twemoji_female (style). Each is repeated over
random draws; also the linear class probe's accuracy on held-out real images.

    python benchmarks/emoji_fid.py --data all_styles64.zip --sizes 256,64,32 --draws 5
    python benchmarks/emoji_fid.py --data portraits32.zip --sizes 256 --features clean,nvlabs

With several --features recipes (inception.py: clean = ours, nvlabs = NVlabs' fid50k_full
resize) the same comparisons are made with each, and the last table sets them side by side.
"""

import sys
import time
from functools import partial
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cstylegan.data.dataset import ImageDataset  # noqa: E402
from cstylegan.metrics.cache import StatsCache  # noqa: E402
from cstylegan.metrics.class_consistency import fit_probe  # noqa: E402
from cstylegan.metrics.compute import Reals  # noqa: E402
from cstylegan.metrics.fid import fid_from_features  # noqa: E402
from cstylegan.metrics.images import dataset_images  # noqa: E402
from cstylegan.metrics.inception import RECIPES, extract_features, load_inception  # noqa: E402
from cstylegan.runtime.cli import Command  # noqa: E402


def draw_comparisons(features: dict, n: int, rng) -> dict:
    """FIDs of one random draw of n images per side."""
    female = rng.permutation(len(features["twemoji_female"]))
    half_a = features["twemoji_female"][female[:n]]
    half_b = features["twemoji_female"][female[n : 2 * n]]
    male = features["twemoji_male"][rng.permutation(len(features["twemoji_male"]))[:n]]
    style = features["openmoji_female"][rng.permutation(len(features["openmoji_female"]))[:n]]
    return {
        "halves": fid_from_features(half_a, half_b),
        "gender": fid_from_features(male, half_a),
        "style": fid_from_features(style, half_a),
    }


@click.command(cls=Command)
@click.option("--data", required=True, help="Emoji zip from datasets/emoji.py (styles twemoji,openmoji).")
@click.option("--sizes", default="256,64,32", show_default=True, help="Images per side.")
@click.option("--draws", type=int, default=5, show_default=True)
@click.option("--cache-dir", type=str, help="Real-feature cache (reruns skip Inception).")
@click.option("--features", "recipes", default="clean", show_default=True,
              help=f"Comma list of Inception resize recipes: {', '.join(RECIPES)}.")
def main(data, sizes, draws, cache_dir, recipes):
    dataset = ImageDataset(data, use_labels=False)
    images = dataset_images(dataset)
    net = load_inception()
    side_by_side = {}
    for recipe in recipes.split(","):
        start = time.time()
        extract = partial(extract_features, net, recipe=recipe)
        all_features = Reals(images, extract, StatsCache(cache_dir), batch=32, recipe=recipe).features()
        print(f"\n## features: {recipe}\n\n{data}: {images.count} images at {images.resolution} px, "
              f"features in {time.time() - start:.0f} s")
        side_by_side[recipe] = compare_classes(all_features, images, sizes, draws)
    if len(side_by_side) > 1:
        print_side_by_side(side_by_side)


def compare_classes(all_features, images, sizes: str, draws: int) -> dict:
    """Print the comparisons' table and the probe's accuracy; return {comparison: mean FID} at the first size."""
    features = {name: all_features[images.labels == k] for k, name in enumerate(images.class_names)}
    first = {}

    print("\n| n per side | halves of twemoji_female | twemoji male vs female | twemoji vs openmoji (female) | order held |")
    print("|---|---|---|---|---|")
    for n in (int(s) for s in sizes.split(",")):
        runs = [draw_comparisons(features, n, np.random.default_rng(d)) for d in range(draws)]
        cells = []
        for key in ("halves", "gender", "style"):
            values = np.array([r[key] for r in runs])
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1):.1f}")
            first.setdefault(key, (n, values.mean()))
        held = sum(r["halves"] < r["gender"] < r["style"] for r in runs)
        gaps = [min(r["gender"] - r["halves"], r["style"] - r["gender"]) for r in runs]
        print(f"| {n} | {' | '.join(cells)} | {held}/{draws} (smallest gap {min(gaps):.1f}) |")

    accuracies = [fit_probe(all_features, images.labels, len(images.class_names), seed=s)[1] for s in range(draws)]
    print(f"\nclass probe, held-out real accuracy ({len(accuracies)} splits): "
          f"{np.mean(accuracies):.3f} (min {np.min(accuracies):.3f})")
    return first


def print_side_by_side(side_by_side: dict) -> None:
    recipes = list(side_by_side)
    n = next(iter(side_by_side[recipes[0]].values()))[0]
    print(f"\n## FID by recipe, {n} images per side (mean over the draws)\n")
    print("| comparison | " + " | ".join(recipes) + " | ratio |")
    print("|---|" + "---|" * (len(recipes) + 1))
    for key in side_by_side[recipes[0]]:
        values = [side_by_side[r][key][1] for r in recipes]
        print(f"| {key} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {values[-1] / values[0]:.3f} |")


if __name__ == "__main__":
    main()

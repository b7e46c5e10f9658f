"""Train a (class-conditional) StyleGAN2: `python train.py --cond --data all_styles.zip`."""

import sys

import click
import torch

from cstylegan.config import AUG_MODES, CFG_NAMES, D_BACKBONES, LABEL_KINDS, LABEL_MIXES, ConfigError, TrainConfig, read_settings
from cstylegan.runtime.cli import Command, bool_option
from cstylegan.runtime.cpu_allocator import reuse_freed_memory
from cstylegan.runtime.devices import pick_device
from cstylegan.runtime.distributed import in_started_processes, start_on_this_machine
from cstylegan.training.augment import AUGPIPE_PRESETS


def kimg_pair(ctx, param, value):
    """click callback: '8,24' -> [8.0, 24.0] for --transition-kimg."""
    if value is None:
        return None
    try:
        start, end = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not START,END in kimg, e.g. 8,24") from None
    return [start, end]


def class_shares(ctx, param, value):
    """click callback: 'openmoji_female=0.1,ghibli_male=0' -> {'openmoji_female': 0.1, 'ghibli_male': 0.0}."""
    if value is None:
        return None
    shares = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        name, _, share = part.partition("=")
        try:
            shares[name.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not CLASS=SHARE, e.g. openmoji_female=0.1") from None
    return shares


@click.command(cls=Command)
@click.option("--data", type=str, help="Training data: a zip or folder with dataset.json (datasets/make_dataset.py).")
@bool_option("--cond", help="Condition on the class labels of the data set.")
@click.option("--labels", type=click.Choice(LABEL_KINDS), help="With --cond, what the label holds: class = one "
              "one-hot block for the class (NVlabs'); attributes = one one-hot block per attribute of dataset.json "
              "(style, gender, ...), so attributes are shared across classes and unseen combinations can be drawn.  "
              "[default: class]")
@click.option("--label-mix", "label_mix", type=click.Choice(LABEL_MIXES), help="With --labels attributes, the "
              "fakes' labels: data = the combinations of the data, at its frequencies; uniform = each attribute "
              "drawn alone and uniformly, so combinations absent from the data are trained too.  [default: data]")
@click.option("--outdir", type=str, help="Where run folders go.  [default: training-runs]")
@click.option("--cfg", type=click.Choice(CFG_NAMES), help="Preset: auto = official formula from the resolution; "
              "small = tiny channels for a CPU.  [default: auto]")
@click.option("--kimg", type=float, help="Training length in thousands of real images shown.  [default: 25000]")
@click.option("--batch", type=int, help="Total batch size.  [default: from --cfg]")
@click.option("--batch-gpu", "batch_gpu", type=int, help="Images per forward pass in each process; smaller "
              "saves memory (gradients are accumulated).  [default: --batch / processes]")
@click.option("--gamma", type=float, help="R1 weight.  [default: from --cfg; auto: 0.0002*res^2/batch]")
@click.option("--cbase", type=int, help="Channel base: channels = min(cbase/res, cmax).  [default: from --cfg]")
@click.option("--cmax", type=int, help="Most channels in any layer.  [default: from --cfg]")
@click.option("--map-depth", "map_depth", type=int, help="Mapping network layers.  [default: from --cfg]")
@click.option("--glr", type=float, help="G learning rate.  [default: from --cfg]")
@click.option("--dlr", type=float, help="D learning rate.  [default: from --cfg]")
@bool_option("--mirror", help="Add x-flipped copies of the data.")
@click.option("--tick", type=float, help="kimg between progress lines.  [default: 4]")
@click.option("--snap", type=int, help="Ticks between snapshots and image grids.  [default: 50]")
@click.option("--seed", type=int, help="Random seed.  [default: 0]")
@click.option("--workers", type=int, help="Data loader processes.  [default: 2]")
@click.option("--device", type=str, help="cpu, cuda, cuda:1 or auto.  [default: auto]")
@click.option("--resume", type=str, help="Start from a network-snapshot-*.pt or an NVlabs .pkl; the class list "
              "may differ (shared classes kept, new ones added). `auto` (or `latest`): continue from the newest "
              "readable snapshot under --outdir, or start afresh if there is none.")
@click.option("--nkimg", type=float, help="kimg count to start at.  [default: the resume file's, else 0]")
@click.option("--freezed", type=int, help="Freeze-D: freeze the first N discriminator layers.  [default: 0]")
@click.option("--dbackbone", type=click.Choice(D_BACKBONES), help="Discriminator: resnet (StyleGAN2's) or vit (a "
              "small vision transformer with the same minibatch-std and class projection, trained from scratch).  "
              "[default: resnet]")
@click.option("--dbackbone-weights", "dbackbone_weights", type=str, help="With --dbackbone vit: start its backbone "
              "from a timm/DeiT ViT state dict (.pt, .pth or .safetensors) of the same width.")
@click.option("--aug", type=click.Choice(AUG_MODES), help="Augmentation: ada = adaptive p, fixed = --p, noaug.  "
              "[default: ada]")
@click.option("--p", type=float, help="Augmentation probability for --aug fixed.  [default: 0.2]")
@click.option("--target", type=float, help="ADA target for E[sign(D(real))].  [default: 0.6]")
@click.option("--augpipe", type=click.Choice(list(AUGPIPE_PRESETS)), help="Augmentations used.  [default: bgc]")
@click.option("--ada-kimg", "ada_kimg", type=float, help="kimg for p to go from 0 to 1.  "
              "[default: 500, 100 when resuming]")
@bool_option("--fp32", help="No mixed precision: by default on CUDA the 4 highest "
              "resolutions run in float16 (clamped, as NVlabs do) and matmuls/convolutions may use TF32.")
@bool_option("--channels-last", "--nhwc", "channels_last", help="The float16 layers of "
              "StyleGAN2's G and D keep their activations channels-last (NHWC), the layout tensor-core convolutions "
              "read (NVlabs' fp16_channels_last); CUDA only, off by default.")
@bool_option("--allow-tf32", "allow_tf32", help="TF32 matmuls and convolutions on CUDA.  [default: on, off "
             "with --fp32; NVlabs' default is off]")
@bool_option("--nobench", help="No cuDNN benchmarking of convolution algorithms (NVlabs' --nobench).")
@click.option("--mbstd-group", "mbstd_group", type=int, help="Minibatch-std group size.  [default: from --cfg, "
              "at most the images per pass]")
@click.option("--subset", type=int, help="Train on this many images of the data, a fixed random subset (by "
              "--seed).  [default: all]")
@click.option("--class-fraction", "class_fraction", callback=class_shares, help="CLASS=SHARE[,...]: train on "
              "this share of a class's images (a fixed random part, by --seed), e.g. openmoji_female=0.1; 0 holds "
              "the class out, for an attribute model (--labels attributes) to draw a combination it never saw.  "
              "[default: every image]")
@click.option("--desc", type=str, help="Appended to the run folder's name.")
@click.option("--gpus", type=click.IntRange(min=1), help="Processes to start on this machine, one per GPU (or "
              "CPU processes without one), as torchrun --standalone would.  [default: 1]")
@bool_option("-n", "--dry-run", "dry_run", help="Print the resolved settings and the data set summary, then exit.")
@click.option("--metrics", type=str, help="Comma list computed at every snapshot: fid, kid, fid_per_class, kid_per_class, pr, "
              "class_acc, ppl_w_inception, ppl_z_inception; for StyleGAN3 eqt_int, eqt_frac, eqr; NVlabs' names too (see python -m cstylegan.metrics --help).  "
              "[default: none]")
@click.option("--metrics-num-gen", "metrics_num_gen", type=int, help="Generated images per metric (and per class).  "
              "[default: 10000]")
@click.option("--transition-kimg", "transition_kimg", callback=kimg_pair,
              help="START,END: with --cond, train unconditionally until START kimg, then fade the labels in "
              "linearly until END (transitional training, against the collapse of conditional GANs on little "
              "data).  [default: labels from the start]")
@click.option("--ds-weight", "ds_weight", type=float, help="Weight of a diversity-sensitive G term (Yang et al. "
              "2019): pairs of fakes of one class are pushed apart, on images pooled by --ds-pool, up to --ds-tau; "
              "against the collapse of a small conditional G to one image per class.  [default: 0, NVlabs' loss]")
@click.option("--ds-tau", "ds_tau", type=float, help="Cap of the term per pair (a pair of real images of one class "
              "measures about 0.4 at 32 px).  [default: 0.5]")
@click.option("--ds-pool", "ds_pool", type=int, help="Average-pool the images by this factor before comparing "
              "them, so that shapes and colours count and pixel noise does not.  [default: 4]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Start from the settings in a YAML file: a run's config.yaml, or one "
              "with only some settings; other flags override it.")
def main(config_path, gpus, dry_run, **flags):
    """Train one StyleGAN2 on all classes of a data set.

    Writes <outdir>/<NNNNN>-<desc>/ with config.yaml, log.txt, stats.jsonl, reals.png,
    fakes<kimg>.png (one row per class) and network-snapshot-<kimg>.pt.

    \b
    Example:
      python train.py --cond --data all_styles.zip --cfg small --kimg 200
    """
    from cstylegan.training.dry_run import dry_run as print_dry_run
    from cstylegan.training.loop import train

    if gpus and gpus > 1 and not dry_run and not in_started_processes(gpus):
        sys.exit(start_on_this_machine(gpus, [__file__, *click.get_current_context().meta["args"]]))
    given = {name: value for name, value in flags.items() if value is not None}
    if "metrics" in given:
        given["metrics"] = [m.strip() for m in given["metrics"].split(",") if m.strip()]
    try:
        fields = read_settings(config_path) if config_path else {}
        for derived in ("resolution", "img_channels", "class_names", "attributes", "label_names"):
            fields.pop(derived, None)
        config = TrainConfig.from_dict({**fields, **given})
        if dry_run:
            return print_dry_run(config)
        if pick_device(config.device).type == "cpu":
            reuse_freed_memory()  # glibc keeps large freed blocks (cstylegan/runtime/cpu_allocator.py)
        train(config)
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise ConfigError(f"out of memory on --device {config.device} with batch {config.batch or 'from --cfg'}"
                          f" ({str(error).splitlines()[0][:80]}); lower --batch, or --cbase/--cmax, or use --cfg small"
                          ) from None
    except KeyboardInterrupt:
        click.echo("Stopped at once by a second Ctrl-C; the snapshots written so far are kept (--resume auto)", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

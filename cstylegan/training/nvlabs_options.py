"""training_options.json: the run's settings under NVlabs' keys, for tools that read theirs.

NVlabs' train.py writes this file into every run folder; plotting scripts, notebooks and
cluster dashboards look for it. Ours holds every key of theirs that a setting of ours
answers, with their names and nesting; config.yaml stays the file that --config reloads.
"""

import json
from pathlib import Path

from cstylegan.config import TrainConfig
from cstylegan.training.augment import AUGPIPE_PRESETS

OPTIONS_NAME = "training_options.json"


def training_options(config: TrainConfig, G_kwargs: dict, D_kwargs: dict, processes: int, run_dir) -> dict:
    """NVlabs' training options of this run (stylegan2-ada-pytorch's and stylegan3's keys)."""
    adam = dict(class_name="torch.optim.Adam", betas=[0, 0.99], eps=1e-8)
    loss = dict(class_name="training.loss.StyleGAN2Loss", r1_gamma=config.gamma,
                style_mixing_prob=config.style_mixing_prob, pl_weight=config.pl_weight,
                pl_batch_shrink=config.pl_batch_shrink, pl_decay=config.pl_decay,
                blur_init_sigma=config.blur_init_sigma, blur_fade_kimg=config.blur_fade_kimg)
    return dict(
        num_gpus=processes,
        image_snapshot_ticks=config.snap,
        network_snapshot_ticks=config.snap,
        kimg_per_tick=config.tick,
        metrics=list(config.metrics),
        random_seed=config.seed,
        training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path=config.data,
                                 use_labels=config.cond, max_size=config.subset, xflip=config.mirror,
                                 resolution=config.resolution),
        data_loader_kwargs=dict(pin_memory=True, num_workers=config.workers, prefetch_factor=2),
        G_kwargs=dict(G_kwargs, class_name=f"training.networks_{config.generator_family}.Generator"),
        D_kwargs=dict(D_kwargs, class_name="training.networks_stylegan2.Discriminator"),
        G_opt_kwargs=dict(adam, lr=config.glr),
        D_opt_kwargs=dict(adam, lr=config.dlr),
        loss_kwargs=loss,
        G_reg_interval=config.G_reg_interval,
        D_reg_interval=config.D_reg_interval,
        total_kimg=config.kimg,
        batch_size=config.batch,
        batch_gpu=config.per_pass_batch(processes),
        ema_kimg=config.ema_kimg,
        ema_rampup=config.ema_rampup,
        augment_kwargs=augment_kwargs(config),
        ada_target=config.target if config.aug == "ada" else None,
        ada_kimg=config.ada_kimg,
        augment_p=config.p if config.aug == "fixed" else 0,
        resume_pkl=config.resume,
        cudnn_benchmark=not config.nobench,
        allow_tf32=config.allow_tf32,
        run_dir=str(run_dir),
    )


def augment_kwargs(config: TrainConfig):
    """NVlabs' AugmentPipe arguments: each op of --augpipe with probability multiplier 1; None with --aug noaug."""
    if config.aug == "noaug":
        return None
    return dict(class_name="training.augment.AugmentPipe", **AUGPIPE_PRESETS[config.augpipe])


def save_training_options(config: TrainConfig, G_kwargs: dict, D_kwargs: dict, processes: int, run_dir) -> Path:
    path = Path(run_dir) / OPTIONS_NAME
    path.write_text(json.dumps(training_options(config, G_kwargs, D_kwargs, processes, run_dir), indent=2) + "\n")
    return path

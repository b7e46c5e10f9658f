"""A run's networks: from --cfg, or from a snapshot or NVlabs .pkl to resume (its own
architecture with this data's classes, the weights carried over by `transfer_state`)."""

import copy

from cstylegan.config import TrainConfig
from cstylegan.data.labels import LabelSpace
from cstylegan.networks import DISCRIMINATORS, GENERATORS
from cstylegan.networks.vit_discriminator import load_backbone_weights
from cstylegan.snapshots.checkpoint import CheckpointError
from cstylegan.snapshots.class_transfer import transfer_state

# Precision and memory layout are choices of each run (--fp32, --channels-last), not of the weights.
RUN_CHOICES = ("num_fp16_res", "fp16_channels_last")


def same_architecture(G_kwargs: dict, other: dict) -> bool:
    return ({k: v for k, v in G_kwargs.items() if k not in RUN_CHOICES}
            == {k: v for k, v in other.items() if k not in RUN_CHOICES})


def check_same_label_kind(config: TrainConfig, source, snapshot: dict) -> None:
    """Class and attribute labels both feed the same embedding, so a file of the other kind
    would load without complaint and mean nothing: refuse it."""
    kind = LabelSpace.of_snapshot(snapshot).kind
    if snapshot["class_names"] and config.cond and kind != config.labels:
        raise CheckpointError(f"{source} was trained with --labels {kind} but this run uses --labels {config.labels}; "
                              f"pass --labels {kind}, or train the other kind from scratch")


def build_networks(config: TrainConfig, c_dim: int, resume, say) -> tuple:
    """G, G_ema, D and their constructor arguments; `resume` is a training.resume.Resume or None."""
    G_kwargs, D_kwargs = config.network_kwargs(c_dim)
    source = resume.path if resume else None
    snapshot = resume.snapshot if resume else None
    if snapshot is not None:
        family = snapshot["G_family"]
        if family != config.generator_family:
            raise CheckpointError(
                f"{source} is a {family} network but --cfg {config.cfg} trains {config.generator_family}; "
                + ("pass --cfg stylegan3-t or stylegan3-r" if family == "stylegan3" else "pass a StyleGAN2 --cfg such as auto")
            )
        if snapshot["G_kwargs"]["img_resolution"] != config.resolution:
            raise CheckpointError(
                f"{source} makes {snapshot['G_kwargs']['img_resolution']} px images but the data is "
                f"{config.resolution} px; make the data set at {snapshot['G_kwargs']['img_resolution']} px"
            )
        channels = snapshot["G_kwargs"].get("img_channels", 3)
        if channels != G_kwargs["img_channels"]:
            raise CheckpointError(f"{source} makes images of {channels} channels but the data's have "
                                  f"{G_kwargs['img_channels']}; make the data set with make_dataset.py --channels "
                                  f"{channels}")
        run_choices = {key: G_kwargs[key] for key in RUN_CHOICES if key in G_kwargs}
        G_kwargs = {**snapshot["G_kwargs"], "c_dim": c_dim, **run_choices}
        if "D" in snapshot:
            D_kwargs = {**snapshot["D_kwargs"], "c_dim": c_dim, "num_fp16_res": config.num_fp16_res,
                        "block_kwargs": D_kwargs["block_kwargs"],
                        "epilogue_kwargs": {**snapshot["D_kwargs"].get("epilogue_kwargs", {}), **D_kwargs["epilogue_kwargs"]}}
    if snapshot is not None:
        check_same_label_kind(config, source, snapshot)
    if snapshot is not None and "D" in snapshot and snapshot["D_backbone"] != config.dbackbone:
        raise CheckpointError(f"{source} has a {snapshot['D_backbone']} discriminator but "
                                         f"this run asks for --dbackbone {config.dbackbone}; pass --dbackbone "
                                         f"{snapshot['D_backbone']}")
    G = GENERATORS[config.generator_family](**G_kwargs)
    D = DISCRIMINATORS[config.dbackbone](**D_kwargs)
    if config.dbackbone_weights and snapshot is None:
        say(f"ViT backbone from {config.dbackbone_weights}: {len(load_backbone_weights(D, config.dbackbone_weights))} tensors")
    G_ema = copy.deepcopy(G)
    if snapshot is not None:
        source_columns = LabelSpace.of_snapshot(snapshot).column_names
        columns = LabelSpace.of(config.class_names, config.attributes).column_names
        report = []
        sources = {"G": snapshot.get("G", snapshot["G_ema"]), "G_ema": snapshot["G_ema"], "D": snapshot.get("D")}
        for module, key in ((G, "G"), (G_ema, "G_ema"), (D, "D")):
            if sources[key] is not None:
                report += transfer_state(sources[key], source_columns, module, columns, key)
            else:
                report.append(f"{key}: new, from --cfg (the resume file has no {key})")
        say(f"Resumed weights from {source}" + ("" if report else " (every tensor copied as it was)"))
        for line in report:
            say(f"  {line}")
    return G, G_ema, D, G_kwargs, D_kwargs

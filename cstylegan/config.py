"""Training settings: the presets of the official release, user overrides, YAML in/out.

A `TrainConfig` holds every setting a run uses, fully resolved, so that `config.yaml`
in a run folder is enough to reproduce or resume the run. The network constructor
arguments (`G_kwargs`, `D_kwargs`) use NVlabs' argument names, which is what lets
their pickles and ours share one code path.
"""

import dataclasses
import math
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Optional

import yaml

from cstylegan.runtime.errors import UserError

# Presets of the official releases, under TrainConfig's own field names: StyleGAN2-ADA's
# fixed ones, its `auto` formula, StyleGAN3's T and R, and our `small` (tiny channels, so a
# CPU trains in minutes). NVlabs' fmaps is cbase / 32768. Fields a preset leaves out come
# from STYLEGAN2_DEFAULTS; dlr defaults to glr.
STYLEGAN2_DEFAULTS = dict(
    arch="stylegan2", mbstd_group=4, ema_rampup=None, map_depth=8, cmax=512, style_mixing_prob=0.9, pl_weight=2.0,
    G_reg_interval=4, blur_init_sigma=0, blur_fade_kimg=0, d_architecture="resnet",
)
PRESETS = {
    "stylegan2": dict(batch=32, cbase=32768, glr=0.002, gamma=10, ema_kimg=10),
    "paper256": dict(batch=64, mbstd_group=8, cbase=16384, glr=0.0025, gamma=1, ema_kimg=20),
    "paper512": dict(batch=64, mbstd_group=8, cbase=32768, glr=0.0025, gamma=0.5, ema_kimg=20),
    "paper1024": dict(batch=32, cbase=32768, glr=0.002, gamma=2, ema_kimg=10),
    # CIFAR-10 at 32 px; NVlabs also switch off path length and style mixing, and D's residual skips.
    "cifar": dict(batch=64, mbstd_group=32, cbase=32768, glr=0.0025, gamma=0.01, ema_kimg=500, ema_rampup=0.05,
                  map_depth=2, pl_weight=0, style_mixing_prob=0, d_architecture="orig"),
}
CFG_NAMES = ["auto", *PRESETS, "small", "stylegan3-t", "stylegan3-r"]
# --resume values that continue this outdir's newest snapshot rather than start from another network.
CONTINUE_RESUME = ("auto", "latest")
AUG_MODES = ["ada", "noaug", "fixed"]
D_BACKBONES = ["resnet", "vit"]
LABEL_KINDS = ("class", "attributes")  # what --cond's label vector holds (cstylegan/data/labels.py)
LABEL_MIXES = ("data", "uniform")  # how fakes' labels are drawn with attribute labels
DESC_PATTERN = re.compile(r"[A-Za-z0-9._-]+")  # what --desc may hold: it joins a folder name
MIXED_PRECISION_RESOLUTIONS = 4  # NVlabs: the 4 highest resolutions in float16 unless --fp32


def _auto_preset(resolution: int, batch: Optional[int]) -> dict:
    """The official `auto` formula for one GPU, with gamma and EMA following the batch."""
    batch = batch or max(min(4096 // resolution, 32), 1)
    return dict(
        batch=batch,
        mbstd_group=min(batch, 4),
        cbase=32768 if resolution >= 512 else 16384,
        glr=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution**2 / batch,
        ema_kimg=batch * 10 / 32,
        ema_rampup=0.05,
        map_depth=2,
    )


def _stylegan3_preset(cfg: str, resolution: int, batch: Optional[int]) -> dict:
    """StyleGAN3's train.py: G lr 0.0025, D lr 0.002, mapping depth 2, no style mixing, no
    path length; R has 1x1 convs, radial filters, doubled G channels and a fading blur.
    NVlabs require --gamma; the default here, res^2 / 32768, is their recommended table
    (0.5 at 128 px, 2 at 256, 8 at 512, 32 at 1024, batch 32)."""
    batch = batch or 32
    preset = dict(
        arch=cfg, batch=batch, cbase=32768, glr=0.0025, dlr=0.002, gamma=resolution**2 / 32768,
        ema_kimg=batch * 10 / 32, ema_rampup=0.05, map_depth=2, style_mixing_prob=0, pl_weight=0, G_reg_interval=None,
    )
    if cfg == "stylegan3-r":
        preset.update(blur_init_sigma=10, blur_fade_kimg=batch * 200 / 32)
    return preset


def preset_for(cfg: str, resolution: int, batch: Optional[int]) -> dict:
    """Every preset-dependent setting of `cfg` at this resolution (and batch, where it matters)."""
    if cfg == "auto":
        preset = _auto_preset(resolution, batch)
    elif cfg == "small":
        preset = dict(_auto_preset(resolution, batch), cbase=2048, cmax=128)
    elif cfg.startswith("stylegan3"):
        preset = _stylegan3_preset(cfg, resolution, batch)
    else:
        preset = PRESETS[cfg]
    preset = {**STYLEGAN2_DEFAULTS, **preset}
    return {"dlr": preset["glr"], **preset}


class ConfigError(UserError):
    """A setting that cannot work; the message names it and what to use instead."""


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field: glr -> --glr, map_depth -> --map-depth."""
    return "--" + name.replace("_", "-")


# Every number a run takes, with what it may be (a value left as None takes the preset's). The
# upper bounds catch typos that would exhaust memory (a cmax of 51200 wants terabytes) or the
# process table, far above any real run.
RANGES = {
    "kimg": (lambda v: v > 0, "a positive number of kimg"),
    "tick": (lambda v: v > 0, "a positive number of kimg"),
    "snap": (lambda v: v >= 1 and v == int(v), "a whole number of ticks, at least 1"),
    "batch": (lambda v: 1 <= v <= 2**16, "at least 1 image, at most 65536"),
    "batch_gpu": (lambda v: 1 <= v <= 2**16, "at least 1 image, at most 65536"),
    "gamma": (lambda v: v >= 0, "a non-negative R1 weight"),
    "glr": (lambda v: v > 0, "a positive learning rate"),
    "dlr": (lambda v: v > 0, "a positive learning rate"),
    "cbase": (lambda v: 1 <= v <= 2**20, "a positive channel count, e.g. 16384, at most 1048576"),
    "cmax": (lambda v: 1 <= v <= 4096, "a positive channel count, e.g. 512, at most 4096"),
    "map_depth": (lambda v: 1 <= v <= 64, "1 to 64 mapping layers"),
    "z_dim": (lambda v: 1 <= v <= 8192, "1 to 8192, e.g. 512"),
    "w_dim": (lambda v: 1 <= v <= 8192, "1 to 8192, e.g. 512"),
    "mbstd_group": (lambda v: v >= 1, "at least 1"),
    "ema_kimg": (lambda v: v >= 0, "a non-negative number of kimg"),
    "ema_rampup": (lambda v: v >= 0, "a non-negative ratio"),
    "style_mixing_prob": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "pl_weight": (lambda v: v >= 0, "a non-negative weight"),
    "pl_batch_shrink": (lambda v: v >= 1, "at least 1"),
    "pl_decay": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "G_reg_interval": (lambda v: v >= 1, "at least 1 minibatch"),
    "D_reg_interval": (lambda v: v >= 1, "at least 1 minibatch"),
    "blur_init_sigma": (lambda v: v >= 0, "a non-negative sigma"),
    "blur_fade_kimg": (lambda v: v >= 0, "a non-negative number of kimg"),
    "ds_weight": (lambda v: v >= 0, "a non-negative weight"),
    "ds_tau": (lambda v: v > 0, "a positive cap"),
    "ds_pool": (lambda v: v >= 1, "a pooling factor of at least 1"),
    "seed": (lambda v: 0 <= v < 2**32, "a whole number from 0 to 2^32 - 1"),
    "subset": (lambda v: v >= 1, "a number of images of at least 1, or leave it out"),
    "workers": (lambda v: 0 <= v <= 256, "0 to 256 data loader processes"),
    "nkimg": (lambda v: v >= 0, "a non-negative kimg count"),
    "freezed": (lambda v: v >= 0, "0 or more (the number of D layers to freeze)"),
    "p": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "target": (lambda v: 0 < v < 1, "a target for E[sign(D(real))] between 0 and 1"),
    "ada_kimg": (lambda v: v > 0, "a positive number of kimg"),
    "ada_interval": (lambda v: v >= 1, "at least 1 minibatch"),
    "metrics_num_gen": (lambda v: v >= 2, "at least 2 generated images"),
    "conv_clamp": (lambda v: v > 0, "a positive clamp, or none"),
}


@dataclass
class TrainConfig:
    """Every setting of one training run; `resolve` fills the preset-dependent ones."""

    data: str
    outdir: str = "training-runs"
    cfg: str = "auto"
    cond: bool = False
    labels: str = "class"  # with cond: "class" (one-hot classes) or "attributes" (a one-hot block per attribute)
    label_mix: str = "data"  # fakes' labels: "data" (the data's combinations) or "uniform" (each attribute alone)
    mirror: bool = False
    kimg: float = 25000
    batch: Optional[int] = None
    batch_gpu: Optional[int] = None  # images per forward pass in each process; default batch / processes
    gamma: Optional[float] = None
    cbase: Optional[int] = None
    cmax: Optional[int] = None
    map_depth: Optional[int] = None
    glr: Optional[float] = None
    dlr: Optional[float] = None
    mbstd_group: Optional[int] = None
    ema_kimg: Optional[float] = None
    ema_rampup: Optional[float] = None
    z_dim: int = 512
    w_dim: int = 512
    conv_clamp: Optional[int] = 256
    num_fp16_res: Optional[int] = None  # None: 4 (NVlabs' mixed precision on CUDA), 0 with fp32
    fp32: bool = False  # no float16 layers and no TF32 matmuls on CUDA
    allow_tf32: Optional[bool] = None  # TF32 matmuls/convolutions on CUDA; None: on unless fp32 (NVlabs: off)
    nobench: bool = False  # no cuDNN benchmarking (NVlabs' --nobench)
    channels_last: bool = False  # float16 layers of StyleGAN2's G and D keep activations NHWC
    arch: Optional[str] = None  # stylegan2, stylegan3-t or stylegan3-r; from --cfg
    style_mixing_prob: Optional[float] = None
    pl_weight: Optional[float] = None
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    G_reg_interval: Optional[int] = None  # None: no lazy path-length step (StyleGAN3)
    D_reg_interval: int = 16
    blur_init_sigma: Optional[float] = None
    blur_fade_kimg: Optional[float] = None
    d_architecture: Optional[str] = None  # D's blocks: resnet (residual skips) or orig (NVlabs' cifar)
    transition_kimg: Optional[list] = None  # [start, end]: labels fade in over these kimg (transitional training)
    ds_weight: float = 0.0  # diversity-sensitive G term (0: off, NVlabs' loss); see StyleGAN2Loss.diversity_term
    ds_tau: float = 0.5  # its per-pair cap
    ds_pool: int = 4  # images are average-pooled by this factor before the term compares them
    tick: float = 4.0
    snap: int = 50
    seed: int = 0
    subset: Optional[int] = None  # train on this many images, a fixed random subset (NVlabs' --subset)
    class_fraction: dict = field(default_factory=dict)  # {class: share of its images to train on}; 0 holds it out
    desc: Optional[str] = None  # appended to the run folder's name (NVlabs' --desc)
    workers: int = 2
    device: str = "auto"
    resume: Optional[str] = None
    nkimg: Optional[float] = None
    freezed: int = 0
    dbackbone: str = "resnet"  # the discriminator: resnet (StyleGAN2's) or vit
    dbackbone_weights: Optional[str] = None  # a timm/DeiT ViT state dict to start the vit from
    aug: str = "ada"
    p: float = 0.2
    target: float = 0.6
    augpipe: str = "bgc"
    ada_kimg: Optional[float] = None
    ada_interval: int = 4
    metrics: list = field(default_factory=list)  # computed at every snapshot, e.g. ["fid", "fid_per_class"]
    metrics_num_gen: int = 10000
    # Filled from the data set when the run starts.
    resolution: Optional[int] = None
    img_channels: Optional[int] = None  # 1 (grey) or 3 (RGB), as the data's images
    class_names: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)  # with --labels attributes: {attribute: [value, ...]}
    label_names: list = field(default_factory=list)  # with vector labels: the name of each dimension

    def resolve(self, resolution: int, processes: int = 1) -> "TrainConfig":
        """Return a copy with every None filled from the preset for this resolution (and
        the number of training processes, which share each minibatch)."""
        if self.cfg not in CFG_NAMES:
            raise ConfigError(f"unknown --cfg {self.cfg!r}; choose one of {', '.join(CFG_NAMES)}")
        preset = preset_for(self.cfg, resolution, self.batch)
        resolved = dataclasses.replace(self, resolution=resolution)
        transfer = self.resume is not None and self.resume not in CONTINUE_RESUME
        per_pass = self.batch_gpu or max((self.batch or preset["batch"]) // processes, 1)
        defaults = dict(
            preset,
            mbstd_group=min(preset["mbstd_group"], per_pass),
            ada_kimg=100 if transfer else 500,
            blur_init_sigma=0 if transfer else preset["blur_init_sigma"],
            num_fp16_res=0 if self.fp32 else MIXED_PRECISION_RESOLUTIONS,
            allow_tf32=not self.fp32,
        )
        for name, value in defaults.items():
            if getattr(resolved, name) is None:
                setattr(resolved, name, value)
        resolved.validate(processes)
        return resolved

    def per_pass_batch(self, processes: int = 1) -> int:
        """Images in one forward pass of one process: --batch-gpu, else the process's whole share."""
        return self.batch_gpu or self.batch // processes

    def validate_before_data(self) -> None:
        """Reject the settings that are wrong whatever the data set, before it is opened (and
        before any run folder is made): wrong types from a YAML file, NaN and infinity, and every
        number outside its range (RANGES)."""
        for field_ in dataclasses.fields(self):
            value = getattr(self, field_.name)
            if value is not None and field_.type is bool and not isinstance(value, bool):
                raise ConfigError(f"{flag(field_.name)} is true or false, not {value!r}")
            if value is not None and field_.type in (str, Optional[str]) and not isinstance(value, str):
                raise ConfigError(f"{flag(field_.name)} takes text, not {value!r}")
            if field_.type is list and not isinstance(value, list):
                raise ConfigError(f"{flag(field_.name)} takes a list, not {value!r}")
            if field_.type is dict and not isinstance(value, dict):
                raise ConfigError(f"{flag(field_.name)} takes a mapping (name: value), not {value!r}")
        self._validate_class_fraction()
        whole = {f.name for f in dataclasses.fields(self) if f.type in (int, Optional[int])}
        for name, (allowed, meaning) in RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{flag(name)} takes a number ({meaning}), not {value!r}")
            if not math.isfinite(value) or not allowed(value):
                raise ConfigError(f"{flag(name)} {value!r} is out of range; give {meaning}")
            if name in whole and value != int(value):
                raise ConfigError(f"{flag(name)} {value!r} is not a whole number; give {meaning}")
            if name in whole:
                setattr(self, name, int(value))  # 8.0 from a YAML file: range() and tensor shapes need an int
        if self.desc is not None and not DESC_PATTERN.fullmatch(self.desc):
            raise ConfigError(f"--desc {self.desc!r} becomes part of a folder name; use letters, digits, '.', '_' "
                              "and '-' only")

    def validate(self, processes: int = 1) -> None:
        """Reject settings that would fail later, deep inside the loop."""
        self.validate_before_data()
        if self.batch % processes != 0:
            raise ConfigError(f"--batch {self.batch} cannot be split evenly over {processes} processes; "
                              f"pick a multiple of {processes}")
        if self.kimg * 1000 < self.batch:
            raise ConfigError(f"--kimg {self.kimg:g} is less than one minibatch ({self.batch} images), so nothing "
                              f"would be trained; give at least --kimg {self.batch / 1000:g}")
        share, per_pass = self.batch // processes, self.per_pass_batch(processes)
        if per_pass < 1 or share % per_pass != 0:
            raise ConfigError(f"--batch-gpu {self.batch_gpu} does not divide each process's share of the batch "
                              f"({share} = --batch {self.batch} / {processes} processes); pick a divisor of {share}")
        if per_pass % self.mbstd_group != 0:
            raise ConfigError(
                f"--batch {self.batch} is not divisible by the minibatch-std group {self.mbstd_group}"
                + (f" in passes of {per_pass} images" if per_pass != self.batch else "")
                + "; pick a batch that is a multiple of it"
            )
        if self.aug not in AUG_MODES:
            raise ConfigError(f"unknown --aug {self.aug!r}; choose one of {', '.join(AUG_MODES)}")
        if self.dbackbone not in D_BACKBONES:
            raise ConfigError(f"unknown --dbackbone {self.dbackbone!r}; choose one of {', '.join(D_BACKBONES)}")
        if self.dbackbone_weights is not None:
            if self.dbackbone != "vit":
                raise ConfigError("--dbackbone-weights loads a ViT backbone; add --dbackbone vit")
            if not Path(self.dbackbone_weights).is_file():
                raise ConfigError(f"--dbackbone-weights {self.dbackbone_weights}: no such file")
        self._validate_labels()
        if self.transition_kimg is not None:
            self._validate_transition()
        if self.resolution is not None and self.resolution % self.ds_pool:
            raise ConfigError(f"--ds-pool {self.ds_pool} does not divide the {self.resolution} px images; "
                              "pick a power of two")
        if self.resolution is not None and (self.resolution < 4 or self.resolution & (self.resolution - 1)):
            raise ConfigError(f"resolution {self.resolution} is not a power of two >= 4")

    def _validate_class_fraction(self) -> None:
        for name, share in self.class_fraction.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
                raise ConfigError(f"--class-fraction {name}={share!r}: give the share of its images to keep, "
                                  "a number from 0 (hold the class out) to 1")
            if share == 0 and not (self.cond and self.labels == "attributes"):
                raise ConfigError(f"--class-fraction {name}=0 holds the class out, which only a model of its "
                                  "attributes can still draw; add --cond --labels attributes, or keep more than 0")

    def _validate_labels(self) -> None:
        if self.labels not in LABEL_KINDS:
            raise ConfigError(f"unknown --labels {self.labels!r}; choose one of {', '.join(LABEL_KINDS)}")
        if self.label_mix not in LABEL_MIXES:
            raise ConfigError(f"unknown --label-mix {self.label_mix!r}; choose one of {', '.join(LABEL_MIXES)}")
        if self.labels == "attributes" and not self.cond:
            raise ConfigError("--labels attributes conditions on the attributes; add --cond")
        if self.label_mix == "uniform" and self.labels != "attributes":
            raise ConfigError("--label-mix uniform draws each attribute alone; add --cond --labels attributes")

    def _validate_transition(self) -> None:
        if not self.cond:
            raise ConfigError("--transition-kimg fades class labels in; add --cond, or drop it")
        values = self.transition_kimg
        if not isinstance(values, (list, tuple)) or len(values) != 2 or not all(
                isinstance(v, (int, float)) for v in values):
            raise ConfigError(f"--transition-kimg takes START,END in kimg (e.g. 8,24), got {self.transition_kimg!r}")
        start, end = values
        if not 0 <= start < end:
            raise ConfigError(f"--transition-kimg {start:g},{end:g}: need 0 <= START < END")

    @property
    def generator_family(self) -> str:
        """Which generator class G_kwargs are for: `stylegan2` or `stylegan3` (T and R)."""
        return "stylegan3" if self.arch.startswith("stylegan3") else "stylegan2"

    def network_kwargs(self, c_dim: int) -> tuple:
        """Constructor arguments of G and D, with NVlabs' names (StyleGAN3-R doubles G's channels)."""
        G_kwargs = dict(
            z_dim=self.z_dim,
            c_dim=c_dim,
            w_dim=self.w_dim,
            img_resolution=self.resolution,
            img_channels=self.img_channels or 3,
            mapping_kwargs=dict(num_layers=self.map_depth),
            channel_base=self.cbase * self.G_channel_factor,
            channel_max=self.cmax * self.G_channel_factor,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
        )
        if self.arch == "stylegan2":
            G_kwargs["fp16_channels_last"] = self.channels_last
        if self.arch.startswith("stylegan3"):
            G_kwargs["magnitude_ema_beta"] = 0.5 ** (self.batch / 20e3)
        if self.arch == "stylegan3-r":
            G_kwargs.update(conv_kernel=1, use_radial_filters=True)
        D_kwargs = dict(
            c_dim=c_dim,
            img_resolution=self.resolution,
            img_channels=self.img_channels or 3,
            channel_base=self.cbase,
            channel_max=self.cmax,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
            block_kwargs=dict(freeze_layers=self.freezed, fp16_channels_last=self.channels_last),
            epilogue_kwargs=dict(mbstd_group_size=self.mbstd_group),
        )
        if self.d_architecture != "resnet":  # written only when it differs, so older snapshots read the same
            D_kwargs["architecture"] = self.d_architecture
        return G_kwargs, D_kwargs

    @property
    def G_channel_factor(self) -> int:
        """StyleGAN3-R's G has twice the channels of --cbase/--cmax, as NVlabs' config does; D does not."""
        return 2 if self.arch == "stylegan3-r" else 1

    def with_architecture(self, G_kwargs: dict) -> "TrainConfig":
        """A copy whose network settings are those of `G_kwargs` (e.g. taken from a resume file)."""
        return dataclasses.replace(
            self,
            z_dim=G_kwargs["z_dim"],
            w_dim=G_kwargs["w_dim"],
            cbase=G_kwargs["channel_base"] // self.G_channel_factor,
            cmax=G_kwargs["channel_max"] // self.G_channel_factor,
            map_depth=G_kwargs.get("mapping_kwargs", {}).get("num_layers", 8),
            conv_clamp=G_kwargs.get("conv_clamp"),
            num_fp16_res=G_kwargs.get("num_fp16_res", 0),
        )

    def description(self) -> str:
        """Short run-folder suffix, e.g. `cond-all_styles-small-batch32-gamma0.2`."""
        name = Path(self.data).name.removesuffix(".zip")
        parts = (["cond"] if self.cond else []) + [name, self.cfg, f"batch{self.batch}", f"gamma{self.gamma:g}"]
        return "-".join(parts + ([self.desc] if self.desc else []))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings in config: {', '.join(unknown)}")
        if "data" not in values:
            raise ConfigError("--data is required (a zip made by datasets/make_dataset.py or datasets/emoji.py)")
        return cls(**values)


def save_yaml(config: TrainConfig, path) -> None:
    with open(path, "w") as file:
        yaml.safe_dump(config.to_dict(), file, sort_keys=False)


def load_yaml(path) -> TrainConfig:
    return TrainConfig.from_dict(read_settings(path))


def read_settings(path) -> dict:
    """The settings in a YAML file (--config: a run's config.yaml, or a file with only some of
    them, the rest given as flags); one line for a missing, unreadable or malformed file."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config {path}: {getattr(error, 'strerror', None) or error}; give a run's config.yaml") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path} is not YAML ({str(error).splitlines()[0]}); give a run's config.yaml") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path} holds a {type(values).__name__}, not settings (name: value lines); "
                          "give a run's config.yaml")
    return values

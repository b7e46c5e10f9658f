"""What one comparison is: the YAML in experiments/configs/, read into checked dataclasses.

A config names the data, the training settings every run shares, the metric budget and
the methods: `transfer` (one unconditional base model, one fine-tune per class, and
layer-swapped blends of the two) and any number of `conditional` models (StyleGAN2,
StyleGAN3-T/R, or other networks through their `train:` settings). See
experiments/configs/emoji32_cpu.yaml for every key with a comment.
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from cstylegan.config import ConfigError, TrainConfig
from cstylegan.runtime.errors import UserError

# Settings the runner sets itself for every training run.
RUNNER_SETTINGS = ("data", "outdir", "cond", "kimg", "resume", "nkimg", "snap", "metrics", "metrics_num_gen",
                   "resolution", "class_names", "attributes", "label_names")
TRAIN_SETTINGS = sorted({f.name for f in dataclasses.fields(TrainConfig)} - set(RUNNER_SETTINGS))


class SpecError(UserError):
    """A config that cannot run; the message names the key and what to write instead."""


@dataclass
class Transfer:
    """Per-style transfer: base on all images without labels, then one fine-tune per class."""

    base_kimg: float
    finetune_kimg: float
    snap_kimg: float  # fine-tune snapshots (the curve's points) every this many kimg
    freezed: int = 0  # Freeze-D layers during fine-tuning
    swap_split_res: list = field(default_factory=list)  # one blended method per resolution
    swap_lower: str = "base"  # which model gives the layers at or below the split: base or finetune
    base_resume: Optional[str] = None  # start the base from this snapshot or NVlabs .pkl (e.g. FFHQ)
    train: dict = field(default_factory=dict)


@dataclass
class Conditional:
    """One conditional model on every class."""

    name: str
    kimg: float
    snap_kimg: float
    train: dict = field(default_factory=dict)
    notes: str = ""  # shown in the table, e.g. why this method's budget differs


@dataclass
class Spec:
    name: str
    data: str
    make_data: str  # the command that builds `data`, shown when it is missing
    train: dict
    num_gen: int  # fakes for the overall FID and KID (classes drawn as in the data)
    # Fakes per class for the final per-class FID / KID and class consistency; None: each
    # class's fakes among the num_gen (independent latents, no extra Inception work).
    num_gen_per_class: Optional[int] = None
    curve_num_gen_per_class: Optional[int] = None  # fakes per class at each curve point; default num_gen_per_class
    sample_seeds: str = "0-7"
    swap_layer: int = 4  # class swap inside the conditional StyleGAN2 model (swap_grid.png)
    # Latents (pairs for the path length) for the conditional models' generator metrics:
    # path length, and for StyleGAN3 EQ-T, EQ-T frac and EQ-R (sg2_vs_sg3.md). None: not measured.
    generator_num_gen: Optional[int] = None
    device: str = "auto"
    seed: int = 0
    transfer: Optional[Transfer] = None
    conditional: list = field(default_factory=list)
    # Methods of other comparisons quoted in this one's tables, as "config/method": their
    # committed results, refused unless measured with this config's shared settings.
    references: list = field(default_factory=list)

    def method_names(self) -> list:
        """Every row of the table, in order."""
        names = []
        if self.transfer:
            names.append("transfer")
            names += [f"transfer_swap{res}" for res in self.transfer.swap_split_res]
        return names + [method.name for method in self.conditional]

    def conditional_named(self, name: str) -> Conditional:
        return next(method for method in self.conditional if method.name == name)

    def units(self) -> dict:
        """{unit: its methods}: what `run.py --only` runs start to finish. Transfer and its
        layer swaps are one unit, since the swaps need the fine-tunes."""
        units = {"transfer": self.method_names()[: 1 + len(self.transfer.swap_split_res)]} if self.transfer else {}
        return {**units, **{method.name: [method.name] for method in self.conditional}}

    def unit_settings(self, unit: str) -> dict:
        """Everything in the config that a unit's numbers depend on; committed with its results,
        so that a later run can tell whether they are still this config's."""
        own = self.transfer if unit == "transfer" else self.conditional_named(unit)
        return {**self.shared_settings(), unit: dataclasses.asdict(own)}

    def shared_settings(self) -> dict:
        """The settings every method's numbers depend on."""
        return {key: getattr(self, key) for key in ("data", "train", "num_gen", "num_gen_per_class",
                                                    "curve_num_gen_per_class", "seed")}

    def parse_units(self, only) -> list:
        """The units named in a --only comma list, in config order; unknown names are refused by name."""
        units = self.units()
        if not only:
            return list(units)
        asked = [name.strip() for name in only.split(",") if name.strip()]
        part_of = {method: unit for unit, methods in units.items() for method in methods}
        unknown = [name for name in asked if name not in part_of]
        if unknown or not asked:
            raise SpecError(f"--only {only}: no unit {', '.join(unknown) or '(none)'} in {self.name}; "
                            f"units: {', '.join(units)}")
        wanted = {part_of[name] for name in asked}
        return [unit for unit in units if unit in wanted]


def _build(cls, values, where: str):
    """cls(**values) with unknown or missing keys reported by name."""
    if not isinstance(values, dict):
        raise SpecError(f"{where} must be a mapping of keys to values, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SpecError(f"{where}: unknown key {', '.join(unknown)}; known keys: {', '.join(fields)}")
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise SpecError(f"{where}: missing key {', '.join(missing)}")
    for name, value in values.items():
        _check_type(value, fields[name].type, f"{where}.{name}")
    return cls(**values)


def _check_type(value, annotation, where: str) -> None:
    """A SpecError unless `value` is of the field's plain type (int, float, str, bool, list,
    dict, or Optional of one); a float field takes an int too."""
    types = tuple(t for t in (typing.get_args(annotation) or (annotation,)) if isinstance(t, type))
    if value is None and type(None) in types:
        return
    kinds = tuple(t for t in types if t is not type(None))
    if not kinds:
        return
    accepted = kinds + ((int,) if float in kinds else ())
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in kinds):
        raise SpecError(f"{where} must be {' or '.join(t.__name__ for t in kinds)}, got {value!r}")


def _check_train(settings: dict, where: str, conditional: bool = False) -> None:
    if not isinstance(settings, dict):
        raise SpecError(f"{where}.train must be a mapping of train.py settings")
    unknown = sorted(set(settings) - set(TRAIN_SETTINGS))
    if unknown:
        raise SpecError(f"{where}.train: {', '.join(unknown)} cannot be set here (the runner sets "
                        f"{', '.join(RUNNER_SETTINGS[:7])}); settable: {', '.join(TRAIN_SETTINGS)}")
    try:
        TrainConfig(data="x", cond=conditional, **settings).validate_before_data()
    except ConfigError as error:
        raise SpecError(f"{where}.train: {error}") from None
    if not conditional and settings.get("labels", "class") != "class":
        raise SpecError(f"{where}.train: labels {settings['labels']!r} is for one conditional model; set it in "
                        "that model's own train: settings (transfer's models are unconditional)")


def parse_spec(values: dict, name: str) -> Spec:
    """A checked Spec from the YAML's mapping; `name` is the config's file stem."""
    if not isinstance(values, (dict, type(None))):
        raise SpecError(f"{name}: the config must be a mapping of keys to values (data: ..., train: ...), not a "
                        f"{type(values).__name__}")
    values = dict(values or {})
    transfer = values.pop("transfer", None)
    conditional = values.pop("conditional", None) or []
    spec = _build(Spec, {"name": name, **values}, name)
    _check_train(spec.train, name)
    if transfer is not None:
        spec.transfer = _build(Transfer, transfer, f"{name}.transfer")
        _check_train(spec.transfer.train, f"{name}.transfer")
        if spec.transfer.swap_lower not in ("base", "finetune"):
            raise SpecError(f"{name}.transfer.swap_lower must be base or finetune, got {spec.transfer.swap_lower!r}")
    if not isinstance(conditional, list):
        raise SpecError(f"{name}.conditional must be a list of methods (- name: ..., kimg: ...)")
    spec.conditional = [_build(Conditional, method, f"{name}.conditional[{i}]") for i, method in enumerate(conditional)]
    for method in spec.conditional:
        _check_train(method.train, f"{name}.{method.name}", conditional=True)
    for reference in spec.references:
        if not isinstance(reference, str) or reference.count("/") != 1:
            raise SpecError(f"{name}.references: {reference!r} is not config/method, e.g. emoji32_cpu/cond_sg2")
    names = spec.method_names()
    if not names:
        raise SpecError(f"{name}: no methods; add a transfer: section and/or conditional: models")
    if len(set(names)) != len(names):
        raise SpecError(f"{name}: method names must differ, got {', '.join(names)}")
    for kimg_owner, kimg, snap, tick in _budgets(spec):
        if not 1 <= snap <= kimg:
            raise SpecError(f"{kimg_owner}: snap_kimg must be from 1 (snapshot files are named by whole kimg) "
                            f"to kimg, got {snap} for {kimg} kimg")
        if abs(snap / tick - round(snap / tick)) > 1e-6 or round(snap / tick) < 1:
            raise SpecError(f"{kimg_owner}: snap_kimg {snap:g} is not a whole number of ticks of {tick:g} kimg "
                            f"(snapshots come at tick ends); set train: {{tick: ...}} to a divisor of it")
    if spec.curve_num_gen_per_class is None:
        spec.curve_num_gen_per_class = spec.num_gen_per_class
    if spec.curve_num_gen_per_class is None:
        raise SpecError(f"{name}: give curve_num_gen_per_class (fakes per class at each curve point)")
    if spec.generator_num_gen is not None and spec.generator_num_gen < 2:
        raise SpecError(f"{name}: generator_num_gen must be at least 2 (the path length trims percentiles)")
    if min(spec.num_gen, spec.num_gen_per_class or 2, spec.curve_num_gen_per_class) < 2:
        raise SpecError(f"{name}: num_gen, num_gen_per_class and curve_num_gen_per_class must be at least 2 "
                        "(FID needs a covariance)")
    return spec


def _budgets(spec: Spec):
    """(where, kimg, snap_kimg, tick) of every run whose snapshots make a curve."""
    def tick(own: dict) -> float:
        return {**spec.train, **own}.get("tick", TrainConfig.tick)

    if spec.transfer:
        yield f"{spec.name}.transfer", spec.transfer.finetune_kimg, spec.transfer.snap_kimg, tick(spec.transfer.train)
    for method in spec.conditional:
        yield f"{spec.name}.{method.name}", method.kimg, method.snap_kimg, tick(method.train)


def load_spec(path) -> Spec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"config {path} not found; the shipped ones are in experiments/configs/")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_spec(values, path.stem)

"""A comparison unit by unit, in order: train its methods, measure every snapshot.

A unit is what `run.py --only` names: `transfer` (the base, one fine-tune per class and the
layer-swapped blends) or one conditional model. Training runs are recorded in runs.json and
metric results in evaluations.json under the work folder, so a rerun after a crash or a
kill picks up where the last one stopped; once a unit's results are written to the results
folder (report.py), nothing in the work folder is needed any more.
"""

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from cstylegan.config import TrainConfig
from cstylegan.data.dataset import DatasetError, ImageDataset
from cstylegan.metrics import compute_metrics
from cstylegan.metrics.compute import mixed_labels
from cstylegan.runtime.devices import pick_device
from experiments.methods import Point, conditional_points, parameter_count, swap_point, transfer_points
from experiments.spec import Spec, SpecError
from experiments.trainings import Workspace

FINAL_METRICS = ["fid", "kid", "fid_per_class", "kid_per_class", "class_acc"]
PATH_LENGTH = ["ppl_w_inception"]
EQUIVARIANCE = ["eqt_int", "eqt_frac", "eqr"]
CURVE_METRICS = ["fid_per_class", "class_acc"]
ONLY_FINAL_SNAPSHOT = 10**6  # ticks between snapshots: the base model needs only its last one


@dataclass
class Method:
    """One row of the table: where its FID curve is measured, and what it cost to train."""

    name: str
    unit: str
    points: list  # [Point]; the last is the final model
    runs: list  # runs.json records of every training it needed
    arch: str
    models_trained: int
    notes: str = ""
    curve: dict = field(default_factory=dict)  # {kimg as text: curve metric results}
    final: dict = field(default_factory=dict)  # the final model's full metric results
    metric_seconds: float = 0.0  # its metrics' time, over every call of the runner that measured them

    @property
    def kimg(self) -> float:
        return sum(run["kimg"] for run in self.runs)

    @property
    def wall_s(self) -> float:
        return sum(run["wall_s"] for run in self.runs)

    @property
    def peak_mem_gb(self) -> float:
        return max(run["peak_mem_gb"] for run in self.runs)

    @cached_property
    def parameters(self) -> int:
        """Generator parameters needed to draw every class with the final model(s)."""
        return parameter_count(self.points[-1].build(torch.device("cpu")))


def run_config(spec: Spec, overrides: dict, **settings) -> TrainConfig:
    """A run's TrainConfig: the shared train settings, the method's, then the runner's."""
    values = {"device": spec.device, "seed": spec.seed, **spec.train, **overrides, **settings}
    tick = values.get("tick", TrainConfig.tick)
    if "snap_kimg" in values:
        snap_kimg = values.pop("snap_kimg")
        values["snap"] = max(1, round(snap_kimg / tick))
    return TrainConfig(**values)


def base_config(spec: Spec) -> TrainConfig:
    """The transfer base: every image, no labels; only its last snapshot is kept."""
    transfer = spec.transfer
    return run_config(spec, transfer.train, data=spec.data, cond=False, kimg=transfer.base_kimg,
                      snap=ONLY_FINAL_SNAPSHOT, resume=transfer.base_resume, nkimg=0)


def conditional_config(spec: Spec, name: str) -> TrainConfig:
    method = spec.conditional_named(name)
    return run_config(spec, method.train, data=spec.data, cond=True, kimg=method.kimg, snap_kimg=method.snap_kimg)


def unit_kimg(spec: Spec, unit: str, num_classes: int) -> float:
    """Training kimg of a unit, all its models together."""
    if unit == "transfer":
        return spec.transfer.base_kimg + num_classes * spec.transfer.finetune_kimg
    return spec.conditional_named(unit).kimg


def speed_config(spec: Spec, unit: str) -> TrainConfig:
    """The training whose img/s sets the unit's pace (a fine-tune trains the base's network)."""
    return base_config(spec) if unit == "transfer" else conditional_config(spec, unit)


def train_unit(spec: Spec, unit: str, workspace: Workspace, dataset: ImageDataset, say) -> list:
    """Train (or find finished) every run of a unit; its Methods in table order."""
    if unit != "transfer":
        method = spec.conditional_named(unit)
        config = conditional_config(spec, unit)
        run = workspace.train(unit, config, say)
        return [Method(unit, unit, conditional_points(run), [run], config.cfg, 1, method.notes)]
    transfer = spec.transfer
    arch = {**spec.train, **transfer.train}.get("cfg", "auto")
    base = workspace.train("transfer_base", base_config(spec), say)
    finetunes = []
    for name in dataset.class_names:
        config = run_config(spec, transfer.train, data=workspace.class_data(spec.data, name), cond=False,
                            kimg=transfer.finetune_kimg, snap_kimg=transfer.snap_kimg,
                            resume=base["snapshots"][-1][1], nkimg=0, freezed=transfer.freezed)
        finetunes.append(workspace.train(f"transfer_{name}", config, say))
    runs, trained = [base, *finetunes], 1 + len(finetunes)
    methods = [Method("transfer", unit, transfer_points(base, finetunes), runs, arch, trained,
                      f"base {base['kimg']:g} kimg + {len(finetunes)} fine-tunes x {finetunes[0]['kimg']:g}")]
    for res in transfer.swap_split_res:
        methods.append(Method(f"transfer_swap{res}", unit, [swap_point(base, finetunes, res, transfer.swap_lower)], runs,
                              arch, trained, f"layers <= {res} px from the {transfer.swap_lower}"))
    return methods


def evaluate(spec: Spec, workspace: Workspace, method: Method, dataset: ImageDataset, say) -> None:
    """Per-class FID and class consistency at every curve point (curve_num_gen_per_class fakes
    a class), then the full metric set of the final model; results already in
    evaluations.json are reused."""
    device = pick_device(spec.device)
    stored = workspace.read_json("evaluations.json", {})
    settings = dict(num_gen=spec.num_gen, num_gen_per_class=spec.num_gen_per_class,
                    curve_num_gen_per_class=spec.curve_num_gen_per_class, seed=spec.seed)
    if stored.get("settings") != settings:
        stored = {"settings": settings}
    done = stored.setdefault(method.name, {"curve": {}, "final": None})
    jobs = [(f"{point.kimg:g}", point, CURVE_METRICS, spec.curve_num_gen_per_class) for point in method.points]
    jobs.append(("final", method.points[-1], FINAL_METRICS, spec.num_gen_per_class))
    for key, point, metrics, per_class in jobs:
        have = done["final"] if key == "final" else done["curve"].get(key)
        if have is None:
            where = f"the final model ({point.kimg:g} kimg)" if key == "final" else f"{key} kimg"
            say(f"{method.name}: {', '.join(metrics)} at {where}, "
                + (f"{per_class} fakes a class" if per_class else f"{spec.num_gen} fakes, each class's share per class"))
            start = time.time()
            generator = point.build(device)
            have = compute_metrics(generator, dataset, metrics, spec.num_gen, device=device, seed=spec.seed,
                                   num_gen_per_class=per_class, per_class_from_mixed=per_class is None,
                                   z_dim=generator.z_dim, progress=False, label_space=generator.labels)
            seconds = time.time() - start
            say(f"{method.name} at {where}: " + "  ".join(
                f"{name} {value:.4g}" for name, value in have.items() if "/" not in name)
                + f"  ({seconds:.0f} s)")
            if key == "final":
                done["final"] = have
            else:
                done["curve"][key] = have
            done.setdefault("seconds", {})[key] = seconds
            workspace.write_json("evaluations.json", stored)
    method.curve, method.final = done["curve"], done["final"]
    method.metric_seconds = sum(done.get("seconds", {}).values())
    if spec.generator_num_gen and method.models_trained == 1:
        measured = evaluate_generator(spec, workspace, method, dataset, say)
        method.final = {**method.final, **measured["results"]}
        method.metric_seconds += measured.get("seconds", 0.0)


def generator_metrics(arch: str) -> list:
    """The metrics of a conditional generator alone: path length, and for StyleGAN3 its equivariance."""
    return PATH_LENGTH + (EQUIVARIANCE if arch.startswith("stylegan3") else [])


def evaluate_generator(spec: Spec, workspace: Workspace, method: Method, dataset: ImageDataset, say) -> dict:
    """generator_metrics of the final model from spec.generator_num_gen latents (pairs for the
    path length), kept in evaluations.json beside the method's other results: its entry there,
    with the results and the seconds they took."""
    stored = workspace.read_json("evaluations.json", {})
    done = stored.setdefault(f"{method.name}/generator", {})
    names = generator_metrics(method.arch)
    if done.get("num_gen") != spec.generator_num_gen or set(done.get("results", {})) != set(names):
        say(f"{method.name}: {', '.join(names)} of the final model, {spec.generator_num_gen} latents")
        start = time.time()
        device = pick_device(spec.device)
        model = method.points[-1].build(device)
        results = compute_metrics(model.G, dataset, names, spec.generator_num_gen, device=device, seed=spec.seed,
                                  progress=False, label_space=model.labels)
        done.update(num_gen=spec.generator_num_gen, results=dict(results), seconds=time.time() - start)
        say(f"{method.name}: " + "  ".join(f"{name} {value:.4g}" for name, value in results.items())
            + f"  ({done['seconds']:.0f} s)")
        workspace.write_json("evaluations.json", stored)
    return done


def final_fakes_per_class(spec: Spec, dataset: ImageDataset) -> list:
    """How many fakes of each class the final per-class metrics use."""
    if spec.num_gen_per_class:
        return [spec.num_gen_per_class] * len(dataset.class_names)
    drawn = mixed_labels(dataset.raw_classes, spec.num_gen, spec.seed)  # as compute_metrics draws them
    return np.bincount(drawn, minlength=len(dataset.class_names)).tolist()


def open_data(spec: Spec) -> ImageDataset:
    if not Path(spec.data).exists():
        raise SpecError(f"data set {spec.data} not found; build it with: {spec.make_data}")
    dataset = ImageDataset(spec.data, use_labels=True)
    if not dataset.has_labels or len(dataset.class_names) < 2:
        raise DatasetError(f"{spec.data} needs at least two labelled classes for a comparison; "
                           "make it from class folders with datasets/make_dataset.py")
    return dataset


def run_unit(spec: Spec, unit: str, workspace: Workspace, dataset: ImageDataset, say=print) -> list:
    """Train and measure one unit; its Methods, measured, for the report."""
    methods = train_unit(spec, unit, workspace, dataset, say)
    for method in methods:
        evaluate(spec, workspace, method, dataset, say)
    return methods

"""The whole comparison, in order: train every method, measure every snapshot, report.

Training runs are recorded in runs.json and metric results in evaluations.json under the
work folder, so a rerun after a crash or a kill picks up where the last one stopped.
"""

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from cstylegan.config import TrainConfig
from cstylegan.data import DatasetError, ImageDataset
from cstylegan.devices import pick_device
from cstylegan.metrics import compute_metrics
from experiments.methods import Point, conditional_points, parameter_count, swap_point, transfer_points
from experiments.spec import Spec, SpecError
from experiments.trainings import Workspace

FINAL_METRICS = ["fid", "kid", "fid_per_class", "class_acc"]
CURVE_METRICS = ["fid_per_class"]
ONLY_FINAL_SNAPSHOT = 10**6  # ticks between snapshots: the base model needs only its last one


@dataclass
class Method:
    """One row of the table: where its FID curve is measured, and what it cost to train."""

    name: str
    points: list  # [Point]; the last is the final model
    runs: list  # runs.json records of every training it needed
    arch: str
    models_trained: int
    notes: str = ""
    results: dict = field(default_factory=dict)  # {kimg as text: metric results}

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

    def final(self) -> dict:
        return self.results[f"{self.points[-1].kimg:g}"]


def _config(spec: Spec, overrides: dict, **settings) -> TrainConfig:
    """A run's TrainConfig: the shared train settings, the method's, then the runner's."""
    values = {"device": spec.device, "seed": spec.seed, **spec.train, **overrides, **settings}
    tick = values.get("tick", TrainConfig.tick)
    if "snap_kimg" in values:
        snap_kimg = values.pop("snap_kimg")
        values["snap"] = max(1, round(snap_kimg / tick))
    return TrainConfig(**values)


def train_methods(spec: Spec, workspace: Workspace, dataset: ImageDataset, say) -> list:
    """Train (or find finished) every run of every method; the Methods in table order."""
    methods = []
    if spec.transfer:
        transfer = spec.transfer
        settings = {**spec.train, **transfer.train}
        arch = settings.get("cfg", "auto")
        base = workspace.train("transfer_base", _config(spec, transfer.train, data=spec.data, cond=False,
                                                        kimg=transfer.base_kimg, snap=ONLY_FINAL_SNAPSHOT,
                                                        resume=transfer.base_resume, nkimg=0), say)
        finetunes = []
        for name in dataset.class_names:
            config = _config(spec, transfer.train, data=workspace.class_data(spec.data, name), cond=False,
                             kimg=transfer.finetune_kimg, snap_kimg=transfer.snap_kimg,
                             resume=base["snapshots"][-1][1], nkimg=0, freezed=transfer.freezed)
            finetunes.append(workspace.train(f"transfer_{name}", config, say))
        runs = [base, *finetunes]
        trained = 1 + len(finetunes)
        methods.append(Method("transfer", transfer_points(base, finetunes), runs, arch, trained,
                              f"base {base['kimg']:g} kimg + {len(finetunes)} fine-tunes x {finetunes[0]['kimg']:g}"))
        for res in transfer.swap_split_res:
            methods.append(Method(f"transfer_swap{res}", [swap_point(base, finetunes, res, transfer.swap_lower)], runs,
                                  arch, trained, f"layers <= {res} px from the {transfer.swap_lower}"))
    for method in spec.conditional:
        config = _config(spec, method.train, data=spec.data, cond=True, kimg=method.kimg, snap_kimg=method.snap_kimg)
        run = workspace.train(method.name, config, say)
        methods.append(Method(method.name, conditional_points(run), [run], config.cfg, 1, ""))
    return methods


def evaluate_methods(spec: Spec, workspace: Workspace, methods: list, dataset: ImageDataset, say) -> None:
    """Per-class FID at every curve point, the full metric set at each method's final point;
    results already in evaluations.json are reused."""
    device = pick_device(spec.device)
    stored = workspace.read_json("evaluations.json", {})
    settings = dict(num_gen=spec.num_gen, num_gen_per_class=spec.num_gen_per_class, seed=spec.seed)
    if stored.get("settings") != settings:
        stored = {"settings": settings}
    for method in methods:
        for index, point in enumerate(method.points):
            key = f"{point.kimg:g}"
            done = stored.get(method.name, {})
            if key not in done:
                final = index == len(method.points) - 1
                metrics = FINAL_METRICS if final else CURVE_METRICS
                say(f"{method.name}: {', '.join(metrics)} at {key} kimg")
                start = time.time()
                done[key] = _measure(spec, point, metrics, dataset, device)
                say(f"{method.name} at {key} kimg: " + "  ".join(
                    f"{name} {value:.4g}" for name, value in done[key].items() if "/" not in name)
                    + f"  ({time.time() - start:.0f} s)")
                stored[method.name] = done
                workspace.write_json("evaluations.json", stored)
            method.results[key] = done[key]


def _measure(spec: Spec, point: Point, metrics: list, dataset: ImageDataset, device) -> dict:
    generator = point.build(device)
    return compute_metrics(generator, dataset, metrics, spec.num_gen, device=device, seed=spec.seed,
                           num_gen_per_class=spec.num_gen_per_class, z_dim=generator.z_dim, progress=False)


def open_data(spec: Spec) -> ImageDataset:
    if not Path(spec.data).exists():
        raise SpecError(f"data set {spec.data} not found; build it with: {spec.make_data}")
    dataset = ImageDataset(spec.data, use_labels=True)
    if not dataset.has_labels or len(dataset.class_names) < 2:
        raise DatasetError(f"{spec.data} needs at least two labelled classes for a comparison; "
                           "make it from class folders with datasets/make_dataset.py")
    return dataset


def run_matrix(spec: Spec, workdir, say=print) -> tuple:
    """Train and measure everything in `spec`; returns (methods, dataset) for the report."""
    dataset = open_data(spec)
    workspace = Workspace(workdir)
    methods = train_methods(spec, workspace, dataset, say)
    evaluate_methods(spec, workspace, methods, dataset, say)
    return methods, dataset

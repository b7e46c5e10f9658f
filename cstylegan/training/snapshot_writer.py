"""What a run leaves at each snapshot: fakes<kimg>.png, network-snapshot-<kimg>.pt (the one
place a training snapshot is put together) and the --metrics of it."""

from dataclasses import dataclass
from typing import Optional

import torch

from cstylegan.data.dataset import data_size
from cstylegan.metrics.compute import compute_metrics
from cstylegan.metrics.report import plot_fid, write_metric_jsonl
from cstylegan.snapshots import checkpoint
from cstylegan.training.grids import save_fakes
from cstylegan.training.rng_state import capture_rng


@dataclass
class TrainingState:
    """Everything a snapshot holds that changes during training, and what rebuilds the networks."""
    G: torch.nn.Module
    G_ema: torch.nn.Module
    D: torch.nn.Module
    G_opt: torch.optim.Optimizer
    D_opt: torch.optim.Optimizer
    G_kwargs: dict
    D_kwargs: dict
    augment: Optional[torch.nn.Module]
    generators: dict  # the random generators --resume auto restores


class SnapshotWriter:
    def __init__(self, run_dir, config, state: TrainingState, grid: tuple, metric_data, processes, device, say,
                 records, newest=None):
        self.run_dir, self.config, self.state, self.grid = run_dir, config, state, grid
        self.metric_data, self.processes, self.device, self.say = metric_data, processes, device, say
        self.records = records  # RunRecords of the main process (TensorBoard), None on the others
        self.data_size = data_size(config.data)  # --resume auto tells a changed data set by it
        self.newest = newest  # the newest snapshot known to be whole: the resume file until one is written

    def save(self, cur_nimg: int, metrics: bool = True):
        """Write the fakes grid and the snapshot (main process), then, with `metrics`, compute the
        --metrics on every process together. Returns the path (True on the other processes), or
        None when the disk is full: a warning, and the previous snapshot stays intact, as every
        write goes to a temporary file first."""
        name = f"network-snapshot-{cur_nimg // 1000:06d}.pt"
        path = self.run_dir / name if self.processes.main else True
        if self.processes.main:
            try:
                self.save_fakes(cur_nimg)
                checkpoint.save_snapshot(path, self.snapshot(cur_nimg))
                self.say(f"Saved {name}")
            except OSError as error:
                self.say(f"Warning: could not write {name} ({error.strerror or error}); the previous snapshot is "
                         f"intact. Free space in {self.run_dir}; training goes on")
                path = None
        if self.processes.any(path is None, self.device):
            return None
        self.newest = path
        if metrics and self.config.metrics:
            self.evaluate(name, cur_nimg // 1000)
        return path

    def save_fakes(self, cur_nimg: int) -> None:
        grid_z, grid_c, row_labels = self.grid
        path = self.run_dir / f"fakes{cur_nimg // 1000:06d}.png"
        grid = save_fakes(self.state.G_ema, grid_z, grid_c, row_labels, path, self.config.batch)
        self.records.fakes(grid, cur_nimg / 1000)

    def snapshot(self, cur_nimg: int) -> dict:
        """The snapshot's keys (see snapshots/checkpoint.py)."""
        state, config = self.state, self.config
        return dict(
            G=state.G.state_dict(),
            G_ema=state.G_ema.state_dict(),
            D=state.D.state_dict(),
            G_opt=state.G_opt.state_dict(),
            D_opt=state.D_opt.state_dict(),
            G_family=config.generator_family,
            D_backbone=config.dbackbone,
            G_kwargs=state.G_kwargs,
            D_kwargs=state.D_kwargs,
            config=config.to_dict(),
            class_names=config.class_names,
            attributes=config.attributes,
            label_names=config.label_names,
            cur_nimg=cur_nimg,
            data_size=self.data_size,
            ada_p=float(state.augment.p) if state.augment is not None else 0.0,
            rng=capture_rng(state.generators),
        )

    def evaluate(self, snapshot_name: str, kimg: int) -> None:
        """The --metrics of this snapshot, each process generating its share of the images; the
        main process writes metric-<name>.jsonl lines, fid.png and one line each."""
        config, processes = self.config, self.processes
        results = compute_metrics(self.state.G_ema, self.metric_data, config.metrics, config.metrics_num_gen,
                                  device=self.device, batch=config.batch // processes.world, seed=config.seed,
                                  progress=False, processes=processes, mirror=bool(config.mirror),
                                  label_space=self.metric_data.label_space if config.cond else None)
        if not processes.main:
            return
        self.say("Metrics: " + "  ".join(f"{key} {value:.4g}" for key, value in results.items()))
        record_metrics(self.run_dir, results, kimg, snapshot_name, dict(num_gen=config.metrics_num_gen, seed=config.seed),
                       processes.world, any(name.startswith("fid") for name in config.metrics), self.say)
        self.records.metrics(results, kimg)


def record_metrics(run_dir, results, kimg, snapshot_name: str, settings: dict, num_gpus: int, fid_plot: bool,
                   say) -> None:
    """metric-<name>.jsonl lines and fid.png; a full disk costs them and a warning, not the
    run (the numbers are in the log line said before)."""
    try:
        write_metric_jsonl(run_dir, results, kimg, snapshot_name, settings=settings, num_gpus=num_gpus)
        if fid_plot:
            plot_fid(run_dir)
    except OSError as error:
        say(f"Warning: could not write the metrics of {snapshot_name} ({error.strerror or error}); they are in "
            f"log.txt. Free space in {run_dir}; training goes on")

"""One training run of a (class-conditional) StyleGAN2, start to finish.

Read top to bottom: `train` opens the run (data, resume file, run folder, networks,
optimisers, augmentation, the phase table); `Run.loop` then repeats one minibatch of the
phases (G main, G path length every 4th, D main, D R1 every 16th, phases.py), updates
G_ema, and once per tick prints a line, appends to stats.jsonl, and now and then writes a
picture and a snapshot (snapshot_writer.py).
"""

import contextlib
import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from cstylegan.config import ConfigError, TrainConfig, save_yaml
from cstylegan.data.dataset import ImageDataset
from cstylegan.metrics.compute import PER_CLASS_METRICS, equivariance_names, parse_metrics
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.inception import find_inception
from cstylegan.metrics.nvlabs_names import NVLABS_METRICS
from cstylegan.metrics.precision_recall import NEIGHBOURS
from cstylegan.runtime.distributed import Processes, start_processes, stop_processes
from cstylegan.runtime.errors import UserError
from cstylegan.snapshots import checkpoint
from cstylegan.training.ada import AdaptiveP
from cstylegan.training.augment import augment_pipe
from cstylegan.training.batches import FakeLabels, Minibatches, infinite_batches
from cstylegan.training.build import build_networks
from cstylegan.training.grids import GRID_COLUMNS, grid_labels, save_reals
from cstylegan.training.loss import StyleGAN2Loss
from cstylegan.training.nvlabs_options import save_training_options
from cstylegan.training.phases import build_phases, optimizer, run_phases, update_ema
from cstylegan.training.progress import Progress, format_seconds, progress_line
from cstylegan.training.resume import Resume, start_nimg
from cstylegan.training.run_records import LineFile, RunRecords
from cstylegan.training.skipped_steps import SkippedSteps
from cstylegan.training.snapshot_writer import SnapshotWriter, TrainingState
from cstylegan.training.stop_signals import StopRequest

NONFINITE_LIMIT = 8  # minibatches in a row with a NaN/inf loss before the run stops
# Minibatches between the loop's reads of device or other processes' state (skipped-step
# counts, stop requests): each read waits for the device, or for every process.
READ_INTERVAL = NONFINITE_LIMIT


class TrainingDiverged(UserError):
    """Losses stayed non-finite; the message names the snapshot of the last good state and what to change."""


def train(config: TrainConfig, log=print) -> Path:
    """Run training as configured (in each process, when started by torchrun); return the run folder."""
    processes, device = start_processes(config.device)
    try:
        with contextlib.ExitStack() as files:
            return open_run(config, log, processes, device, files).loop()
    finally:
        stop_processes()


def open_run(config: TrainConfig, log, processes: Processes, device, files: contextlib.ExitStack) -> "Run":
    """Everything before the first minibatch, in order; the TensorBoard writer joins `files`."""
    if not processes.main:
        log = lambda line: None  # noqa: E731 - only the main process talks
    config, dataset, resume, cur_nimg = open_data(config, processes, log)  # checks every setting first
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.backends.cudnn.benchmark = not config.nobench
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = config.allow_tf32
    run_dir, say = open_log(config, processes, log)
    say(f"Run folder: {run_dir}")
    say(f"Data: {config.data}, {len(dataset)} images at {dataset.resolution}px" + describe_labels(dataset, config))
    G, G_ema, D, G_kwargs, D_kwargs = build_networks(config, dataset.c_dim, resume, say)
    config = config.with_architecture(G_kwargs)
    if processes.main:
        save_yaml(config, run_dir / "config.yaml")
        save_training_options(config, G_kwargs, D_kwargs, processes.world, run_dir)
    G, D = G.train().to(device), D.train().to(device)
    G_ema = G_ema.eval().requires_grad_(False).to(device)
    processes.broadcast_modules(G, D, G_ema)
    G_params, D_params, G_opt, D_opt = open_optimisers(config, G, D, resume, G_kwargs, dataset.label_space, say)
    batch_gpu = config.per_pass_batch(processes.world)
    say_networks(say, config, G, D, D_params, device, processes, batch_gpu)
    augment, ada = open_augmentation(config, resume, processes, device, say)

    loss = StyleGAN2Loss(G, D, augment_pipe=augment, r1_gamma=config.gamma, style_mixing_prob=config.style_mixing_prob,
                         pl_weight=config.pl_weight, pl_batch_shrink=config.pl_batch_shrink, pl_decay=config.pl_decay,
                         blur_init_sigma=config.blur_init_sigma, blur_fade_kimg=config.blur_fade_kimg,
                         transition_kimg=config.transition_kimg, ds_weight=config.ds_weight, ds_tau=config.ds_tau,
                         ds_pool=config.ds_pool)
    phases = build_phases(config, loss, G_params, D_params, G_opt, D_opt)
    minibatches, generators = open_sampling(config, dataset, resume, cur_nimg, processes, device, batch_gpu, G.z_dim,
                                            say)
    state = TrainingState(G, G_ema, D, G_opt, D_opt, G_kwargs, D_kwargs, augment, generators)

    grid_c, row_labels = grid_labels(dataset.label_space, GRID_COLUMNS, device, dataset.labels, config.seed)
    grid_z = torch.from_numpy(np.random.RandomState(config.seed).randn(len(grid_c), G.z_dim)).float().to(device)
    metric_data = ImageDataset(config.data, use_labels=config.cond, labels=config.labels) if config.metrics else None
    records = RunRecords(run_dir, say, files) if processes.main else None
    writer = SnapshotWriter(run_dir, config, state, (grid_z, grid_c, row_labels), metric_data, processes, device, say,
                            records, newest=resume.path if resume else None)
    if processes.main:
        save_reals(dataset, run_dir / "reals.png", GRID_COLUMNS, config.seed)
        writer.save_fakes(cur_nimg)
    return Run(config, processes, device, run_dir, say, records, state, loss, phases, ada, minibatches, writer,
               Progress(cur_nimg, int(config.kimg * 1000), config.tick))


def open_data(config: TrainConfig, processes: Processes, log) -> tuple:
    """(the config resolved for this data and resume file, the data set, the Resume or None, the starting image count)."""
    config.validate_before_data()
    dataset = ImageDataset(config.data, use_labels=config.cond, xflip=config.mirror, labels=config.labels,
                           max_size=config.subset, seed=config.seed, class_fraction=config.class_fraction)
    resume = Resume.find(config, log, dataset)
    cur_nimg = start_nimg(config, resume)
    config = dataclasses.replace(config.resolve(dataset.resolution, processes.world),
                                 resume=str(resume.path) if resume else None)
    config.img_channels = dataset.num_channels
    config.class_names = list(dataset.class_names) if config.cond else []
    config.attributes = {name: list(values) for name, values in dataset.label_space.attributes.items()}
    config.label_names = list(dataset.label_space.vector_names)
    check_metrics(config, len(dataset))
    return config, dataset, resume, cur_nimg


def open_log(config: TrainConfig, processes: Processes, log) -> tuple:
    """(the new run folder, say): say(line) prints a line and appends it to the folder's log.txt."""
    run_dir = new_run_dir(Path(config.outdir), config.description()) if processes.main else None
    log_file = LineFile(run_dir / "log.txt", log) if processes.main else None

    def say(line: str) -> None:
        if processes.main:
            log(line)
            log_file.append(line)

    return run_dir, say


def open_optimisers(config: TrainConfig, G, D, resume: Optional[Resume], G_kwargs: dict, label_space, say) -> tuple:
    """(G's trained parameters, D's, G's Adam, D's Adam), their states restored from a resume
    file of the same networks and labels."""
    # Freeze-D leaves the first layers' requires_grad False: only the rest is ever trained.
    G_params = [p for p in G.parameters() if p.requires_grad]
    D_params = [p for p in D.parameters() if p.requires_grad]
    G.requires_grad_(False)
    D.requires_grad_(False)
    G_opt = optimizer(G_params, config.glr, config.G_reg_interval if config.pl_weight > 0 else None)
    D_opt = optimizer(D_params, config.dlr, config.D_reg_interval)
    if resume and resume.restore_optimisers(G_opt, D_opt, G_kwargs, label_space):
        say("Restored optimiser states")
    elif resume and "G_opt" in resume.snapshot:
        say("Optimiser states not restored: the networks or labels differ from the file's; Adam starts afresh")
    return G_params, D_params, G_opt, D_opt


def open_sampling(config: TrainConfig, dataset, resume: Optional[Resume], cur_nimg: int, processes: Processes,
                  device, batch_gpu: int, z_dim: int, say) -> tuple:
    """(the Minibatches, {name: generator} of the random streams a snapshot keeps); a continued
    run takes them up where its snapshot left them."""
    # A continued run draws a new data order, not the one it started with.
    batches = infinite_batches(dataset, config.batch, config.workers, config.seed + cur_nimg, processes)
    fake_labels = FakeLabels(dataset, device, config.seed, config.label_mix)
    # Every process draws the global batch of latents alike and keeps its share.
    latents = torch.Generator(device=device).manual_seed(config.seed)
    generators = {"fake_labels": fake_labels.generator, "latents": latents}
    if resume and resume.continuing:
        restored = ["weights"] + (["ADA p"] if config.aug == "ada" else [])
        if resume.restore_random_state(generators):
            restored.append("random state")
        say(f"Continuing {resume.path} at kimg {cur_nimg / 1000:g}: {' and '.join(restored)} restored"
            + ("" if "random state" in restored else " (no random state in that file)")
            + ("" if config.aug == "ada" else f" (--aug {config.aug}: no ADA p to continue)"))
    return Minibatches(batches, fake_labels, latents, config.batch, batch_gpu, z_dim, device, processes), generators


def describe_labels(dataset, config: TrainConfig) -> str:
    if not config.cond:
        return ", unconditional"
    if config.label_names:
        return f", vector labels of {len(config.label_names)} dimensions: {', '.join(config.label_names)}"
    described = f", {len(config.class_names)} classes: {', '.join(config.class_names)}"
    if config.attributes:
        described += ("; labels from the attributes " + ", ".join(f"{name} ({len(values)})" for name, values
                                                           in config.attributes.items())
                      + f", fakes' labels drawn as --label-mix {config.label_mix}")
        unseen = [name for name in dataset.label_space.class_names if name not in dataset.label_space.seen]
        described += f"; not in the data: {', '.join(unseen)}" if unseen else ""
    return described


def check_metrics(config: TrainConfig, num_reals: int) -> None:
    """Refuse metrics this run cannot compute, before it starts rather than at its first
    snapshot; NVlabs' `none` becomes no metrics."""
    config.metrics = parse_metrics(config.metrics) if config.metrics else []
    if config.metrics:
        per_class = [m for m in config.metrics if m in PER_CLASS_METRICS]
        if per_class and not config.cond:
            raise MetricError(f"--metrics {','.join(per_class)} needs --cond and labelled data")
        equivariance = equivariance_names(config.metrics)
        if equivariance and config.generator_family != "stylegan3":
            raise MetricError(f"--metrics {','.join(equivariance)} measures how a StyleGAN3 picture follows its moved "
                              f"input grid, which {config.arch} does not have; use --cfg stylegan3-t or stylegan3-r, "
                              "or drop them")
        if config.label_names:
            raise MetricError("--metrics on vector labels is not supported yet (the metrics draw fakes per class); "
                              "drop --metrics")
        check_precision_recall(config, num_reals)
        if len(equivariance) < len(config.metrics):  # every other metric compares Inception features
            find_inception()


def check_precision_recall(config: TrainConfig, num_reals: int) -> None:
    """Precision/recall puts a ball through each point's k-th nearest neighbour: each side needs
    more than k images (our pr draws --metrics-num-gen fakes; NVlabs' pr50k3 its own 50k)."""
    ours = "pr" in config.metrics
    nvlabs = any(m in NVLABS_METRICS and NVLABS_METRICS[m].metric == "pr" for m in config.metrics)
    if ours and config.metrics_num_gen <= NEIGHBOURS:
        raise MetricError(f"--metrics pr needs more than k={NEIGHBOURS} fakes; give --metrics-num-gen "
                          f"{NEIGHBOURS + 1} or more")
    if (ours or nvlabs) and num_reals <= NEIGHBOURS:
        raise MetricError(f"precision/recall needs more than k={NEIGHBOURS} real images, and {config.data} holds "
                          f"{num_reals}; drop it from --metrics or give more data")


def say_networks(say, config, G, D, D_params, device, processes, batch_gpu: int) -> None:
    num_params = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())
    say(f"Networks: G {num_params[0]:,} parameters, D {num_params[1]:,}"
        + (f" ({num_params[1] - sum(p.numel() for p in D_params):,} frozen by --freezed {config.freezed})"
           if config.freezed else "")
        + f"; device {device}"
        + (f", {processes.world} processes x {config.batch // processes.world} images" if processes.world > 1 else "")
        + (f" in passes of {batch_gpu}" if batch_gpu < config.batch // processes.world else ""))


def open_augmentation(config: TrainConfig, resume: Optional[Resume], processes, device, say) -> tuple:
    """(the augmentation pipe or None, the ADA controller or None); ADA continues from the resume file's p."""
    if config.aug == "noaug":
        return None, None
    augment = augment_pipe(config.augpipe).train().requires_grad_(False).to(device)
    ada = None
    if config.aug == "fixed":
        augment.p.fill_(config.p)
    else:
        augment.p.fill_(resume.ada_p if resume else 0.0)
        ada = AdaptiveP(augment, config.target, config.batch, config.ada_interval, config.ada_kimg,
                        reduce_mean=processes.mean)
    say(f"Augmentation: {config.aug} {config.augpipe}, p {float(augment.p):.3f}"
        + (f", target {config.target}, ada_kimg {config.ada_kimg:g}" if ada else ""))
    return augment, ada


def next_run_dir(outdir: Path, description: str) -> Path:
    """`<outdir>/<00000>-<description>`, numbered one past the highest existing run."""
    existing = [p.name.split("-")[0] for p in outdir.iterdir() if p.is_dir()] if outdir.is_dir() else []
    numbers = [int(number) for number in existing if number.isdigit()]
    return outdir / f"{max(numbers, default=-1) + 1:05d}-{description}"


def new_run_dir(outdir: Path, description: str) -> Path:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        run_dir = next_run_dir(outdir, description)
        run_dir.mkdir()
    except OSError as error:
        raise ConfigError(f"--outdir {outdir}: cannot make a run folder there ({error.strerror or error}); give a "
                          "folder you can write to") from None
    return run_dir


@dataclasses.dataclass
class Run:
    """An opened run: what the loop needs, and the loop."""
    config: TrainConfig
    processes: Processes
    device: torch.device
    run_dir: Path
    say: Callable
    records: Optional[RunRecords]  # stats.jsonl and TensorBoard; the main process's only
    state: TrainingState
    loss: StyleGAN2Loss
    phases: list
    ada: object
    minibatches: Minibatches
    writer: SnapshotWriter  # knows the newest snapshot that is whole, named when a later one fails
    progress: Progress

    def loop(self) -> Path:
        config, progress = self.config, self.progress
        self.say(f"Training for {config.kimg:g} kimg (batch {config.batch}, gamma {config.gamma:g}, "
                 f"lr {config.glr:g})...")
        skipped_steps = SkippedSteps(self.device)
        with StopRequest() as stop:
            while not progress.done:
                skipped_steps.record(self.minibatch())
                if progress.tick_ends or progress.batch_idx % READ_INTERVAL == 0:
                    self.check_finite(skipped_steps)
                    if self.processes.any(stop.requested is not None, self.device):
                        self.stop(stop)
                        return self.run_dir
                if progress.tick_ends:
                    self.end_tick()
        self.say(f"Done: {progress.cur_nimg / 1000:g} kimg in {format_seconds(progress.elapsed)}. "
                 f"Run folder: {self.run_dir}")
        return self.run_dir

    def minibatch(self) -> torch.Tensor:
        """One minibatch of every phase due, then the EMA; 1.0 if every phase stepped (on the device)."""
        config, progress = self.config, self.progress
        self.loss.cur_nimg = progress.cur_nimg
        stepped = run_phases(self.phases, progress.batch_idx, self.minibatches.reals(), self.minibatches.fakes,
                             self.minibatches.num_chunks, self.processes, self.add_stats)
        update_ema(self.state.G_ema, self.state.G, config, progress.cur_nimg)
        progress.advance(config.batch)
        if self.ada is not None:
            self.ada.maybe_adjust(progress.batch_idx)
        return stepped

    def add_stats(self, stats: dict) -> None:
        self.progress.add_stats(stats)
        if self.ada is not None and "Loss/signs/real" in stats:
            self.ada.observe(stats["Loss/signs/real"])

    def check_finite(self, skipped_steps: SkippedSteps) -> None:
        """Warn once per run of reads with skipped minibatches; stop after NONFINITE_LIMIT in a row."""
        kimg = self.progress.cur_nimg / 1000
        skipped, longest, starts = skipped_steps.read()
        if starts:
            self.say(f"Warning: a non-finite loss in {skipped} minibatch(es) up to kimg {kimg:g}; "
                     f"{'that step was' if skipped == 1 else 'those steps were'} skipped")
        if longest >= NONFINITE_LIMIT:
            path = self.writer.save(self.progress.cur_nimg, metrics=False) or self.writer.newest
            raise TrainingDiverged(
                f"losses were NaN or infinite in {longest} minibatches in a row (the limit is {NONFINITE_LIMIT}) by "
                f"kimg {kimg:g}; no bad step was applied, so {path} holds the last good weights. Try a larger "
                f"--gamma or a smaller --glr/--dlr, then --resume {path}")

    def stop(self, stop: StopRequest) -> None:
        """Ctrl-C or SIGTERM here or in another process: a snapshot, and how to continue."""
        stop.requested = stop.requested or "a signal to another process"
        if self.writer.save(self.progress.cur_nimg, metrics=False) is None:
            raise checkpoint.CheckpointError(f"stopped by {stop.requested}, but the snapshot could not be "
                                             f"written; the last one is {self.writer.newest}")
        self.say(f"Stopped by {stop.requested} at kimg {self.progress.cur_nimg / 1000:g}. Continue with:\n"
                 f"  python train.py --config {self.run_dir / 'config.yaml'} --resume auto")

    def end_tick(self) -> None:
        """The tick's record and progress line; a snapshot every --snap ticks and at the end."""
        config, progress = self.config, self.progress
        record = progress.end_tick(self.device, self.processes, self.tick_readings())
        if self.processes.main:
            self.records.tick(record)
        self.say(progress_line(record))
        if progress.done or progress.tick % config.snap == 0:
            saved = self.writer.save(progress.cur_nimg)
            if saved is None and progress.done:
                raise checkpoint.CheckpointError(f"the final snapshot could not be written to {self.run_dir}; the "
                                                 f"last one is {self.writer.newest}. Free space and continue with "
                                                 "--resume auto")

    def tick_readings(self) -> dict:
        augment = self.state.augment
        readings = {"Progress/augment": float(augment.p) if augment is not None else 0.0}  # NVlabs: always, 0 without
        if self.ada is not None:
            readings["Progress/ada_rt"] = float(self.ada.last_rt)
        if self.config.blur_fade_kimg:
            readings["Progress/blur_sigma"] = self.loss.blur_sigma()
        if self.config.transition_kimg is not None:
            readings["Progress/label_weight"] = self.loss.label_weight()
        return readings

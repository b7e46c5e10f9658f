"""One training run of a (class-conditional) StyleGAN2, start to finish.

Read top to bottom: set up data, networks and optimisers; then repeat one minibatch of
the four phases (G main, G path length every 4th, D main, D R1 every 16th), update
G_ema, and once per tick print a line, append to stats.jsonl, and now and then write
a picture and a snapshot.
"""

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from cstylegan.config import CONTINUE_RESUME, TrainConfig, save_yaml
from cstylegan.data.dataset import ImageDataset
from cstylegan.generation.image_grid import save_grid, to_uint8
from cstylegan.metrics.compute import PER_CLASS_METRICS, compute_metrics, parse_metrics
from cstylegan.metrics.errors import MetricError
from cstylegan.metrics.report import plot_fid, write_metric_jsonl
from cstylegan.networks import DISCRIMINATORS, GENERATORS
from cstylegan.networks.vit_discriminator import load_backbone_weights
from cstylegan.runtime.devices import peak_memory_gb
from cstylegan.runtime.distributed import Processes, start_processes, stop_processes
from cstylegan.runtime.errors import UserError
from cstylegan.snapshots import checkpoint
from cstylegan.snapshots.class_transfer import transfer_state
from cstylegan.training.ada import AdaptiveP
from cstylegan.training.augment import augment_pipe
from cstylegan.training.loss import StyleGAN2Loss
from cstylegan.training.rng_state import capture_rng, restore_rng
from cstylegan.training.skipped_steps import SkippedSteps
from cstylegan.training.stop_signals import StopRequest

GRID_COLUMNS = 8
# (label, stats key) of the optional numbers on a progress line.
TICK_EXTRAS = [("r1", "Loss/r1_penalty"), ("pl", "Loss/pl_penalty"), ("p", "augment_p"), ("rt", "ada_rt"),
               ("blur", "blur_sigma"), ("labels", "label_weight")]
NONFINITE_LIMIT = 8  # minibatches in a row with a NaN/inf loss before the run stops
# Minibatches between the loop's reads of device or other processes' state (skipped-step
# counts, stop requests): each read waits for the device, or for every process.
READ_INTERVAL = NONFINITE_LIMIT


class TrainingDiverged(UserError):
    """Losses stayed non-finite; the message names the snapshot of the last good state and what to change."""


def new_run_dir(outdir: Path, description: str) -> Path:
    """`<outdir>/<00000>-<description>`, numbered one past the highest existing run."""
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name.split("-")[0]) for p in outdir.iterdir() if p.is_dir() and p.name.split("-")[0].isdigit()]
    run_dir = outdir / f"{max(numbers, default=-1) + 1:05d}-{description}"
    run_dir.mkdir()
    return run_dir


class GlobalBatchSlices(torch.utils.data.Sampler):
    """This process's slice of each global minibatch; the global ones are drawn (with
    replacement) by a generator seeded alike in every process, so the processes together
    see exactly what one process with the whole batch would."""

    def __init__(self, size: int, batch: int, processes: Processes, seed: int):
        self.size, self.batch, self.processes, self.seed = size, batch, processes, seed

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            yield self.processes.share(torch.randint(self.size, [self.batch], generator=generator)).tolist()


def infinite_batches(dataset, batch_size: int, workers: int, seed: int, processes: Processes = Processes()):
    """Shuffled minibatches forever (this process's share), uint8 kept as uint8 until the device."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=GlobalBatchSlices(len(dataset), batch_size, processes, seed),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )
    yield from loader


class FakeLabels:
    """Labels for generated images, drawn from the data's own label distribution."""

    def __init__(self, dataset, device, seed: int):
        self.labels = torch.as_tensor(np.stack(dataset.labels), dtype=torch.float32, device=device)
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def sample(self, n: int) -> torch.Tensor:
        index = torch.randint(len(self.labels), [n], device=self.labels.device, generator=self.generator)
        return self.labels[index]


def grid_labels(class_names, c_dim: int, columns: int, device):
    """One row per class (or 4 unlabelled rows): labels and row names for fakes*.png."""
    if c_dim == 0:
        return torch.zeros([4 * columns, 0], device=device), None
    eye = torch.eye(c_dim, device=device)
    return eye.repeat_interleave(columns, dim=0), list(class_names)


def save_reals(dataset, path: Path, columns: int, seed: int) -> None:
    """A sample of training images, one row per class as in fakes*.png."""
    rng = np.random.default_rng(seed)
    if dataset.c_dim == 0:
        picks = rng.choice(len(dataset), size=4 * columns, replace=len(dataset) < 4 * columns)
        row_labels = None
    else:
        class_of = np.argmax(np.stack(dataset.labels), axis=1)
        picks = [
            i
            for k in range(dataset.c_dim)
            for i in rng.choice(np.flatnonzero(class_of == k), size=columns, replace=(class_of == k).sum() < columns)
        ]
        row_labels = list(dataset.class_names)
    images = np.stack([np.asarray(dataset[int(i)][0]).transpose(1, 2, 0) for i in picks])
    save_grid(images, path, columns, row_labels)


@torch.no_grad()
def save_fakes(G_ema, grid_z, grid_c, row_labels, path: Path, batch: int) -> None:
    images = torch.cat(
        [G_ema(z, c, noise_mode="const") for z, c in zip(grid_z.split(batch), grid_c.split(batch))]
    )
    save_grid(to_uint8(images), path, GRID_COLUMNS, row_labels)


def optimizer(params, lr: float, reg_interval) -> torch.optim.Adam:
    """Adam (0, 0.99) with the lazy-regularisation correction of lr and betas (none when
    `reg_interval` is None, i.e. the network has no separate regularisation step)."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


def set_requires_grad(params, flag: bool) -> None:
    for param in params:
        param.requires_grad_(flag)


def phase_step(params, opt, run_chunk, num_chunks: int, processes: Processes) -> tuple:
    """One optimiser step of one phase: back-propagate each chunk of this process's share
    (`run_chunk(i)` -> loss, stats), average the gradients over processes, make them
    finite, step. If any process had a non-finite loss, every gradient is zeroed instead,
    which with Adam's beta1 = 0 leaves the weights exactly as they were (only Adam's
    second-moment estimate decays one step). The flag stays on the device: reading it here
    would stall a GPU every phase. Returns (1.0 if stepped else 0.0 as a 0-dim tensor,
    [stats of each chunk])."""
    opt.zero_grad(set_to_none=True)
    losses, stats = [], []
    for index in range(num_chunks):
        loss, chunk_stats = run_chunk(index)
        (loss / num_chunks).backward()
        losses.append(loss.detach())
        stats.append(chunk_stats)
    finite = processes.all_finite(torch.stack(losses))
    processes.average_gradients(params)
    grads = [param.grad for param in params if param.grad is not None]
    for grad in grads:
        torch.nan_to_num_(grad, nan=0, posinf=1e5, neginf=-1e5)
    if grads:
        torch._foreach_mul_(grads, finite)
    opt.step()
    return finite, stats


def step(params, opt, loss) -> torch.Tensor:
    """phase_step for one already computed loss in a single process (benchmarks)."""
    return phase_step(params, opt, lambda index: (loss, {}), 1, Processes())[0]


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


# Precision and memory layout are choices of each run (--fp32, --channels-last), not of the weights.
RUN_CHOICES = ("num_fp16_res", "fp16_channels_last")


def same_architecture(G_kwargs: dict, other: dict) -> bool:
    return ({k: v for k, v in G_kwargs.items() if k not in RUN_CHOICES}
            == {k: v for k, v in other.items() if k not in RUN_CHOICES})


def build_networks(config: TrainConfig, c_dim: int, resume, say) -> tuple:
    """G, G_ema, D and their constructor arguments; from a resume file, its own architecture
    with this data's classes, the weights carried over by `transfer_state`."""
    G_kwargs, D_kwargs = config.network_kwargs(c_dim)
    if resume is not None:
        family = resume["G_family"]
        if family != config.generator_family:
            raise checkpoint.CheckpointError(
                f"{config.resume} is a {family} network but --cfg {config.cfg} trains {config.generator_family}; "
                + ("pass --cfg stylegan3-t or stylegan3-r" if family == "stylegan3" else "pass a StyleGAN2 --cfg such as auto")
            )
        if resume["G_kwargs"]["img_resolution"] != config.resolution:
            raise checkpoint.CheckpointError(
                f"{config.resume} makes {resume['G_kwargs']['img_resolution']} px images but the data is "
                f"{config.resolution} px; make the data set at {resume['G_kwargs']['img_resolution']} px"
            )
        run_choices = {key: G_kwargs[key] for key in RUN_CHOICES if key in G_kwargs}
        G_kwargs = {**resume["G_kwargs"], "c_dim": c_dim, **run_choices}
        if "D" in resume:
            D_kwargs = {**resume["D_kwargs"], "c_dim": c_dim, "num_fp16_res": config.num_fp16_res,
                        "block_kwargs": D_kwargs["block_kwargs"],
                        "epilogue_kwargs": {**resume["D_kwargs"].get("epilogue_kwargs", {}), **D_kwargs["epilogue_kwargs"]}}
    if resume is not None and "D" in resume and resume["D_backbone"] != config.dbackbone:
        raise checkpoint.CheckpointError(f"{config.resume} has a {resume['D_backbone']} discriminator but "
                                         f"this run asks for --dbackbone {config.dbackbone}; pass --dbackbone "
                                         f"{resume['D_backbone']}")
    G = GENERATORS[config.generator_family](**G_kwargs)
    D = DISCRIMINATORS[config.dbackbone](**D_kwargs)
    if config.dbackbone_weights and resume is None:
        say(f"ViT backbone from {config.dbackbone_weights}: {len(load_backbone_weights(D, config.dbackbone_weights))} tensors")
    G_ema = copy.deepcopy(G)
    if resume is not None:
        source_classes = resume["class_names"]
        report = []
        sources = {"G": resume.get("G", resume["G_ema"]), "G_ema": resume["G_ema"], "D": resume.get("D")}
        for module, key in ((G, "G"), (G_ema, "G_ema"), (D, "D")):
            if sources[key] is not None:
                report += transfer_state(sources[key], source_classes, module, config.class_names, key)
            else:
                report.append(f"{key}: new, from --cfg (the resume file has no {key})")
        say(f"Resumed weights from {config.resume}" + ("" if report else " (every tensor copied as it was)"))
        for line in report:
            say(f"  {line}")
    return G, G_ema, D, G_kwargs, D_kwargs


def train(config: TrainConfig, log=print) -> Path:
    """Run training as configured (in each process, when started by torchrun); return the run folder."""
    processes, device = start_processes(config.device)
    try:
        return _train(config, log, processes, device)
    finally:
        stop_processes()


def _train(config: TrainConfig, log, processes: Processes, device) -> Path:
    if not processes.main:
        log = lambda line: None  # noqa: E731 - only the main process talks
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not config.fp32

    dataset = ImageDataset(config.data, use_labels=config.cond, xflip=config.mirror)
    continuing = config.resume in CONTINUE_RESUME
    if continuing:
        resume_path, resume = checkpoint.newest_valid_snapshot(config.outdir, log)
        if resume is None:
            log(f"--resume {config.resume}: no snapshot under {config.outdir}/ yet; starting from scratch")
    else:
        resume_path = config.resume
        resume = checkpoint.load_snapshot(config.resume) if config.resume else None
    config = dataclasses.replace(config.resolve(dataset.resolution, processes.world),
                                 resume=str(resume_path) if resume else None)
    config.class_names = list(dataset.class_names) if config.cond else []
    if config.metrics:
        per_class = [m for m in parse_metrics(config.metrics) if m in PER_CLASS_METRICS]
        if per_class and not config.cond:
            raise MetricError(f"--metrics {','.join(per_class)} needs --cond and labelled data")
    run_dir = new_run_dir(Path(config.outdir), config.description()) if processes.main else None
    log_file = open(run_dir / "log.txt", "a") if processes.main else None

    def say(line: str) -> None:
        if processes.main:
            log(line)
            log_file.write(line + "\n")
            log_file.flush()

    say(f"Run folder: {run_dir}")
    say(
        f"Data: {config.data}, {len(dataset)} images at {dataset.resolution}px"
        + (f", {dataset.c_dim} classes: {', '.join(config.class_names)}" if config.cond else ", unconditional")
    )
    G, G_ema, D, G_kwargs, D_kwargs = build_networks(config, dataset.c_dim, resume, say)
    config = config.with_architecture(G_kwargs)
    if processes.main:
        save_yaml(config, run_dir / "config.yaml")
    G = G.train().to(device)
    D = D.train().to(device)
    G_ema = G_ema.eval().requires_grad_(False).to(device)
    processes.broadcast_modules(G, D, G_ema)
    batch_gpu = config.per_pass_batch(processes.world)
    num_chunks = config.batch // processes.world // batch_gpu
    # Freeze-D leaves the first layers' requires_grad False: only the rest is ever trained.
    G_params = [p for p in G.parameters() if p.requires_grad]
    D_params = [p for p in D.parameters() if p.requires_grad]
    G.requires_grad_(False)
    D.requires_grad_(False)
    G_opt = optimizer(G_params, config.glr, config.G_reg_interval if config.pl_weight > 0 else None)
    D_opt = optimizer(D_params, config.dlr, config.D_reg_interval)
    cur_nimg = 0
    if resume is not None:
        cur_nimg = int(resume.get("cur_nimg", 0))
        if "G_opt" in resume and same_architecture(resume["G_kwargs"], G_kwargs) and resume["class_names"] == config.class_names:
            G_opt.load_state_dict(resume["G_opt"])
            D_opt.load_state_dict(resume["D_opt"])
            say("Restored optimiser states")
    if config.nkimg is not None and not continuing:
        cur_nimg = int(config.nkimg * 1000)
    num_params = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())
    say(f"Networks: G {num_params[0]:,} parameters, D {num_params[1]:,}"
        + (f" ({num_params[1] - sum(p.numel() for p in D_params):,} frozen by --freezed {config.freezed})" if config.freezed else "")
        + f"; device {device}"
        + (f", {processes.world} processes x {config.batch // processes.world} images" if processes.world > 1 else "")
        + (f" in passes of {batch_gpu}" if num_chunks > 1 else ""))

    augment = None
    ada = None
    if config.aug != "noaug":
        augment = augment_pipe(config.augpipe).train().requires_grad_(False).to(device)
        if config.aug == "fixed":
            augment.p.fill_(config.p)
        else:
            augment.p.fill_(float(resume.get("ada_p", 0.0)) if resume is not None else 0.0)
            ada = AdaptiveP(augment, config.target, config.batch, config.ada_interval, config.ada_kimg,
                            reduce_mean=processes.mean)
        say(f"Augmentation: {config.aug} {config.augpipe}, p {float(augment.p):.3f}"
            + (f", target {config.target}, ada_kimg {config.ada_kimg:g}" if ada else ""))

    loss = StyleGAN2Loss(
        G,
        D,
        augment_pipe=augment,
        r1_gamma=config.gamma,
        style_mixing_prob=config.style_mixing_prob,
        pl_weight=config.pl_weight,
        pl_batch_shrink=config.pl_batch_shrink,
        pl_decay=config.pl_decay,
        blur_init_sigma=config.blur_init_sigma,
        blur_fade_kimg=config.blur_fade_kimg,
        transition_kimg=config.transition_kimg,
    )
    # A continued run draws a new data order, not the one it started with.
    batches = infinite_batches(dataset, config.batch, config.workers, config.seed + cur_nimg, processes)
    metric_data = ImageDataset(config.data, use_labels=config.cond) if config.metrics else None
    fake_labels = FakeLabels(dataset, device, config.seed)
    # Every process draws the global batch of latents alike and keeps its share.
    latents = torch.Generator(device=device).manual_seed(config.seed)
    generators = {"fake_labels": fake_labels.generator, "latents": latents}
    if continuing and resume is not None:
        if "rng" in resume:
            restore_rng(resume["rng"], generators)
        say(f"Continuing {resume_path} at kimg {cur_nimg / 1000:g}: weights, optimisers, ADA p"
            + (" and random state restored" if "rng" in resume else " restored (no random state in that file)"))

    grid_c, row_labels = grid_labels(config.class_names, dataset.c_dim, GRID_COLUMNS, device)
    grid_z = torch.from_numpy(np.random.RandomState(config.seed).randn(len(grid_c), G.z_dim)).float().to(device)
    if processes.main:
        save_reals(dataset, run_dir / "reals.png", GRID_COLUMNS, config.seed)
        save_fakes(G_ema, grid_z, grid_c, row_labels, run_dir / f"fakes{cur_nimg // 1000:06d}.png", config.batch)

    def save_snapshot(metrics: bool = True):
        """Write the fakes grid and the snapshot (main process), then, with `metrics`, compute the
        --metrics on every process together. Returns the path (True on the other processes), or
        None when the disk is full: a warning, and the previous snapshot stays intact, as every
        write goes to a temporary file first."""
        name = f"network-snapshot-{cur_nimg // 1000:06d}.pt"
        path = run_dir / name if processes.main else True
        if processes.main:
            try:
                save_fakes(G_ema, grid_z, grid_c, row_labels, run_dir / f"fakes{cur_nimg // 1000:06d}.png", config.batch)
                write_snapshot(path)
                say(f"Saved {name}")
            except OSError as error:
                say(f"Warning: could not write {name} ({error.strerror or error}); the previous snapshot is "
                    f"intact. Free space in {run_dir}; training goes on")
                path = None
        if processes.any(path is None, device):
            return None
        if metrics and config.metrics:
            evaluate(name, cur_nimg // 1000)
        return path

    def write_snapshot(path: Path) -> None:
        checkpoint.save_snapshot(
            path,
            dict(
                G=G.state_dict(),
                G_ema=G_ema.state_dict(),
                D=D.state_dict(),
                G_opt=G_opt.state_dict(),
                D_opt=D_opt.state_dict(),
                G_family=config.generator_family,
                D_backbone=config.dbackbone,
                G_kwargs=G_kwargs,
                D_kwargs=D_kwargs,
                config=config.to_dict(),
                class_names=config.class_names,
                cur_nimg=cur_nimg,
                ada_p=float(augment.p) if augment is not None else 0.0,
                rng=capture_rng(generators),
            ),
        )

    def evaluate(snapshot_name: str, kimg: int) -> None:
        """The --metrics of this snapshot, each process generating its share of the images; the
        main process writes metric-<name>.jsonl lines, fid.png and one line each."""
        results = compute_metrics(G_ema, metric_data, config.metrics, config.metrics_num_gen, device=device,
                                  batch=config.batch // processes.world, seed=config.seed, progress=False,
                                  processes=processes)
        if not processes.main:
            return
        write_metric_jsonl(run_dir, results, kimg, snapshot_name,
                           settings=dict(num_gen=config.metrics_num_gen, seed=config.seed))
        if any(name.startswith("fid") for name in config.metrics):
            plot_fid(run_dir)
        say("Metrics: " + "  ".join(f"{key} {value:.4g}" for key, value in results.items()))

    say(f"Training for {config.kimg:g} kimg (batch {config.batch}, gamma {config.gamma:g}, lr {config.glr:g})...")
    total_nimg = int(config.kimg * 1000)
    batch_idx = 0
    tick = 0
    tick_stats: dict = {}
    start_time = tick_start_time = time.time()
    tick_start_nimg = cur_nimg
    stats_file = open(run_dir / "stats.jsonl", "a") if processes.main else None
    skipped_steps = SkippedSteps(device)
    skipped_before = 0  # minibatches skipped in the previous read: a run of bad reads warns once
    last_snapshot = resume_path
    with StopRequest() as stop:
        while cur_nimg < total_nimg:
            real_img, real_c = next(batches)
            real_img = real_img.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
            real_c = real_c.to(device, non_blocking=True)
            loss.cur_nimg = cur_nimg

            reals = list(zip(real_img.split(batch_gpu), real_c.split(batch_gpu)))

            def gen_inputs():
                """[(z, c) per chunk] of this process's share of a new global batch."""
                z = torch.randn([config.batch, G.z_dim], device=device, generator=latents)
                c = fake_labels.sample(config.batch)
                return list(zip(processes.share(z).split(batch_gpu), processes.share(c).split(batch_gpu)))

            gen = gen_inputs()
            phases = [(G_params, G_opt, lambda i, gen=gen: loss.G_main(*gen[i]))]
            if config.pl_weight > 0 and config.G_reg_interval and batch_idx % config.G_reg_interval == 0:
                gen = gen_inputs()
                phases.append((G_params, G_opt, lambda i, gen=gen: loss.G_pl(*gen[i], gain=config.G_reg_interval)))
            gen = gen_inputs()
            phases.append((D_params, D_opt, lambda i, gen=gen: loss.D_main(*reals[i], *gen[i])))
            if batch_idx % config.D_reg_interval == 0 and config.gamma > 0:
                phases.append((D_params, D_opt, lambda i: loss.D_r1(*reals[i], gain=config.D_reg_interval)))
            all_stepped = torch.ones([], device=device)
            for params, opt, run_chunk in phases:
                set_requires_grad(params, True)
                stepped, chunk_stats = phase_step(params, opt, run_chunk, num_chunks, processes)
                all_stepped = all_stepped * stepped
                set_requires_grad(params, False)
                for stats in chunk_stats:
                    for name, value in stats.items():
                        tick_stats.setdefault(name, []).append(value)
                    if ada is not None and "Loss/signs/real" in stats:
                        ada.observe(stats["Loss/signs/real"])

            update_ema(G_ema, G, config, cur_nimg)
            cur_nimg += config.batch
            batch_idx += 1
            if ada is not None:
                ada.maybe_adjust(batch_idx)
            skipped_steps.record(all_stepped)
            tick_ends = cur_nimg >= total_nimg or cur_nimg >= tick_start_nimg + config.tick * 1000
            read_now = tick_ends or batch_idx % READ_INTERVAL == 0
            if read_now:
                skipped, longest = skipped_steps.read()
                if skipped and not skipped_before:
                    say(f"Warning: a non-finite loss in {skipped} minibatch(es) up to kimg {cur_nimg / 1000:g}; "
                        f"{'that step was' if skipped == 1 else 'those steps were'} skipped")
                skipped_before = skipped
                if longest >= NONFINITE_LIMIT:
                    path = save_snapshot(metrics=False) or last_snapshot
                    raise TrainingDiverged(
                        f"losses were NaN or infinite in {longest} minibatches in a row (the limit is "
                        f"{NONFINITE_LIMIT}) by kimg {cur_nimg / 1000:g}; no bad step was applied, so {path} holds "
                        f"the last good weights. Try a larger --gamma or a smaller --glr/--dlr, then --resume {path}")
            if read_now and processes.any(stop.requested is not None, device):
                stop.requested = stop.requested or "a signal to another process"
                path = save_snapshot(metrics=False)
                if path is None:
                    raise checkpoint.CheckpointError(f"stopped by {stop.requested}, but the snapshot could not be "
                                                     f"written; the last one is {last_snapshot}")
                if processes.main:
                    say(f"Stopped by {stop.requested} at kimg {cur_nimg / 1000:g}. Continue with:\n"
                        f"  python train.py --config {run_dir / 'config.yaml'} --resume auto")
                break

            done = cur_nimg >= total_nimg
            if not tick_ends:
                continue
            now = time.time()
            tick_nimg = cur_nimg - tick_start_nimg
            record = {
                "tick": tick,
                "kimg": cur_nimg / 1000,
                "time_s": now - start_time,
                "sec_per_kimg": (now - tick_start_time) / tick_nimg * 1000,
                "img_per_s": tick_nimg / (now - tick_start_time),
                "peak_mem_gb": peak_memory_gb(device),
                **{name: processes.mean(torch.stack(values).mean()).item() for name, values in tick_stats.items()},
            }
            if augment is not None:
                record["augment_p"] = float(augment.p)
            if ada is not None:
                record["ada_rt"] = float(ada.last_rt)
            if config.blur_fade_kimg:
                record["blur_sigma"] = loss.blur_sigma()
            if config.transition_kimg is not None:
                record["label_weight"] = loss.label_weight()
            if processes.main:
                stats_file.write(json.dumps(record) + "\n")
                stats_file.flush()
            say(
                f"tick {tick:<4d} kimg {record['kimg']:<8.1f} time {format_seconds(record['time_s']):<10s} "
                f"sec/kimg {record['sec_per_kimg']:<7.2f} img/s {record['img_per_s']:<7.1f} "
                f"G {record.get('Loss/G/loss', float('nan')):.3f}  D {record.get('Loss/D/loss', float('nan')):.3f}"
                + "".join(f"  {label} {record[key]:.3g}" for label, key in TICK_EXTRAS if key in record)
                + f"  mem {record['peak_mem_gb']:.2f} GB"
            )
            tick += 1
            tick_stats = {}
            tick_start_time, tick_start_nimg = time.time(), cur_nimg
            if done or tick % config.snap == 0:
                saved = save_snapshot()
                if saved is None and done:
                    raise checkpoint.CheckpointError(f"the final snapshot could not be written to {run_dir}; the last "
                                                     f"one is {last_snapshot}. Free space and continue with --resume auto")
                last_snapshot = saved or last_snapshot
    if not stop.requested:
        say(f"Done: {cur_nimg / 1000:g} kimg in {format_seconds(time.time() - start_time)}. Run folder: {run_dir}")
    if processes.main:
        stats_file.close()
        log_file.close()
    return run_dir


@torch.no_grad()
def update_ema(G_ema, G, config: TrainConfig, cur_nimg: int) -> None:
    """G_ema <- lerp toward G with a half-life of ema_kimg (ramped up early); buffers copied."""
    ema_nimg = config.ema_kimg * 1000
    if config.ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * config.ema_rampup)
    beta = 0.5 ** (config.batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)

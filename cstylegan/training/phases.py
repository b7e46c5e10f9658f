"""The phases of one minibatch, built once per run: G main, G path length (lazily), D main,
D R1 (lazily), each one optimiser step; then the EMA of G."""

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from cstylegan.config import TrainConfig
from cstylegan.runtime.distributed import Processes


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


@dataclass
class Phase:
    name: str
    params: list                  # the trainable parameters it steps
    opt: torch.optim.Optimizer
    interval: int                 # it runs on minibatches whose index is a multiple of this
    loss: Callable                # (reals chunk, latents chunk or None) -> (loss, stats)
    needs_latents: bool           # draws a fresh (z, c) batch when it runs


def build_phases(config: TrainConfig, loss, G_params, D_params, G_opt, D_opt) -> list:
    """The phase table, in NVlabs' order; a regularisation turned off has no phase."""
    phases = [Phase("Gmain", G_params, G_opt, 1, lambda real, gen: loss.G_main(*gen), True)]
    if config.pl_weight > 0 and config.G_reg_interval:
        phases.append(Phase("Greg", G_params, G_opt, config.G_reg_interval,
                            lambda real, gen: loss.G_pl(*gen, gain=config.G_reg_interval), True))
    phases.append(Phase("Dmain", D_params, D_opt, 1, lambda real, gen: loss.D_main(*real, *gen), True))
    if config.gamma > 0:
        phases.append(Phase("Dreg", D_params, D_opt, config.D_reg_interval,
                            lambda real, gen: loss.D_r1(*real, gain=config.D_reg_interval), False))
    return phases


def run_phases(phases: list, batch_idx: int, reals: list, new_latents: Callable, num_chunks: int,
               processes: Processes, on_stats: Callable) -> torch.Tensor:
    """The phases due at minibatch `batch_idx`, each over the chunks of `reals` (and of a new
    latent batch when it needs one). Returns 1.0 if every phase stepped, else 0.0 (on the device)."""
    all_stepped = torch.ones([], device=reals[0][0].device)
    for phase in phases:
        if batch_idx % phase.interval:
            continue
        gen: Optional[list] = new_latents() if phase.needs_latents else None
        set_requires_grad(phase.params, True)
        stepped, chunk_stats = phase_step(phase.params, phase.opt,
                                          lambda i: phase.loss(reals[i], gen[i] if gen else None),
                                          num_chunks, processes)
        set_requires_grad(phase.params, False)
        all_stepped = all_stepped * stepped
        for stats in chunk_stats:
            on_stats(stats)
    return all_stepped


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

"""What a run trains on: this process's share of shuffled minibatches, and labels and latents for the fakes."""

import signal

import numpy as np
import torch
import torch.nn.functional as F

from cstylegan.runtime.distributed import Processes


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


def leave_stop_signals_to_the_main_process(_worker_id: int) -> None:
    """A SIGTERM sent to the whole process group (Slurm, systemd, `kill -- -PGID`) must reach
    only the main process, which then saves a snapshot; a worker it killed would crash the run."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def infinite_batches(dataset, batch_size: int, workers: int, seed: int, processes: Processes = Processes()):
    """Shuffled minibatches forever (this process's share), uint8 kept as uint8 until the device."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=GlobalBatchSlices(len(dataset), batch_size, processes, seed),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        worker_init_fn=leave_stop_signals_to_the_main_process,
    )
    yield from loader


class FakeLabels:
    """Labels for generated images: those of random data items (the data's own combinations,
    at its frequencies), or with mix "uniform" each attribute's value drawn alone and
    uniformly, so that combinations the data lacks are generated (and judged) too."""

    def __init__(self, dataset, device, seed: int, mix: str = "data"):
        self.labels = torch.as_tensor(np.stack(dataset.labels), dtype=torch.float32, device=device)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.block_sizes = [len(v) for v in dataset.label_space.attributes.values()] if mix == "uniform" else None

    def sample(self, n: int) -> torch.Tensor:
        device = self.labels.device
        if self.block_sizes is None:
            return self.labels[torch.randint(len(self.labels), [n], device=device, generator=self.generator)]
        blocks = [F.one_hot(torch.randint(size, [n], device=device, generator=self.generator), size)
                  for size in self.block_sizes]
        return torch.cat(blocks, dim=1).to(torch.float32)


class Minibatches:
    """What one minibatch step draws, cut into this process's passes of `batch_gpu` images:
    the next reals, and, for each phase that generates, a new global batch of latents and
    fake labels of which this process keeps its share."""

    def __init__(self, loader, fake_labels: FakeLabels, latents: torch.Generator, batch: int, batch_gpu: int,
                 z_dim: int, device, processes: Processes):
        self.loader, self.fake_labels, self.latents = loader, fake_labels, latents
        self.batch, self.batch_gpu, self.z_dim, self.device, self.processes = batch, batch_gpu, z_dim, device, processes
        self.num_chunks = batch // processes.world // batch_gpu

    def reals(self) -> list:
        """[(images in [-1, 1], labels) per pass]."""
        img, c = next(self.loader)
        img = img.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
        c = c.to(self.device, non_blocking=True)
        return list(zip(img.split(self.batch_gpu), c.split(self.batch_gpu)))

    def fakes(self) -> list:
        """[(z, c) per pass]: every process draws the same global batch and keeps its share."""
        z = torch.randn([self.batch, self.z_dim], device=self.device, generator=self.latents)
        c = self.fake_labels.sample(self.batch)
        share = self.processes.share
        return list(zip(share(z).split(self.batch_gpu), share(c).split(self.batch_gpu)))

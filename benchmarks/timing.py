"""Wall-clock timing shared by the benchmark scripts."""

import time

import torch


def seconds_per_call(fn, repeats: int, device: torch.device) -> list:
    """Seconds of each of `repeats` calls of `fn`, after one untimed warm-up call (which also
    compiles, under CSTYLEGAN_OPS=fused). On CUDA each call is bracketed by synchronisations,
    so its GPU work is counted."""
    fn()
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds

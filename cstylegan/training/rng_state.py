"""The random number generators a run draws from, as tensors a snapshot can hold (weights_only)."""

import numpy as np
import torch


def capture_rng(generators: dict) -> dict:
    """Global torch (and CUDA) and numpy states, and those of the run's own named generators."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = dict(torch=torch.get_rng_state(), generators={key: g.get_state() for key, g in generators.items()},
                 numpy_keys=torch.from_numpy(keys.astype(np.int64)), numpy_position=int(position),
                 numpy_has_gauss=int(has_gauss), numpy_cached=float(cached))
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generators: dict) -> None:
    torch.set_rng_state(state["torch"])
    for key, generator in generators.items():
        generator.set_state(state["generators"][key])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_position"],
                         state["numpy_has_gauss"], state["numpy_cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

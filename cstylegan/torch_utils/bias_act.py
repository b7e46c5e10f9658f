"""Bias, activation, gain and clamp in one call, as StyleGAN's layers use them.

The default gains are those of the official release: activations that halve the
signal's energy (relu, lrelu, swish) get sqrt(2) so that He-initialised layers keep
unit variance; the rest get 1. The clamp is applied after the gain.
"""

import math
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F


class Activation(NamedTuple):
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: x * torch.sigmoid(x), 0.0, math.sqrt(2)),
}


def default_gain(act: str) -> float:
    """Gain that keeps unit variance through `act` (used by the layers' act_gain)."""
    return ACTIVATIONS[act].def_gain


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1,
             act: str = "linear", alpha: Optional[float] = None,
             gain: Optional[float] = None, clamp: Optional[float] = None) -> torch.Tensor:
    """Return clamp(act(x + b) * gain), with `b` broadcast along dimension `dim`.

    alpha / gain default to the activation's own values; clamp=None disables clamping.
    """
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        if clamp < 0:
            raise ValueError("clamp must be >= 0")
        x = x.clamp(-clamp, clamp)
    return x

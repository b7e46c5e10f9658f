"""Bias, activation, gain and clamp in one call, as StyleGAN's layers use them.

The default gains are those of the official release: activations that halve the
signal's energy (relu, lrelu, swish) get sqrt(2) so that He-initialised layers keep
unit variance; the rest get 1. The clamp is applied after the gain.

For the piecewise-linear activations (linear, relu, lrelu) the derivative is a function
of the output alone, so the fast path (`_BiasAct`) keeps only the output for backward
instead of one tensor per elementwise step, and the backward is one elementwise kernel
that is linear in the incoming gradient, hence its own derivative (R1 and path length
differentiate twice). CSTYLEGAN_OPS=fused runs both kernels through torch.compile;
`bias_act_reference` is the literal chain of ops the tests compare against.
"""

import math
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F

from .ops_switch import compiled_if_fused, use_fast


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

# Slope of the negative side for the activations whose derivative the output determines.
PIECEWISE_LINEAR_SLOPE = {"linear": lambda alpha: 1.0, "relu": lambda alpha: 0.0, "lrelu": lambda alpha: alpha}


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
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")
    if clamp is not None and clamp < 0:
        raise ValueError("clamp must be >= 0")
    plain_add = act == "linear" and gain == 1 and clamp is None
    if not use_fast() or act not in PIECEWISE_LINEAR_SLOPE or plain_add:
        return bias_act_reference(x, b, dim, act, alpha, gain, clamp)
    # One shape, [before dim, dim, after dim], always with a bias and with detached inputs, so
    # that the compiled kernels (CSTYLEGAN_OPS=fused) see one kind of call, not one per rank.
    channels = x.shape[dim]
    y = _BiasAct.apply(x.reshape(math.prod(x.shape[:dim]), channels, -1),
                       (b if b is not None else x.new_zeros(channels)).reshape(1, channels, 1),
                       PIECEWISE_LINEAR_SLOPE[act](alpha), gain, math.inf if clamp is None else float(clamp))
    return y.reshape(x.shape)


def bias_act_reference(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1,
                       act: str = "linear", alpha: float = 0.0, gain: float = 1.0,
                       clamp: Optional[float] = None) -> torch.Tensor:
    """The literal chain: add, activate, multiply, clamp (autograd keeps each step)."""
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = ACTIVATIONS[act].func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _forward_kernel(x, b, slope: float, gain: float, clamp: float):
    """clamp(lrelu_slope(x + b) * gain) into one new tensor (slope 1 is linear, clamp inf none)."""
    y = x + b
    F.leaky_relu_(y, slope)
    return y.mul_(gain).clamp_(-clamp, clamp)


def _gradient_kernel(dy, y, slope: float, gain: float, clamp: float):
    """dy * d(output)/d(input), read off the output y: gain (times slope where y <= 0), and
    zero where y reached the clamp."""
    dx = torch.ops.aten.hardtanh_backward(dy, y, -clamp, clamp)  # dy where |y| < clamp
    dx = torch.ops.aten.leaky_relu_backward(dx, y, slope, True)
    return dx.mul_(gain)


_forward = compiled_if_fused(_forward_kernel)
_gradient = compiled_if_fused(_gradient_kernel)


class _BiasAct(torch.autograd.Function):
    """x [A, C, B], b [1, C, 1] -> y; keeps only y for backward."""

    @staticmethod
    def forward(ctx, x, b, slope: float, gain: float, clamp: float):
        y = _forward(x.detach(), b.detach(), slope, gain, clamp)
        ctx.save_for_backward(y)
        ctx.settings = slope, gain, clamp
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        dx = _BiasActGradient.apply(dy, y, *ctx.settings)
        db = dx.sum([0, 2], keepdim=True) if ctx.needs_input_grad[1] else None
        return dx, db, None, None, None


class _BiasActGradient(torch.autograd.Function):
    """dy -> dx. Linear in dy with a factor that is piecewise constant in y, so its own
    backward is the same kernel and y gets no gradient."""

    @staticmethod
    def forward(ctx, dy, y, slope: float, gain: float, clamp: float):
        ctx.save_for_backward(y)
        ctx.settings = slope, gain, clamp
        return _gradient(dy.detach(), y.detach(), slope, gain, clamp)

    @staticmethod
    def backward(ctx, ddx):
        (y,) = ctx.saved_tensors
        return _BiasActGradient.apply(ddx, y, *ctx.settings), None, None, None, None

"""Adaptive discriminator augmentation: how the augmentation probability p follows overfitting.

The ADA heuristic r_t = E[sign(D(real))] rises toward 1 as D overfits the real images.
Every `interval` minibatches p moves by sign(r_t - target) * batch * interval / (ada_kimg * 1000),
so p can go from 0 to 1 in `ada_kimg` thousand images, and it never drops below 0.
"""

import torch


class AdaptiveP:
    def __init__(self, augment_pipe, target: float, batch: int, interval: int, ada_kimg: float, reduce_mean=None):
        self.pipe = augment_pipe
        self.reduce_mean = reduce_mean or (lambda value: value)  # averages r_t over training processes
        self.target = target
        self.interval = interval
        self.step_size = batch * interval / (ada_kimg * 1000)
        self.signs = []
        self.last_rt = float("nan")

    def observe(self, real_logits_sign_mean: torch.Tensor) -> None:
        """Record E[sign(D(real))] of one minibatch (a detached scalar tensor)."""
        self.signs.append(real_logits_sign_mean)

    def maybe_adjust(self, batch_idx: int) -> None:
        """Adjust p once every `interval` minibatches from what was observed since the last time."""
        if batch_idx % self.interval != 0 or not self.signs:
            return
        rt = self.reduce_mean(torch.stack(self.signs).mean())
        self.signs = []
        adjust = torch.sign(rt - self.target) * self.step_size
        self.pipe.p.copy_((self.pipe.p + adjust).clamp(min=0))
        self.last_rt = rt

"""Conditional mapping network z, c -> w, with a global and a per-class average w.

The official network tracks one running average `w_avg` and truncates every sample
towards it. A class-conditional model has one "typical" w per class, so we also track
`w_avg_per_class` [c_dim, w_dim] and can truncate each sample towards its own class.
"""

from typing import Optional

import torch
from torch import nn

from .layers import FullyConnectedLayer, normalize_2nd_moment


def blend_labels(c: torch.Tensor, label_weight: float) -> torch.Tensor:
    """The one-hot labels moved towards the uniform label by 1 - label_weight: at 0 every
    sample carries the same label (an unconditional model), at 1 its own class.

    The label embedding is linear, so this blends each class's embedding with their mean;
    transitional training (Shahbazi et al. 2022) raises the weight from 0 to 1 to keep a
    conditional GAN on little data from collapsing to one image per class.
    """
    if label_weight == 1 or c.shape[1] == 0:
        return c
    uniform = torch.full_like(c, 1 / c.shape[1])
    return uniform.lerp(c, label_weight)


class MappingNetwork(nn.Module):
    """MLP from (normalised z, normalised embed(c)) to w, broadcast to num_ws copies.

    num_ws=None returns [N, w_dim] and tracks no averages (the discriminator's label
    mapping uses this); w_avg_beta=None disables the averages as well.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: Optional[int],
                 num_layers: int = 8, embed_features: Optional[int] = None,
                 layer_features: Optional[int] = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: Optional[float] = 0.998):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if c_dim == 0:
            embed_features = 0
        elif embed_features is None:
            embed_features = w_dim
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(
                features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier))

        self.tracks_averages = num_ws is not None and w_avg_beta is not None
        if self.tracks_averages:
            self.register_buffer("w_avg", torch.zeros([w_dim]))
            if c_dim > 0:
                self.register_buffer("w_avg_per_class", torch.zeros([c_dim, w_dim]))

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor],
                truncation_psi: float = 1, truncation_cutoff: Optional[int] = None,
                update_emas: bool = False, truncation_center: str = "global",
                label_weight: float = 1) -> torch.Tensor:
        """Map z [N, z_dim] and one-hot c [N, c_dim] to w [N, num_ws, w_dim].

        truncation_center: 'global' moves w towards `w_avg` (as official), 'class'
        towards the row of `w_avg_per_class` of each sample's class (argmax of c).
        Only the first `truncation_cutoff` ws are truncated when it is given.
        label_weight < 1 maps `blend_labels(c, label_weight)` (transitional training); the
        per-class averages still go to each sample's own class.
        """
        if truncation_center not in ("global", "class"):
            raise ValueError(f"truncation_center must be 'global' or 'class', got {truncation_center!r}")
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(blend_labels(c.to(torch.float32), label_weight))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)

        if update_emas and self.tracks_averages:
            self._update_averages(x.detach(), c)

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            x = self._truncate(x, c, truncation_psi, truncation_cutoff, truncation_center)
        return x

    @torch.no_grad()
    def _update_averages(self, w: torch.Tensor, c: Optional[torch.Tensor]) -> None:
        """EMA of the batch mean w; per class, over the samples of that class only.

        Rows of c that are not one-hot (all zero, or an attribute label with a 1 in every
        attribute's block) belong to no single class and update no class row. A class
        row that is still exactly zero (never updated, e.g. after importing an NVlabs
        network) takes the batch mean directly instead of creeping up from zero.
        """
        beta = self.w_avg_beta
        self.w_avg.copy_(w.mean(dim=0).lerp(self.w_avg, beta))
        if self.c_dim == 0:
            return
        has_class = ((c == 1).sum(dim=1) == 1) & ((c != 0).sum(dim=1) == 1)
        labels = c[has_class].argmax(dim=1)
        w = w[has_class]
        counts = torch.bincount(labels, minlength=self.c_dim)
        sums = torch.zeros_like(self.w_avg_per_class).index_add_(0, labels, w)
        present = counts > 0
        means = sums[present] / counts[present].unsqueeze(1)
        old = self.w_avg_per_class[present]
        fresh = (old == 0).all(dim=1, keepdim=True)
        self.w_avg_per_class[present] = torch.where(fresh, means, means.lerp(old, beta))

    @torch.no_grad()
    def estimate_class_averages(self, num_samples: int = 2000, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
        """Set each row of `w_avg_per_class` to the mean w of `num_samples` random z of that
        class (no truncation), for networks trained without per-class averages (NVlabs')."""
        if not (self.tracks_averages and self.c_dim > 0):
            raise ValueError("per-class averages need a conditional mapping that tracks averages")
        generator = torch.Generator().manual_seed(seed)
        device = self.w_avg_per_class.device
        for k in range(self.c_dim):
            total = torch.zeros([self.w_dim], dtype=torch.float64, device=device)
            for start in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - start)
                z = torch.randn([n, self.z_dim], generator=generator).to(device)
                c = torch.zeros([n, self.c_dim], device=device)
                c[:, k] = 1
                total += self(z, c)[:, 0].sum(dim=0, dtype=torch.float64)
            self.w_avg_per_class[k] = (total / num_samples).to(self.w_avg_per_class.dtype)
        return self.w_avg_per_class

    def _truncate(self, x, c, psi, cutoff, center):
        if not self.tracks_averages:
            raise ValueError("truncation needs the tracked averages (num_ws and w_avg_beta set)")
        if center == "global":
            avg = self.w_avg
        else:
            if self.c_dim == 0:
                raise ValueError("truncation_center='class' needs a conditional mapping (c_dim > 0)")
            avg = self.w_avg_per_class[c.argmax(dim=1)].unsqueeze(1)  # [N, 1, w_dim]
        if cutoff is None:
            return avg.lerp(x, psi)
        head = avg.lerp(x[:, :cutoff], psi)
        return torch.cat([head, x[:, cutoff:]], dim=1)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"

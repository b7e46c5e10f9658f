"""Drawing a generator's pictures for seeds and classes: one place for generate.py and the web page."""

import torch

from cstylegan.generation.class_swap import class_swap_ws
from cstylegan.generation.image_grid import to_uint8
from cstylegan.generation.seeds import z_from_seeds


def one_hot(class_index, c_dim: int, device) -> torch.Tensor:
    """[1, c_dim]: all zeros for an unconditional network (class_index None)."""
    c = torch.zeros([1, c_dim], device=device)
    if class_index is not None:
        c[:, class_index] = 1
    return c


class Drawer:
    """ws for seeds in a class (truncated toward the class's own average, or the global one
    for an unconditional network), class swaps, and images as uint8 [N, H, W, C]."""

    def __init__(self, G, device, truncation_psi: float = 1.0, truncation_center: str = "class",
                 noise_mode: str = "const"):
        self.G, self.device, self.psi, self.noise_mode = G, device, truncation_psi, noise_mode
        self.center = truncation_center if G.c_dim else "global"

    def labels(self, class_index, count: int) -> torch.Tensor:
        return one_hot(class_index, self.G.c_dim, self.device).expand(count, -1)

    @torch.no_grad()
    def ws(self, seeds, class_index, psi=None) -> torch.Tensor:
        """[len(seeds), num_ws, w_dim] for these seeds in one class (None: unconditional)."""
        z = z_from_seeds(seeds, self.G.z_dim, self.device)
        return self.G.mapping(z, self.labels(class_index, len(seeds)), truncation_psi=self.psi if psi is None else psi,
                              truncation_center=self.center)

    @torch.no_grad()
    def swap_ws(self, seeds, content: int, style: int, swap_layer: int, psi=None) -> torch.Tensor:
        """The first `swap_layer` ws from the content class, the rest from the style class (same z)."""
        z = z_from_seeds(seeds, self.G.z_dim, self.device)
        return class_swap_ws(self.G, z, self.labels(content, len(seeds)), self.labels(style, len(seeds)), swap_layer,
                             truncation_psi=self.psi if psi is None else psi, truncation_center=self.center)

    @torch.no_grad()
    def images(self, ws: torch.Tensor):
        return to_uint8(self.G.synthesis(ws, noise_mode=self.noise_mode))

    def image(self, seed: int, content, style=None, swap_layer=None, psi=None):
        """One picture [1, H, W, C]: the plain class, or a class swap when `style` is given."""
        if style is None:
            return self.images(self.ws([seed], content, psi))
        return self.images(self.swap_ws([seed], content, style, swap_layer, psi))

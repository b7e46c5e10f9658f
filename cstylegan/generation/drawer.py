"""Drawing a generator's pictures for seeds and classes: one place for generate.py and the web page."""

import torch

from cstylegan.generation.class_swap import class_swap_ws
from cstylegan.generation.image_grid import to_uint8
from cstylegan.generation.seeds import z_from_seeds

AVERAGE_SAMPLES = 2000  # z's whose mean w is an attribute combination's truncation centre
AVERAGE_SEED = 0


def one_hot(class_index, c_dim: int, device) -> torch.Tensor:
    """[1, c_dim]: all zeros for an unconditional network (class_index None)."""
    c = torch.zeros([1, c_dim], device=device)
    if class_index is not None:
        c[:, class_index] = 1
    return c


class Drawer:
    """ws for seeds in a class (truncated toward the class's own average, or the global one
    for an unconditional network), class swaps, and images as uint8 [N, H, W, C].

    `label_space` (data/labels.py) gives each class its label vector; without one, classes
    are one-hot. A network trained on attributes or vectors tracks no average per label, so
    a label's centre is the mean w of AVERAGE_SAMPLES seeded z's, computed once here: the
    same for a combination the data never had."""

    def __init__(self, G, device, truncation_psi: float = 1.0, truncation_center: str = "class",
                 noise_mode: str = "const", label_space=None):
        self.G, self.device, self.psi, self.noise_mode = G, device, truncation_psi, noise_mode
        self.center = truncation_center if G.c_dim else "global"
        self.label_space = label_space if label_space is not None and label_space.kind != "class" else None
        self._averages = {}

    def labels(self, class_index, count: int) -> torch.Tensor:
        if self.label_space is None or class_index is None:
            return one_hot(class_index, self.G.c_dim, self.device).expand(count, -1)
        return torch.from_numpy(self.label_space.vector(class_index)).to(self.device).expand(count, -1)

    def average(self, class_index) -> torch.Tensor:
        """[w_dim]: the mean w of a class of an attribute network."""
        return self.average_of(self.labels(class_index, 1)[0])

    @torch.no_grad()
    def average_of(self, label: torch.Tensor) -> torch.Tensor:
        """[w_dim]: the mean w of AVERAGE_SAMPLES seeded z's with this label vector [c_dim]."""
        key = tuple(label.tolist())
        if key not in self._averages:
            z = torch.randn([AVERAGE_SAMPLES, self.G.z_dim], generator=torch.Generator().manual_seed(AVERAGE_SEED))
            w = self.G.mapping(z.to(self.device), label.to(self.device).expand(AVERAGE_SAMPLES, -1))
            self._averages[key] = w[:, 0].mean(dim=0)
        return self._averages[key]

    @torch.no_grad()
    def ws(self, seeds, class_index, psi=None) -> torch.Tensor:
        """[len(seeds), num_ws, w_dim] for these seeds in one class (None: unconditional)."""
        return self._ws(z_from_seeds(seeds, self.G.z_dim, self.device), class_index, self.psi if psi is None else psi)

    def _ws(self, z, class_index, psi: float) -> torch.Tensor:
        return self.labelled_ws(z, self.labels(class_index, len(z)), psi)

    @torch.no_grad()
    def labelled_ws(self, z, c, psi: float) -> torch.Tensor:
        """[N, num_ws, w_dim] for latents z with label vectors c [N, c_dim], each truncated
        toward its own label's centre (the tracked class average of a one-hot network)."""
        if self.label_space is None or self.center != "class":
            return self.G.mapping(z, c, truncation_psi=psi, truncation_center=self.center)
        w = self.G.mapping(z, c)
        return w if psi == 1 else torch.stack([self.average_of(label) for label in c])[:, None].lerp(w, psi)

    @torch.no_grad()
    def swap_ws(self, seeds, content: int, style: int, swap_layer: int, psi=None) -> torch.Tensor:
        """The first `swap_layer` ws from the content class, the rest from the style class (same z)."""
        z = z_from_seeds(seeds, self.G.z_dim, self.device)
        psi = self.psi if psi is None else psi
        if self.label_space is None:
            return class_swap_ws(self.G, z, self.labels(content, len(seeds)), self.labels(style, len(seeds)),
                                 swap_layer, truncation_psi=psi, truncation_center=self.center)
        if not 0 <= swap_layer <= self.G.num_ws:
            raise ValueError(f"swap_layer must be 0-{self.G.num_ws}, got {swap_layer}")
        return torch.cat([self._ws(z, content, psi)[:, :swap_layer], self._ws(z, style, psi)[:, swap_layer:]], dim=1)

    @torch.no_grad()
    def images(self, ws: torch.Tensor):
        return to_uint8(self.G.synthesis(ws, noise_mode=self.noise_mode))

    def image(self, seed: int, content, style=None, swap_layer=None, psi=None):
        """One picture [1, H, W, C]: the plain class, or a class swap when `style` is given."""
        if style is None:
            return self.images(self.ws([seed], content, psi))
        return self.images(self.swap_ws([seed], content, style, swap_layer, psi))

"""Layer swapping between two classes of one conditional generator (generate.py --class A
--style-class B --swap-layer K): the first K ws come from class A, the rest from class B,
for the same z. Between two generators it is `snapshots/blend.py`."""

import torch


def class_swap_ws(G, z: torch.Tensor, content_c: torch.Tensor, style_c: torch.Tensor, swap_layer: int,
                  truncation_psi: float = 1, truncation_center: str = "global") -> torch.Tensor:
    """ws [N, num_ws, w_dim] for G.synthesis: the content class's w for the first
    `swap_layer` layers (coarse: shape, pose) and the style class's after (colour, line).
    Truncation pulls each part toward its own class's average when the center is 'class'."""
    if not 0 <= swap_layer <= G.num_ws:
        raise ValueError(f"swap_layer must be 0-{G.num_ws}, got {swap_layer}")
    kwargs = dict(truncation_psi=truncation_psi, truncation_center=truncation_center)
    content = G.mapping(z, content_c, **kwargs)
    style = G.mapping(z, style_c, **kwargs)
    return torch.cat([content[:, :swap_layer], style[:, swap_layer:]], dim=1)

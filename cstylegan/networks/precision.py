"""Which dtype and memory layout a layer computes in: NVlabs' mixed precision runs the
layers marked `use_fp16` (the num_fp16_res highest resolutions) in float16, on CUDA only,
where it pays off; everything else stays float32. Outputs of a float16 layer are clamped
by conv_clamp. With NVlabs' `fp16_channels_last` a float16 block also keeps its
activations channels-last (NHWC), the layout tensor-core convolutions read natively.
"""

import torch

HALF_PRECISION_DEVICES = ("cuda",)  # tests add "cpu" to run the float16 paths without a GPU


def layer_dtype(use_fp16: bool, device: torch.device) -> torch.dtype:
    return torch.float16 if use_fp16 and device.type in HALF_PRECISION_DEVICES else torch.float32


def layer_memory_format(dtype: torch.dtype, fp16_channels_last: bool) -> torch.memory_format:
    return torch.channels_last if fp16_channels_last and dtype == torch.float16 else torch.contiguous_format

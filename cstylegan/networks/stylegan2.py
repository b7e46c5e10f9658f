"""StyleGAN2 generator (configs E-F of Karras et al. 2020), numerically as NVlabs' release.

Parameter and buffer names follow NVlabs (`synthesis.b4.const`,
`synthesis.b32.conv1.affine.weight`, ...), so their tensors load by plain copy.
"""

import math
from typing import Optional

import torch
from torch import nn

from .ops.bias_act import bias_act, default_gain
from .ops.modulated_conv import modulated_conv2d
from .ops.upfirdn2d import setup_filter, upsample2d
from .layers import Conv2dLayer, FullyConnectedLayer
from .mapping import MappingNetwork
from .precision import layer_dtype, layer_memory_format


def choose_fused_modconv(setting, training: bool, device: torch.device) -> bool:
    """Resolve a block's `fused_modconv_default` to grouped (True) or shared (False) conv.

    'auto' (ours) takes the grouped convolution only for inference on CUDA, NVlabs'
    choice there (their training default, 'inference_only', is shared). On our 2-core
    CPU (batch 32, 32-64 px, 32-128 channels, best of 5; docs/benchmarks.md, "Modulated
    convolution: grouped vs shared") the shared path was faster for inference in 10 of
    12 runs (by up to 1.3x; e.g. res 32, 128 channels: grouped 190 ms, shared 156 ms)
    and for forward+backward in 9 of 12 (grouped won clearly, by 15-20%, only at
    64 px, 64 channels), so on CPU the shared path is always used. True, False and
    'inference_only' are accepted as in NVlabs' kwargs.
    """
    if setting == "auto":
        return not training and device.type == "cuda"
    if setting == "inference_only":
        return not training
    return bool(setting)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2), noise, bias, lrelu, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = "lrelu", resample_filter=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = default_gain(activation)

        # bias_init=1: styles start at 1, i.e. the layer starts unmodulated.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1):
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution],
                                device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation,
                        gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        # No demodulation here, so the equalised-lr gain goes into the styles.
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv: bool = True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 up x2), conv1, and the image output.

    architecture: 'orig' (to-RGB only at the end), 'skip' (every block adds its
    to-RGB output to the upsampled image so far), 'resnet' (1x1 upsampled shortcut
    around conv0/conv1, each branch scaled by sqrt(0.5)).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, is_last: bool, architecture: str = "skip",
                 resample_filter=(1, 3, 3, 1), conv_clamp=256, use_fp16: bool = False,
                 fp16_channels_last: bool = False, fused_modconv_default="auto", **layer_kwargs):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.fp16_channels_last = fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x, img, ws, noise_mode: str = "random", fused_modconv=None):
        """ws [N, num_conv + num_torgb, w_dim]; returns the features and the image so far."""
        if fused_modconv is None:
            fused_modconv = choose_fused_modconv(self.fused_modconv_default, self.training, ws.device)
        dtype = layer_dtype(self.use_fp16, ws.device)
        memory_format = layer_memory_format(dtype, self.fp16_channels_last)
        w_iter = iter(ws.unbind(dim=1))
        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).contiguous(memory_format=memory_format)
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype, memory_format=memory_format)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R], blocks b4 ... b{R}.

    Channels at resolution r: min(channel_base // r, channel_max). The num_fp16_res
    highest resolutions (never below 8) run in float16 on CUDA.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 **block_kwargs):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res,
                                   img_channels, is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            # A block's to-RGB shares its w with the next block's conv0, except at the end.
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            self.add_module(f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused_modconv=None,
                update_emas: bool = False) -> torch.Tensor:
        """fused_modconv: True = grouped conv, False = shared conv, None = block default.
        update_emas is accepted so that StyleGAN2 and StyleGAN3 synthesis share one call;
        StyleGAN2 synthesis keeps no running averages."""
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
            w_idx += block.num_conv
        return img

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_fp16_res={self.num_fp16_res}")


class Generator(nn.Module):
    """z, c -> image: conditional MappingNetwork followed by SynthesisNetwork."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Optional[dict] = None, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, conv_clamp=None,
                 architecture: str = "skip", **block_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels,
                                          channel_base=channel_base, channel_max=channel_max,
                                          num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
                                          architecture=architecture, **block_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: Optional[int] = None,
                truncation_center: str = "global", update_emas: bool = False,
                noise_mode: str = "random", fused_modconv=None) -> torch.Tensor:
        """Image [N, img_channels, R, R], roughly in [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas, truncation_center=truncation_center)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)

"""StyleGAN3 generator (Karras et al. 2021, "Alias-Free GAN"), configs T and R, numerically
as NVlabs' release.

The image is treated as a continuous signal: the synthesis network starts from Fourier
features (which can be translated / rotated exactly), and every layer keeps its
feature maps band-limited, applying the nonlinearity at a higher sampling rate between
two low-pass filters. Config T uses 3x3 convolutions and separable filters; config R
(`conv_kernel=1, use_radial_filters=True`) uses 1x1 convolutions and radially
symmetric downsampling filters, which makes the network rotation equivariant as well.

Parameter and buffer names follow NVlabs (`synthesis.input.freqs`,
`synthesis.L3_52_512.weight`, `synthesis.L3_52_512.up_filter`, ...), so their tensors
load by plain copy. The mapping network is our conditional `MappingNetwork`.
"""

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .ops.filtered_lrelu import filtered_lrelu
from .ops.modulated_conv import modulated_conv2d_sg3
from .layers import FullyConnectedLayer
from .mapping import MappingNetwork
from .precision import layer_dtype


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Optional[torch.Tensor]:
    """Kaiser-windowed low-pass filter with `numtaps` taps, or None for 1 tap (identity).

    Separable: scipy's firwin (sinc times Kaiser window, unit gain at DC), a 1-D tensor.
    Radial: a jinc (the 2-D Fourier transform of a disc of radius `cutoff`) times the
    outer product of two Kaiser windows, normalised to sum 1; a 2-D tensor.
    `width` is the transition band (twice the half-width), `fs` the sampling rate.
    """
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    if numtaps == 1:
        return None
    # Imported here: scipy.signal takes most of a second to import, which every command-line
    # tool would pay at start-up although only building a StyleGAN3 network needs it.
    import scipy.signal
    import scipy.special

    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    # jinc(r) = J1(2 pi c r) / (pi r), whose limit at r = 0 is c (only hit for odd numtaps).
    safe_r = np.where(r > 0, r, 1.0)
    f = np.where(r > 0, scipy.special.j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r), cutoff)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


class SynthesisInput(nn.Module):
    """Fourier features: `channels` sinusoids of random frequency within `bandwidth`,
    sampled on a `size` x `size` grid at `sampling_rate`, mixed by a learned matrix.

    From w, `affine` predicts a rotation angle (as cos, sin) and a translation of the
    features; it starts at the identity (weight 0, bias [1, 0, 0, 0]). The `transform`
    buffer (3x3, identity by default) is a user-specified transform applied on top:
    the inverse of the transform wanted for the output image (see set_input_transform).
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = int(size)
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random directions, radii spread by the exp(r^2)^(1/4) division, scaled into
        # the disc of radius `bandwidth`; phases uniform in [-0.5, 0.5).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] -> features [N, channels, size, size]."""
        n = w.shape[0]
        # The predicted (cos, sin) is normalised to a pure rotation.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        # Both are inverse transforms of the image: rotate first, then translate.
        rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).reshape(n, 3, 3)
        translation = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(n, 3, 3)
        transforms = rotation @ translation @ self.transform.unsqueeze(0)

        # sin(2 pi (f . (A p + b) + phase)) = sin(2 pi ((f A) . p + (f . b + phase))).
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N, C, 2]

        # A user transform (e.g. scaling) can push frequencies past the band limit:
        # fade them out linearly between `bandwidth` and the Nyquist frequency.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Pixel centres in the network's coordinates, 1 unit = `sampling_rate` pixels;
        # computed like F.affine_grid (align_corners=False), as the official release does.
        theta = torch.tensor([[0.5 * self.size / self.sampling_rate, 0, 0],
                              [0, 0.5 * self.size / self.sampling_rate, 0]],
                             dtype=torch.float32, device=w.device)
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = torch.einsum("hwk,nck->nhwc", grid[0], freqs)  # [N, H, W, C]
        x = torch.sin((x + phases[:, None, None, :]) * (2 * math.pi))
        x = x * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(nn.Module):
    """Modulated convolution, then filtered leaky ReLU from the input's sampling rate to
    the output's, through a temporary rate `lrelu_upsampling` times the higher of the two.

    Sizes are in pixels (square), sampling rates in pixels per unit, cutoffs and
    half-widths in cycles per unit. The last layer (`is_torgb`) is a 1x1 convolution
    without demodulation, filters or nonlinearity. `magnitude_ema` tracks the mean
    square of the input; the input is divided by its square root.
    """

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool,
                 in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2, use_radial_filters: bool = False,
                 conv_clamp: Optional[float] = 256, magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = int(in_size)
        self.out_size = int(out_size)
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        # The nonlinearity runs at lrelu_upsampling times the higher rate (ToRGB has none).
        self.tmp_sampling_rate = (max(in_sampling_rate, out_sampling_rate)
                                  * (1 if is_torgb else lrelu_upsampling))
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        k = self.conv_kernel
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Resampling factors must be integers; filters get filter_size taps per
        # low-resolution pixel. As in the official release, the critically sampled last
        # layers keep separable downsampling filters even when radial ones are asked for.
        self.up_factor = self._ratio(self.tmp_sampling_rate, in_sampling_rate)
        self.down_factor = self._ratio(self.tmp_sampling_rate, out_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))

        # Padding that takes the full convolution's output (in_size + k - 1) through
        # both filters to exactly out_size pixels. pad_lo is rounded so that samples
        # sit at pixel centres (the "symmetric interpretation" of the paper's App. C.3).
        pad_total = ((self.out_size - 1) * self.down_factor + 1
                     - (self.in_size + self.conv_kernel - 1) * self.up_factor
                     + self.up_taps + self.down_taps - 2)
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = [pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo]

    @staticmethod
    def _ratio(high, low) -> int:
        factor = int(round(high / low))
        if low * factor != high:
            raise ValueError(f"sampling rates {high} and {low} are not an integer ratio apart")
        return factor

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if x.shape[1:] != (self.in_channels, self.in_size, self.in_size):
            raise ValueError(f"expected [N, {self.in_channels}, {self.in_size}, {self.in_size}], "
                             f"got {tuple(x.shape)}")
        if update_emas:
            with torch.no_grad():
                magnitude = x.to(torch.float32).square().mean()
                self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb:
            # No demodulation here, so the equalised-lr gain goes into the styles.
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel ** 2)

        dtype = layer_dtype(self.use_fp16, x.device)
        # NVlabs' grouped convolution on GPUs; on a CPU the shared weight is faster (32 px T,
        # batch 16: generation 19.9 -> 32.3 img/s, training 5.0 -> 6.5; docs/benchmarks.md).
        x = modulated_conv2d_sg3(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                                 padding=self.conv_kernel - 1, input_gain=input_gain,
                                 grouped=x.device.type != "cpu")
        # ToRGB: slope 1 and gain 1 make the "leaky ReLU" the identity.
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype),
                              up=self.up_factor, down=self.down_factor, padding=self.padding,
                              gain=1 if self.is_torgb else math.sqrt(2),
                              slope=1 if self.is_torgb else 0.2, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
                f"use_fp16={self.use_fp16}, in/out_channels={self.in_channels}/{self.out_channels}, "
                f"in/out_size={self.in_size}/{self.out_size}, "
                f"in/out_sampling_rate={self.in_sampling_rate:g}/{self.out_sampling_rate:g}, "
                f"in/out_cutoff={self.in_cutoff:g}/{self.out_cutoff:g}, "
                f"in/out_half_width={self.in_half_width:g}/{self.out_half_width:g}")


class SynthesisNetwork(nn.Module):
    """ws [N, num_layers + 2, w_dim] -> image: Fourier features, then layers L0 ... L{num_layers}.

    Cutoffs and minimum stopbands grow geometrically from (first_cutoff, first_stopband)
    to (img_resolution / 2, img_resolution / 2 * last_stopband_rel) and then stay there
    for the last `num_critical` layers. Each layer's sampling rate is the power of two
    above twice its stopband (at most img_resolution), its feature maps carry
    `margin_size` extra pixels on each side (none in the last two), and it has
    min(channel_base / 2 / cutoff, channel_max) channels. Layer names are
    `L{index}_{size}_{channels}`. The layers whose sampling rate exceeds
    img_resolution / 2**num_fp16_res run in float16 on CUDA.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14,
                 num_critical: int = 2, first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                 last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 0, **layer_kwargs):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim, is_torgb=idx == num_layers, is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[idx] * 2 ** num_fp16_res > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            self.add_module(name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random",
                update_emas: bool = False) -> torch.Tensor:
        """noise_mode is accepted for the StyleGAN2 interface; StyleGAN3 has no noise.
        update_emas=True updates every layer's `magnitude_ema` (training, D step)."""
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, update_emas=update_emas)
        return (x * self.output_scale).to(torch.float32)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
                f"num_critical={self.num_critical}, margin_size={self.margin_size}, "
                f"num_fp16_res={self.num_fp16_res}")


class Generator(nn.Module):
    """z, c -> image: conditional MappingNetwork (2 layers by default, as NVlabs' StyleGAN3)
    followed by the StyleGAN3 SynthesisNetwork; the same interface as the StyleGAN2 one.

    synthesis_kwargs go to SynthesisNetwork and from there to every SynthesisLayer
    (conv_kernel, use_radial_filters, magnitude_ema_beta, conv_clamp, ...).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Optional[dict] = None, **synthesis_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws,
                                      **{"num_layers": 2, **(mapping_kwargs or {})})

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: Optional[int] = None,
                truncation_center: str = "global", update_emas: bool = False,
                noise_mode: str = "random", **synthesis_kwargs) -> torch.Tensor:
        """Image [N, img_channels, R, R], roughly in [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas, truncation_center=truncation_center)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas, **synthesis_kwargs)


def make_transform(translate: Sequence[float] = (0.0, 0.0), rotate_deg: float = 0.0) -> np.ndarray:
    """3x3 matrix of a rotation by `rotate_deg` and a translation, as NVlabs' gen_images.py.

    Units: the output image spans 1 unit, so translate (k / img_resolution, 0) moves
    the content k pixels to the right.
    """
    angle = math.radians(rotate_deg)
    s, c = math.sin(angle), math.cos(angle)
    return np.array([[c, s, translate[0]],
                     [-s, c, translate[1]],
                     [0.0, 0.0, 1.0]])


@torch.no_grad()
def set_input_transform(G: nn.Module, translate: Sequence[float] = (0.0, 0.0),
                        rotate_deg: float = 0.0) -> None:
    """Translate / rotate what a StyleGAN3 generator draws, as gen_images.py does: the
    input layer expects the inverse transform, so store inv(make_transform(...))."""
    synthesis_input = getattr(getattr(G, "synthesis", None), "input", None)
    if not isinstance(synthesis_input, SynthesisInput):
        raise ValueError("set_input_transform needs a StyleGAN3 generator (G.synthesis.input)")
    m = np.linalg.inv(make_transform(translate, rotate_deg))
    synthesis_input.transform.copy_(torch.from_numpy(m))

"""A vision-transformer discriminator (`--dbackbone vit`), a drop-in for the residual one.

Self-attention lets every patch see the whole image from the first block, which may help
D judge whether an art style is kept consistently across distant parts of a face. It
keeps what makes StyleGAN2's D trainable with the same settings:
  * every linear map (patch embedding, attention, MLP, head) is an equalised-learning-rate
    FullyConnectedLayer, so --dlr and R1's gamma mean what they mean for the residual D;
    the class token and position embedding start at N(0, 0.02^2), as ViTs do;
  * the minibatch standard deviation of the final class-token features is appended
    before the head, as the residual D appends it before its 4x4 conv;
  * conditioning is the same projection: score = <features, cmap(c)> / sqrt(cmap_dim);
  * attention is written with plain matmul and softmax, which autograd can differentiate
    twice (R1 differentiates D's gradient with respect to the image).
Submodules are named as timm's VisionTransformer names them (patch_embed.proj,
blocks.{i}.attn.qkv, ...), so `load_backbone_weights` can start from a timm/DeiT file.
It takes the residual D's constructor arguments: the width is its 4x4 width,
min(channel_base // 4, channel_max); num_fp16_res and conv_clamp are accepted and unused.
"""

import math
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..runtime.errors import UserError
from .discriminator import MinibatchStdLayer, class_projection
from .layers import FullyConnectedLayer
from .mapping import MappingNetwork

DEPTH = 4
HEADS = 4
MLP_RATIO = 4


def patch_size_for(resolution: int) -> int:
    """An 8x8 grid of patches up to 64 px (64 tokens), 16x16 above (256 tokens)."""
    return resolution // 8 if resolution <= 64 else resolution // 16


class PatchEmbedding(nn.Module):
    """Non-overlapping p x p patches, each mapped to `width` by one linear layer."""

    def __init__(self, img_channels: int, patch: int, width: int):
        super().__init__()
        self.patch = patch
        self.proj = FullyConnectedLayer(img_channels * patch * patch, width)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        patches = nn.functional.unfold(img, kernel_size=self.patch, stride=self.patch)  # [N, C*p*p, L]
        return self.proj(patches.transpose(1, 2).reshape(-1, patches.shape[1])).reshape(len(img), patches.shape[2], -1)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = FullyConnectedLayer(width, 3 * width)
        self.proj = FullyConnectedLayer(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, width = x.shape
        qkv = self.qkv(x.reshape(-1, width)).reshape(n, tokens, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [N, heads, tokens, head_dim]
        weights = (q @ k.transpose(-2, -1) / math.sqrt(width // self.heads)).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(-1, width)
        return self.proj(out).reshape(n, tokens, width)


class Mlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = FullyConnectedLayer(width, MLP_RATIO * width)
        self.fc2 = FullyConnectedLayer(MLP_RATIO * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.fc2(nn.functional.gelu(self.fc1(x.reshape(-1, shape[-1])))).reshape(shape)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VitDiscriminator(nn.Module):
    """img [N, C, R, R], c [N, c_dim] -> logits [N, 1], like Discriminator.

    Freeze-D (`block_kwargs.freeze_layers` N): the patch embedding counts as the first
    layer and block i as layer i + 1; the first N are frozen.
    """

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, cmap_dim: Optional[int] = None, block_kwargs: Optional[dict] = None,
                 mapping_kwargs: Optional[dict] = None, epilogue_kwargs: Optional[dict] = None, **unused):
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        width = min(channel_base // 4, channel_max)
        if width % HEADS:
            raise ValueError(f"the ViT width {width} (min(channel_base // 4, channel_max)) must divide into {HEADS} heads")
        self.cmap_dim = 0 if c_dim == 0 else (cmap_dim or width)
        self.mbstd = MinibatchStdLayer((epilogue_kwargs or {}).get("mbstd_group_size", 4))
        patch = patch_size_for(img_resolution)
        tokens = (img_resolution // patch) ** 2
        self.patch_embed = PatchEmbedding(img_channels, patch, width)
        self.cls_token = nn.Parameter(torch.randn([1, 1, width]) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn([1, tokens + 1, width]) * 0.02)
        self.blocks = nn.ModuleList(Block(width, HEADS) for _ in range(DEPTH))
        self.norm = nn.LayerNorm(width)
        self.fc = FullyConnectedLayer(width + 1, width, activation="lrelu")
        self.out = FullyConnectedLayer(width, self.cmap_dim if self.cmap_dim else 1)
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=self.cmap_dim, num_ws=None,
                                          w_avg_beta=None, **(mapping_kwargs or {}))
        frozen = (block_kwargs or {}).get("freeze_layers", 0)
        for layer in [self.patch_embed, *self.blocks][:frozen]:
            layer.requires_grad_(False)
        if frozen:
            self.pos_embed.requires_grad_(False)
            self.cls_token.requires_grad_(False)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """[N, width]: the normalised class token after the blocks."""
        x = self.patch_embed(img.to(torch.float32))
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """[N, width + 1]: the features and their std over each group, by the residual D's layer
        (the features as a 1x1 map)."""
        return self.mbstd(x[:, :, None, None]).flatten(1)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor], **unused) -> torch.Tensor:
        x = self.out(self.fc(self.minibatch_std(self.features(img))))
        if self.cmap_dim:
            x = class_projection(x, self.mapping(None, c))
        return x

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, patch={self.patch_embed.patch}"


class BackboneWeightsError(UserError):
    """--dbackbone-weights that cannot start this ViT discriminator."""


def load_backbone_weights(D: VitDiscriminator, path) -> list:
    """Copy a timm/DeiT VisionTransformer state dict (.pt/.pth/.safetensors) into D's backbone.

    timm stores plain nn.Linear/Conv2d weights; ours are equalised (used as weight * gain), so
    each weight is divided by its layer's gain. The patch conv [W, C, p, p] becomes our linear
    [W, C*p*p]; pos_embed is resized to our grid; the classifier `head.*` is skipped.
    Returns the names copied."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: one line naming it
        raise BackboneWeightsError(f"--dbackbone-weights {path}: cannot read it ({error.__class__.__name__}); "
                                   "give a timm/DeiT ViT state dict (.pt, .pth or .safetensors)") from None
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise BackboneWeightsError(f"--dbackbone-weights {path}: not a state dict of tensors")
    ours = dict(D.named_parameters())
    modules = dict(D.named_modules())
    copied = []
    for name, tensor in state.items():
        if name.startswith("head") or name not in ours:
            continue
        value = tensor.float()
        if name == "patch_embed.proj.weight":
            value = value.flatten(1)
        if name == "pos_embed" and value.shape != ours[name].shape:
            value = resize_position_embedding(value, ours[name].shape[1] - 1)
        owner = modules.get(name.rsplit(".", 1)[0])
        if isinstance(owner, FullyConnectedLayer):
            value = value / (owner.weight_gain if name.endswith("weight") else owner.bias_gain)
        if value.shape != ours[name].shape:
            raise BackboneWeightsError(f"--dbackbone-weights {path}: {name} is {list(tensor.shape)}, this D needs "
                                       f"{list(ours[name].shape)} (width min(cbase/4, cmax) = {D.norm.normalized_shape[0]}, "
                                       f"patches of {D.patch_embed.patch} px)")
        with torch.no_grad():
            ours[name].copy_(value)
        copied.append(name)
    if not copied:
        raise BackboneWeightsError(f"--dbackbone-weights {path}: no tensor has a timm ViT name (blocks.0.attn.qkv.weight, ...)")
    return copied


def resize_position_embedding(pos: torch.Tensor, tokens: int) -> torch.Tensor:
    """[1, 1 + g*g, W] -> [1, 1 + tokens, W]: bicubic resize of the patch grid, class token kept."""
    old = int(math.isqrt(pos.shape[1] - 1))
    new = int(math.isqrt(tokens))
    grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = nn.functional.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, new * new, -1)], dim=1)

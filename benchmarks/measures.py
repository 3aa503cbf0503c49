"""Image-quality measures for issue 12: the border strip, the grid texture and the style layers' balance.

All image measures are pure numpy functions of RGB images (PIL images or arrays, H x W x 3, uint8 0-255 or
float 0-1) and are *relative*: each is divided by the same measure of the content photo resized to the
render's shape, so a render that merely keeps the photo scores 1.

* :func:`border_ratio` -- the strip of coloured dots along the edges. Mean absolute Laplacian of the grey
  image in the outermost ``width`` px, over the same mean in the interior; relative to the photo.
* :func:`grid_ratio` -- the fine regular grid/halftone over flat regions. In a box (by default the sky of
  Tübingen: rows 3-28 %, columns 5-55 %), the share of the AC power spectrum that lies in the 3 x 3 bins
  around each lattice frequency of periods 2 and 4 px (0, 1/4, 1/2, 3/4 cycles/px per axis, (0, 0) left out),
  of the mean-free, Hann-windowed grey box; relative to the photo.
* :func:`style_gradient_split` -- per style layer, the norm of the gradient (with respect to the image, at
  the start image) of that layer's weighted style term w_l E_l, as a share of the sum over layers. The issue's
  target: conv3_1..conv5_1 together >= 1/3 (:func:`deep_share`).

Blur lowers the grid measure too: read it beside the images, never alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Rows 3-28 %, columns 5-55 %: the sky of Tübingen (the issue's box).
SKY_BOX = (0.03, 0.28, 0.05, 0.55)
#: Lattice frequencies of periods 2 and 4 px, in cycles per pixel, per axis.
LATTICE = (0.0, 0.25, 0.5, 0.75)
DEEP_LAYERS = ("conv3_1", "conv4_1", "conv5_1")


def _as_float(img: Any) -> np.ndarray:
    """RGB (or grey) image -> float64 array in [0, 1], H x W x C."""
    a = np.asarray(img)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if a.ndim == 2:
        a = a[..., None]
    return a


def grey(img: Any) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) of an RGB image as float in [0, 1], H x W."""
    a = _as_float(img)
    if a.shape[-1] == 1:
        return a[..., 0]
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def resize_like(photo: Any, shape: tuple[int, int]) -> np.ndarray:
    """``photo`` resized (Lanczos, as gatys resizes its inputs) to ``shape`` = (H, W); float RGB in [0, 1]."""
    from PIL import Image

    if not isinstance(photo, Image.Image):
        a = _as_float(photo)
        if a.shape[:2] == tuple(shape):
            return a
        photo = Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8).squeeze())
    if photo.size != (shape[1], shape[0]):
        photo = photo.convert("RGB").resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
    return _as_float(photo.convert("RGB"))


def laplacian(g: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian of a 2-D array, 'valid' part only: shape (H-2, W-2)."""
    return g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]


def border_share(img: Any, width: int = 6) -> float:
    """Mean |Laplacian| of the grey image in the outermost ``width`` px over its mean in the interior."""
    lap = np.abs(laplacian(grey(img)))
    h, w = lap.shape
    k = max(width - 1, 1)  # the Laplacian's valid part starts one pixel in
    if h <= 2 * k or w <= 2 * k:
        raise ValueError(f"image too small for a border of {width} px")
    mask = np.ones_like(lap, dtype=bool)
    mask[k : h - k, k : w - k] = False
    inner = lap[~mask].mean()
    return float(lap[mask].mean() / max(inner, 1e-12))


def border_ratio(img: Any, photo: Any, width: int = 6) -> float:
    """The border strip: :func:`border_share` of ``img`` over that of ``photo`` resized to ``img``'s shape.

    1 = the edges are as busy, relative to the interior, as the photo's; the issue's target is <= 1.3.
    """
    a = _as_float(img)
    return border_share(a, width) / border_share(resize_like(photo, a.shape[:2]), width)


def box_of(a: np.ndarray, box: Sequence[float] = SKY_BOX) -> np.ndarray:
    """The part of ``a`` in ``box`` = (row0, row1, col0, col1) as fractions of the height and width."""
    h, w = a.shape[:2]
    r0, r1, c0, c1 = box
    return a[int(round(r0 * h)) : int(round(r1 * h)), int(round(c0 * w)) : int(round(c1 * w))]


def lattice_mask(shape: tuple[int, int], freqs: Sequence[float] = LATTICE, half: int = 1) -> np.ndarray:
    """Boolean mask of FFT bins within ``half`` bins (3 x 3 for 1) of each lattice frequency, (0, 0) excluded.

    Frequencies are cycles per pixel; bins wrap around (0.75 cycles/px is the alias of -0.25).
    """
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for fy in freqs:
        for fx in freqs:
            if fy == 0 and fx == 0:
                continue
            ky, kx = int(round(fy * h)), int(round(fx * w))
            for dy in range(-half, half + 1):
                for dx in range(-half, half + 1):
                    mask[(ky + dy) % h, (kx + dx) % w] = True
    mask[0, 0] = False  # DC never counts
    return mask


def grid_share(img: Any, box: Sequence[float] = SKY_BOX, window: bool = True) -> float:
    """Share of the AC power spectrum of the grey ``box`` that lies in the lattice bins (:func:`lattice_mask`).

    The box has its mean subtracted and (``window=True``, default) a 2-D Hann window applied, so the box's own
    edges do not leak power along the axes: a flat sky then has almost none on the lattice. This is the measure
    that gives the issue's numbers (recommended 256 px render 46x, the reference renders 1.1-1.2x).
    """
    g = box_of(grey(img), box)
    if min(g.shape) < 4:
        raise ValueError(f"the box is too small ({g.shape}) to measure a grid")
    g = g - g.mean()
    if window:
        g = g * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.fft2(g)) ** 2
    power[0, 0] = 0.0
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[lattice_mask(g.shape)].sum() / total)


def grid_ratio(img: Any, photo: Any, box: Sequence[float] = SKY_BOX, window: bool = True) -> float:
    """The grid texture: :func:`grid_share` of ``img`` over that of ``photo`` resized alike.

    1 = no more power on the period-2/4 lattice than the photo; the issue's target is <= 2.
    """
    a = _as_float(img)
    return grid_share(a, box, window) / max(grid_share(resize_like(photo, a.shape[:2]), box, window), 1e-12)


# -- the style layers' balance (needs torch) ------------------------------------------------------------------


def style_gradient_norms(
    model: Any,
    start: Any,
    target_grams: Mapping[str, Any],
    weights: Mapping[str, float],
    pooling: str | None = None,
) -> dict[str, float]:
    """Per style layer, ‖∂(w_l E_l)/∂x‖ at the image ``start`` (a (1, 3, H, W) tensor in [0, 1])."""
    from gatys._optimize import style_gradient_norms as unweighted

    norms = unweighted(model, start, {n: target_grams[n] for n in weights}, pooling)
    return {n: abs(w) * norms[n] for n, w in weights.items()}


def style_gradient_split(
    model: Any,
    start: Any,
    style: Any,
    weights: Mapping[str, float],
    pooling: str | None = None,
) -> dict[str, float]:
    """Each style layer's share of the style loss's initial gradient: ‖∇ w_l E_l‖ / Σ_l ‖∇ w_l E_l‖.

    Args:
        model: a :class:`gatys.vgg.VGGFeatures`.
        start: the start image, (1, 3, H, W) in [0, 1] (the photo for ``init="content"``).
        style: the style image as a tensor (1, 3, h, w) in [0, 1], already at the style size; its Gram
            matrices are scaled to the start image's M_l as :class:`gatys.StyleTransfer` does.
        weights: style layer -> w_l (e.g. ``Preset.layer_weights``).

    Returns:
        layer -> share (summing to 1), plus ``"deep"`` = the share of conv3_1..conv5_1 and ``"norm_total"``
        = ‖Σ_l ∇ w_l E_l‖ / Σ_l ‖∇ w_l E_l‖ (1 when the layers' gradients point the same way).
    """
    grams = target_grams(model, start, style, list(weights), pooling)
    norms = style_gradient_norms(model, start, grams, weights, pooling)
    total = sum(norms.values()) or 1.0
    out = {name: n / total for name, n in norms.items()}
    out["deep"] = deep_share(out)
    out["norm_total"] = _total_norm(model, start, grams, weights, pooling) / total
    return out


def deep_share(split: Mapping[str, float], deep: Sequence[str] = DEEP_LAYERS) -> float:
    """The share of the deep layers (conv3_1..conv5_1) in a per-layer split."""
    return float(sum(v for k, v in split.items() if k in deep))


def target_grams(model: Any, start: Any, style: Any, layers: list[str], pooling: str | None = None) -> dict[str, Any]:
    """The style's Gram matrices A^l scaled to ``start``'s M_l (as :class:`gatys.StyleTransfer` scales them)."""
    import torch

    from gatys.losses import gram_matrix

    with torch.no_grad():
        fs = model(style, layers, pooling)
        fc = model(start, layers, pooling)
        return {
            n: gram_matrix(fs[n]) * (fc[n].shape[2] * fc[n].shape[3] / (fs[n].shape[2] * fs[n].shape[3]))
            for n in layers
        }


def _total_norm(model: Any, start: Any, grams: Mapping[str, Any], weights: Mapping[str, float], pooling: Any) -> float:
    import torch

    from gatys.losses import style_loss

    x = start.detach().clone().requires_grad_(True)
    feats = model(x, list(weights), pooling)
    (g,) = torch.autograd.grad(style_loss(feats, grams, weights), x)
    return float(g.norm())


def balanced_weights(
    model: Any,
    start: Any,
    style: Any,
    layers: Sequence[str],
    pooling: str | None = None,
) -> dict[str, float]:
    """Layer weights that give every style layer the same initial gradient norm (summing to 1).

    w_l ∝ 1 / ‖∇E_l‖ at ``start``: what ``style_balance="gradient"`` computes in the library
    (:func:`gatys._optimize.balance_style_weights`), normalised to sum to 1.
    """
    from gatys._optimize import style_gradient_norms as unweighted

    norms = unweighted(model, start, target_grams(model, start, style, list(layers), pooling), pooling)
    inv = {n: 1.0 / max(v, 1e-30) for n, v in norms.items()}
    s = sum(inv.values())
    return {n: v / s for n, v in inv.items()}

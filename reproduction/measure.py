"""Measurements on finished images and on the network: per-layer losses, a layer's share of a pass, step time.

Losses are measured the way :meth:`gatys.StyleTransfer.stylize` optimises them (Eqs. 1, 4 and 5 of the paper),
so the numbers of different runs compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from PIL import Image

from gatys import StyleTransfer
from gatys import image as im
from gatys.losses import content_loss, gram_matrix, style_layer_loss
from gatys.presets import PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS
from gatys.vgg import walk

#: The deepest layer any figure reads; a forward pass to it is one "full step" of the time estimate.
DEEPEST_LAYER = PAPER_STYLE_LAYERS[-1]


@torch.no_grad()
def _features(model: torch.nn.Module, img: Image.Image, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    return model(im.to_tensor(img).to(device), list(layers))


@torch.no_grad()
def style_losses(
    model: torch.nn.Module, image: Image.Image, style: Image.Image, layers: Sequence[str] = PAPER_STYLE_LAYERS
) -> dict[str, float]:
    """E_l (Eq. 4) of ``image`` against ``style`` at each layer, measured the way :meth:`stylize` does.

    The style image is resized to the image's longest side and its Gram matrix scaled by M_image / M_style,
    as the library does when the two differ in shape.
    """
    style = im.resize_longest(style, max(image.size), "style image")
    f = _features(model, image, layers)
    s = _features(model, style, layers)
    out = {}
    for name in layers:
        m_img = f[name].shape[2] * f[name].shape[3]
        m_style = s[name].shape[2] * s[name].shape[3]
        out[name] = float(style_layer_loss(f[name], gram_matrix(s[name]) * (m_img / m_style)))
    return out


def weighted_style_loss(per_layer: Mapping[str, float], layers: Sequence[str] = PAPER_STYLE_LAYERS) -> float:
    """L_style = Σ w_l E_l (Eq. 5) with w_l = 1/len(layers) over ``layers``."""
    return sum(per_layer[name] for name in layers) / len(layers)


@torch.no_grad()
def content_loss_at(
    model: torch.nn.Module, image: Image.Image, photo: Image.Image, layer: str = PAPER_CONTENT_LAYER
) -> float:
    """L_content (Eq. 1) of ``image`` against ``photo`` (resized to the same size) at ``layer``."""
    photo = photo if photo.size == image.size else photo.resize(image.size, Image.Resampling.LANCZOS)
    return float(content_loss(_features(model, image, [layer])[layer], _features(model, photo, [layer])[layer]))


def depth_fraction(channels: Sequence[Sequence[int]], layer: str) -> float:
    """Share of a forward pass to :data:`DEEPEST_LAYER` spent up to ``layer``.

    Counted in conv FLOPs per pixel of the input: each pooling before a block quarters the area.

    Args:
        channels: output channels per convolution per block, a :attr:`gatys.vgg.VGGConfig.channels`.
        layer: a convolution's name.
    """
    cost, total, at = 0.0, 0.0, 0.0
    for conv in walk(channels):
        cost += conv.in_channels * conv.out_channels / 4 ** (conv.block - 1)
        if conv.name == layer:
            at = cost
        if conv.name == DEEPEST_LAYER:
            total = cost
    return at / total if total else 1.0


def calibrate(
    st: StyleTransfer, photo: Image.Image, painting: Image.Image, size: int, *, steps: int = 6, warmup: int = 2
) -> float:
    """Seconds per full-depth L-BFGS step at ``size`` px, from a short run, not counting its first steps.

    The first steps at a new size pay for allocations and kernel selection, so they are left out.
    """
    out = st.stylize(photo, painting, preset="paper", size=size, steps=warmup + steps, seed=0)
    t = [s.elapsed for s in out.losses]
    return (t[-1] - t[warmup - 1]) / steps

"""The paper's losses, as pure functions of feature tensors.

Notation of Gatys, Ecker & Bethge (2015): a layer with N_l filters has feature maps of size
M_l = height x width; F^l is the (N_l x M_l) matrix of the generated image's responses, P^l the
content image's, G^l = F^l F^lT the generated image's Gram matrix and A^l the style image's.

Each function states its equation; the fast CPU products and the closed-form gradients that compute it live
in the private :mod:`gatys._kernels` beside this module.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from . import _kernels


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = ½ Σ (F − P)² (Eq. 1); its backward is Eq. 2, F − P (where F > 0, through the ReLU)."""
    return _kernels.ContentLoss.apply(features, target)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ (Eq. 3), unnormalised, for features of shape (B, N, H, W) -> (B, N, N).

    Accumulates in fp32 even when the features are bf16.
    """
    return _kernels.gram(features)


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """E_l = Σ (G − A)² / (4 N_l² M_l²) (Eq. 4), with G = F Fᵀ the Gram matrix of ``features``.

    Args:
        features: F^l of shape (B, N, H, W), so M_l = H W.
        target_gram: A^l of shape (B or 1, N, N).

    Its backward is the paper's closed form (Eq. 6), one matmul instead of autograd's three.
    """
    return _kernels.StyleLayerLoss.apply(features, target_gram)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
) -> torch.Tensor:
    """L_style = Σ_l w_l E_l (Eq. 5) over the layers in ``weights``."""
    total = None
    for name, w in weights.items():
        term = w * style_layer_loss(features[name], target_grams[name])
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer")
    return total


def total_loss(l_content: torch.Tensor, l_style: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """L_total = α L_content + β L_style (Eq. 7)."""
    return alpha * l_content + beta * l_style


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: Σ of squared differences between neighbouring pixels (not in the paper).

    The squared form is the one jcjohnson/neural-style and Mahendran & Vedaldi (2015) use.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).sum() + dy.pow(2).sum()

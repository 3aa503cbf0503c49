"""The paper's losses, as pure functions of feature tensors.

Notation of Gatys, Ecker & Bethge (2015): a layer with N_l filters has feature maps of size
M_l = height x width; F^l is the (N_l x M_l) matrix of the generated image's responses, P^l the
content image's, G^l = F^l F^lT the generated image's Gram matrix and A^l the style image's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def _acc(t: torch.Tensor) -> torch.Tensor:
    """Accumulate in fp32 (or fp64 when given fp64): bf16 sums of squares lose too many digits."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ (Eq. 3), unnormalised, for features of shape (B, N, H, W) -> (B, N, N).

    A batched matmul; accumulates in fp32 even when the features are bf16.
    """
    b, n, h, w = features.shape
    f = _acc(features.reshape(b, n, h * w))
    return torch.bmm(f, f.transpose(1, 2))


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_content = ½ Σ (F − P)² (Eq. 1)."""
    diff = _acc(features) - _acc(target)
    return 0.5 * diff.pow(2).sum()


def layer_style_loss(gram: torch.Tensor, target_gram: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """E_l = Σ (G − A)² / (4 N_l² M_l²) (Eq. 4), from Gram matrices."""
    return (gram - target_gram).pow(2).sum() / (4.0 * n * n * m * m)


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """E_l of features (B, N, H, W) against a target Gram matrix A (B or 1, N, N)."""
    _, n, h, w = features.shape
    return layer_style_loss(gram_matrix(features), target_gram, n, h * w)


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

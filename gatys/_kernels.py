"""The fast kernels behind :mod:`gatys.losses`: CPU matmul dispatch and the paper's closed-form gradients.

Private: :mod:`gatys.losses` states the equations and calls in here. Everything in this module computes what
the plain PyTorch expression in its docstring computes, only faster on CPU or with less memory; each fast path
is tested against the plain one (tests/test_perf_helpers.py, tests/test_losses.py).
"""

from __future__ import annotations

import functools
from typing import Any

import torch


def acc(t: torch.Tensor) -> torch.Tensor:
    """Accumulate in fp32 (or fp64 when given fp64): bf16 sums of squares lose too many digits."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


# oneDNN's matmul, which PyTorch exposes for fp32 only as this op (torch.compile emits it for CPU linear
# layers). On the benchmark CPU (AMD EPYC, AVX-512) it runs the style gradient's (M x N) @ (N x N) products
# about twice as fast as the MKL sgemm behind torch.bmm (benchmarks/README.md). Without it, off the CPU, or
# with autograd on, bmm does the same product.
_onednn_linear: Any = getattr(torch.ops.mkldnn, "_linear_pointwise", None)


@functools.cache
def _onednn_dtypes() -> tuple[torch.dtype, ...]:
    if _onednn_linear is None or not torch.backends.mkldnn.is_available():
        return ()
    return (torch.float32, torch.bfloat16) if torch.ops.mkldnn._is_mkldnn_bf16_supported() else (torch.float32,)


def _use_onednn(*matrices: torch.Tensor) -> bool:
    """Whether ``_onednn_linear`` can multiply these 2-D CPU matrices (it has no autograd formula)."""
    # torch.compile cannot trace this op (it has no fake-tensor kernel): compiled code takes the plain matmuls.
    return (
        not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and all(m.device.type == "cpu" and m.dim() == 2 and m.dtype in _onednn_dtypes() for m in matrices)
    )


def _channels_last(t: torch.Tensor) -> bool:
    """Whether ``t`` is stored channels_last (and not also plain contiguous, as 1 x 1 maps are)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def gram_cpu(features: torch.Tensor) -> torch.Tensor | None:
    """F Fᵀ of one fp32 channels_last CPU feature map (1, N, H, W) by the fastest product measured; else None.

    bf16 features are left to the caller's bmm, converted in their own (channels_last) layout in one streaming
    pass: oneDNN would want them transposed, and the transposing copy costs more than its faster product saves
    (measured).
    """
    b, n, h, w = features.shape
    if not (_channels_last(features) and b == 1 and features.dtype == torch.float32):
        return None
    if not _use_onednn(features.reshape(n, h * w)):
        return None
    return _gram_fp32_cpu(features.reshape(n, h * w).t())[None]


def _gram_fp32_cpu(x: torch.Tensor) -> torch.Tensor:
    """Xᵀ X for the (M x N) matrix X of channels_last features, the fastest way measured per width N.

    Measured on the benchmark CPU (AMD EPYC, 2 cores), the paper's layers at 256 and 512 px: for N >= 256,
    oneDNN on a transposed copy (0.6x the time of bmm at conv4_1); for N = 128, the symmetric product by blocks
    (three quarters of the multiply-adds, 0.87x); for N = 64, bmm (blocks of 32 run slower). Together 2.8 ms
    less per step at 256 px, 8 ms at 512 px. The copy is made only up to 8 MB: larger transient copies
    fragmented the heap and raised the peak RSS of a 1024 px run by 220 MB (measured), for under 1 % of a step.
    """
    m, n = x.shape
    if n >= 256 and x.numel() * x.element_size() <= 8 << 20:
        xt = x.t().contiguous()
        return _onednn_linear(xt, xt, None, "none", [], "")
    if n >= 128 and n % 2 == 0:
        h = n // 2
        a, c = x[:, :h], x[:, h:]
        g = torch.empty(n, n, dtype=x.dtype)
        torch.mm(a.t(), a, out=g[:h, :h])
        torch.mm(c.t(), c, out=g[h:, h:])
        torch.mm(a.t(), c, out=g[:h, h:])
        g[h:, :h] = g[:h, h:].t()
        return g
    return torch.mm(x.t(), x)


def gram_bmm(features: torch.Tensor) -> torch.Tensor:
    """F Fᵀ as one batched matmul, accumulated in fp32 even when the features are bf16."""
    b, n, h, w = features.shape
    f = acc(features.reshape(b, n, h * w))
    return torch.bmm(f, f.transpose(1, 2))


def gram(features: torch.Tensor) -> torch.Tensor:
    """F Fᵀ for features (B, N, H, W) -> (B, N, N): the CPU fast path where it applies, else bmm."""
    fast = gram_cpu(features)
    return fast if fast is not None else gram_bmm(features)


class ContentLoss(torch.autograd.Function):
    """½ Σ (F − P)² with the paper's closed-form gradient (Eq. 2): ∂L/∂F = F − P.

    One subtraction forward and one multiplication backward, the gradient in the features' own layout
    (``mse_loss``'s backward zero-fills a buffer first and costs several times more on CPU).
    """

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = acc(features) - acc(target)
        ctx.save_for_backward(diff)
        ctx.dtypes = features.dtype, target.dtype
        return 0.5 * diff.pow(2).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        (diff,) = ctx.saved_tensors
        g = diff * grad
        grad_features = g.to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_target = (-g).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return grad_features, grad_target


class StyleLayerLoss(torch.autograd.Function):
    """E_l = Σ (F Fᵀ − A)² / (4 N² M²) from features, with the paper's closed-form gradient (Eq. 6) as backward.

    Autograd through the Gram matrix spends three matmuls per layer and step (G, then one for each factor
    of F Fᵀ) and adds the two halves; Eq. 6 needs one: ∂E_l/∂F = (G − A) F / (N² M²). The ReLU mask of
    Eq. 6 (zero where F < 0) comes from the ReLU's own backward.
    """

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
        _, n, h, w = features.shape
        diff = gram(features) - target_gram
        ctx.scale = 1.0 / (4.0 * n * n * (h * w) ** 2)
        ctx.target_shape = target_gram.shape
        ctx.save_for_backward(features, diff)
        return torch.dot(diff.flatten(), diff.flatten()) * ctx.scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        features, diff = ctx.saved_tensors
        grad_features = grad_target = None
        if ctx.needs_input_grad[0]:
            # ∂/∂F Σ (F Fᵀ − A)² = 2 (D + Dᵀ) F with D = G − A, i.e. Eq. 6 for any A.
            d = torch.add(diff, diff.transpose(1, 2)).mul_(2.0 * ctx.scale * grad)
            grad_features = _times_features(d, features)
        if ctx.needs_input_grad[1]:
            grad_target = (diff * (-2.0 * ctx.scale * grad)).sum_to_size(ctx.target_shape)
        return grad_features, grad_target


def _times_features(d: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """d F for the symmetric (B, N, N) matrix d, shaped and laid out as ``features`` (B, N, H, W).

    The result is a fresh tensor in the features' own layout, not a view, so that autograd adds the network's
    gradient into it in place instead of allocating the sum.
    """
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)
    channels_last = _channels_last(features)
    if channels_last and b == 1 and _use_onednn(f[0]):
        # channels_last features are X = Fᵀ, an (M x N) matrix in memory: the gradient's transpose is X d
        # (d = dᵀ), in X's layout and dtype. For bf16 features d is rounded to bf16 like every other gradient
        # of the bf16 network's backward pass.
        x = f[0].t()
        out = _onednn_linear(x, d[0].to(x.dtype), None, "none", [], "")
        out.as_strided_((b, n, h, w), (n * h * w, 1, w * n, n))
    elif channels_last:
        out = torch.empty_like(features, dtype=acc(d).dtype)
        torch.bmm(acc(f).transpose(1, 2), d, out=out.permute(0, 2, 3, 1).view(b, h * w, n))
    else:
        out = torch.empty_like(features, dtype=acc(d).dtype, memory_format=torch.contiguous_format)
        torch.bmm(d, acc(f), out=out.view(b, n, h * w))
    return out.to(features.dtype)

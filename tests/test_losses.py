"""Every loss against a hand-written reference, and the paper's analytic style gradient."""

from __future__ import annotations

import pytest
import torch

from gatys.losses import content_loss, gram_matrix, style_layer_loss, style_loss, total_loss, tv_loss


def _features(seed=0, b=1, n=3, h=4, w=5):
    return torch.randn(b, n, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_gram_matrix_matches_loops():
    f = _features()
    g = gram_matrix(f.float()).double()
    flat = f[0].reshape(3, -1)
    ref = torch.zeros(3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            ref[i, j] = sum(flat[i, k] * flat[j, k] for k in range(flat.shape[1]))
    assert torch.allclose(g[0], ref, rtol=1e-5, atol=1e-5)


def test_gram_matrix_exact_small():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # N=2 filters, M=2 positions
    assert gram_matrix(f).tolist() == [[[5.0, 1.0], [1.0, 10.0]]]


def test_content_loss_exact():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    p = torch.tensor([[[[0.0, 2.0], [5.0, 4.0]]]])
    assert content_loss(f, p).item() == 0.5 * (1 + 0 + 4 + 0)


def test_style_layer_loss_exact():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # G = [[5,1],[1,10]]
    a = torch.tensor([[[4.0, 0.0], [0.0, 8.0]]])
    n, m = 2, 2
    expected = ((5 - 4) ** 2 + 1 + 1 + (10 - 8) ** 2) / (4 * n**2 * m**2)
    assert abs(style_layer_loss(f, a).item() - expected) < 1e-7


def test_style_loss_is_weighted_sum():
    feats = {"a": _features(1).float(), "b": _features(2, n=4, h=2, w=2).float()}
    targets = {
        k: gram_matrix(_features(3 + i, n=v.shape[1], h=v.shape[2], w=v.shape[3]).float())
        for i, (k, v) in enumerate(feats.items())
    }
    weights = {"a": 0.25, "b": 0.75}
    expected = sum(w * style_layer_loss(feats[k], targets[k]) for k, w in weights.items())
    assert torch.allclose(style_loss(feats, targets, weights), expected)


def test_total_loss():
    assert (
        total_loss(
            torch.tensor(2.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64), alpha=1e-3, beta=1.0
        ).item()
        == 2e-3 + 3.0
    )


def test_tv_loss_exact():
    x = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    # horizontal: (1-0)^2 + (7-3)^2 = 17 ; vertical: (3-0)^2 + (7-1)^2 = 45
    assert tv_loss(x).item() == 62.0
    assert tv_loss(torch.ones(1, 3, 8, 8)).item() == 0.0


def test_style_gradient_matches_paper_formula():
    """dE_l/dF^l_ij = 1/(N² M²) ((F^l)ᵀ (G^l − A^l))_ji where F > 0, and 0 where F < 0 (paper, Eq. 6).

    The features are rectified responses F = relu(Z); autograd through the ReLU must reproduce the
    paper's masked analytic gradient.
    """
    n, h, w = 6, 5, 4
    m = h * w
    z = torch.randn(1, n, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(7), requires_grad=True)
    a = gram_matrix(
        torch.relu(torch.randn(1, n, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(8)))
    )
    f = torch.relu(z)
    g = gram_matrix(f)
    e = style_layer_loss(f, a)
    e.backward()
    fm = f.detach().reshape(n, m)  # F: N x M
    analytic = (fm.T @ (g.detach()[0] - a[0])).T / (n**2 * m**2)  # N x M
    analytic = torch.where(fm > 0, analytic, torch.zeros_like(analytic))
    assert torch.allclose(z.grad.reshape(n, m), analytic, rtol=1e-9, atol=1e-12)
    assert (z.grad.reshape(n, m)[fm <= 0] == 0).all()


def test_content_gradient_matches_paper_formula():
    """dL_content/dF = (F − P) where F > 0, and 0 where F < 0 (paper, Eq. 2)."""
    z = torch.randn(1, 4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    p = torch.rand(1, 4, 3, 3, dtype=torch.float64)
    f = torch.relu(z)
    content_loss(f, p).backward()
    expected = torch.where(f.detach() > 0, f.detach() - p, torch.zeros_like(p))
    assert torch.allclose(z.grad, expected.float().double(), atol=1e-6)


def test_gram_bf16_accumulates_fp32():
    f = torch.rand(1, 4, 8, 8)
    g = gram_matrix(f.bfloat16())
    assert g.dtype == torch.float32
    assert torch.allclose(g, gram_matrix(f), rtol=2e-2)


@pytest.mark.parametrize("n", [64, 128, 256, 512])
def test_gram_of_channels_last_features_matches_bmm(n):
    """The CPU fast paths (blocks for N = 128, oneDNN for N >= 256) give the plain product's Gram matrix."""
    f = torch.rand(1, n, 6, 10, generator=torch.Generator().manual_seed(n)).contiguous(
        memory_format=torch.channels_last
    )
    flat = f.contiguous().reshape(1, n, -1).double()
    expected = torch.bmm(flat, flat.transpose(1, 2))
    with torch.no_grad():
        g = gram_matrix(f)
    assert g.shape == (1, n, n) and g.dtype == torch.float32
    assert torch.allclose(g.double(), expected, rtol=1e-5, atol=1e-4)
    assert torch.equal(g, g.transpose(1, 2))  # symmetric exactly, as F Fᵀ is

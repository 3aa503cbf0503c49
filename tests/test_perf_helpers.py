"""The performance helpers: malloc tuning, closed-form loss gradients, oneDNN products, bf16, benchmark parts.

Nothing here is timed; each test checks that a fast path computes what the plain one does.
"""

from __future__ import annotations

import resource

import pytest
import torch

from gatys import allocator
from gatys.losses import content_loss, gram_matrix, layer_style_loss, style_layer_loss

CL = torch.channels_last


def _rand(*shape, seed=0, dtype=torch.float64, channels_last=False):
    t = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return t.contiguous(memory_format=CL) if channels_last else t


# --- gatys.allocator ----------------------------------------------------------------------------------------


def test_tune_allocator_is_idempotent_and_harmless():
    first = allocator.tune_allocator()
    assert allocator.tune_allocator() is first
    assert allocator.is_tuned() is first
    assert allocator.enabled() or not first
    a = torch.arange(10_000_000, dtype=torch.float32)  # 40 MB: above glibc's largest mmap threshold
    assert a.sum().item() == pytest.approx(49999995000000.0, rel=1e-6)
    del a
    allocator.release_memory()
    allocator.release_memory()
    b = torch.ones(10_000_000)
    assert b.sum().item() == 10_000_000


def test_tuned_allocator_reuses_large_blocks():
    """In a fresh process (what earlier tests allocated must not decide it), 64 MB tensors reuse heap pages."""
    import json
    import subprocess
    import sys

    code = """
import json, resource, torch
from gatys import allocator
ok = allocator.tune_allocator()
faults = []
for _ in range(4):  # 64 MB, above glibc's mmap threshold: untuned, every one is mapped afresh
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16_000_000).sum()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"ok": ok, "faults": faults}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        pytest.skip("malloc tuning needs glibc and no GATYS_TUNE_MALLOC=0")
    faults = result["faults"]
    pages = 16_000_000 * 4 // 4096
    assert min(faults[1:]) < pages // 4, faults  # reused from the heap: (almost) no page faults


def test_allocator_opt_out(monkeypatch):
    monkeypatch.setattr(allocator, "_tuned", False)
    monkeypatch.setenv(allocator.ENV_VAR, "0")
    assert not allocator.enabled()
    assert allocator.tune_allocator() is False
    allocator.release_memory()  # a no-op when not tuned
    monkeypatch.setenv(allocator.ENV_VAR, "1")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert not allocator.enabled()  # the user's own malloc tunables win


def test_stylize_tunes_allocator_on_cpu(tiny_st, content_img, style_img):
    tiny_st.stylize(content_img, style_img, size=32, steps=2)
    assert allocator.is_tuned() or not allocator.enabled()


# --- closed-form loss gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels_last", [False, True])
def test_style_layer_loss_gradcheck(channels_last):
    f = _rand(1, 5, 4, 3, channels_last=channels_last).requires_grad_(True)
    a = _rand(1, 5, 5, seed=1).requires_grad_(True)  # not symmetric: the gradient must not assume it
    assert torch.autograd.gradcheck(style_layer_loss, (f, a))


@pytest.mark.parametrize("channels_last", [False, True])
def test_style_layer_loss_matches_autograd_through_gram(channels_last):
    f = _rand(2, 6, 5, 4, channels_last=channels_last).requires_grad_(True)
    a = gram_matrix(_rand(1, 6, 5, 4, seed=2))
    fast = style_layer_loss(f, a)
    (g_fast,) = torch.autograd.grad(fast, f)
    plain = layer_style_loss(gram_matrix(f), a, 6, 20)
    (g_plain,) = torch.autograd.grad(plain, f)
    assert torch.allclose(fast, plain) and torch.allclose(g_fast, g_plain)


def test_style_gradient_keeps_layout_and_is_no_view():
    """A fresh channels_last gradient lets autograd accumulate the network's gradient into it in place."""
    f = _rand(1, 8, 6, 5, dtype=torch.float32, channels_last=True).requires_grad_(True)
    (g,) = torch.autograd.grad(style_layer_loss(f, gram_matrix(f.detach()) * 0.5), f)
    assert g.is_contiguous(memory_format=CL) and g._base is None


def test_fp32_fast_path_matches_fp64():
    """The fp32 path (oneDNN on CPU where available) agrees with an fp64 reference."""
    f64 = _rand(1, 64, 12, 16, channels_last=True).requires_grad_(True)
    a = gram_matrix(_rand(1, 64, 12, 16, seed=3))
    f32 = f64.detach().float().contiguous(memory_format=CL).requires_grad_(True)
    l32, l64 = style_layer_loss(f32, a.float()), style_layer_loss(f64, a)
    l32.backward()
    l64.backward()
    assert l32.item() == pytest.approx(l64.item(), rel=1e-5)
    assert torch.allclose(f32.grad.double(), f64.grad, rtol=1e-4, atol=1e-6 * f64.grad.abs().max().item())
    with torch.no_grad():
        assert torch.allclose(gram_matrix(f32).double(), gram_matrix(f64), rtol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_content_loss_gradcheck(channels_last):
    f = _rand(1, 4, 3, 5, channels_last=channels_last).requires_grad_(True)
    p = _rand(1, 4, 3, 5, seed=1, channels_last=channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(content_loss, (f, p))


# --- bf16 ---------------------------------------------------------------------------------------------------


def test_bf16_features_give_fp32_losses_close_to_fp32():
    f = _rand(1, 32, 8, 8, dtype=torch.float32, channels_last=True)
    target_gram = gram_matrix(_rand(1, 32, 8, 8, seed=4, dtype=torch.float32))
    fb = f.bfloat16().requires_grad_(True)
    ls, lc = style_layer_loss(fb, target_gram), content_loss(fb, f * 0.9)
    assert ls.dtype == lc.dtype == torch.float32
    exact = fb.detach().double()  # the bf16 values themselves, evaluated in fp64
    assert ls.item() == pytest.approx(style_layer_loss(exact, target_gram.double()).item(), rel=1e-5)
    assert lc.item() == pytest.approx(content_loss(exact, (f * 0.9).double()).item(), rel=1e-5)
    (ls + lc).backward()
    assert fb.grad.dtype == torch.bfloat16 and torch.isfinite(fb.grad.float()).all()


def test_bf16_step_reports_fp32_losses(tiny_st, content_img, style_img):
    fp32 = tiny_st.stylize(content_img, style_img, size=32, steps=3, precision="fp32")
    bf16 = tiny_st.stylize(content_img, style_img, size=32, steps=3, precision="bf16")
    # Step 1 is evaluated at the same start image: only the network's bf16 rounding differs.
    a, b = fp32.losses[0], bf16.losses[0]
    assert isinstance(b.loss, float) and b.loss == pytest.approx(a.loss, rel=0.1)
    assert b.style_loss == pytest.approx(a.style_loss, rel=0.1)


# --- benchmark parts ----------------------------------------------------------------------------------------


def test_peer_layer_names(tiny_net):
    from benchmarks.peer_tutorial import tutorial_name

    assert tutorial_name(tiny_net, "conv1_1") == "relu_1"
    assert tutorial_name(tiny_net, "relu4_2") == "relu_9"  # VGG-16: the ninth convolution
    assert tutorial_name(tiny_net, "pool4") == "pool_10"


def test_peer_runs_and_times_its_steps(tiny_net):
    from benchmarks.peer_tutorial import time_steps

    content, style = _rand(1, 3, 32, 32, dtype=torch.float32), _rand(1, 3, 32, 32, seed=1, dtype=torch.float32)
    times = time_steps(tiny_net, content, style, ["conv4_2"], ["conv1_1", "conv2_1", "conv5_1"], steps=3)
    assert len(times) == 3 and all(t > 0 for t in times)


def test_peer_model_matches_gatys_features(tiny_net):
    """The peer's copied Sequential computes gatys' own (rectified) features."""
    from benchmarks.peer_tutorial import features_sequential

    x = _rand(1, 3, 32, 32, dtype=torch.float32)
    seq = features_sequential(tiny_net)
    ours = tiny_net(x, ["conv2_1"])["conv2_1"]
    y = tiny_net.preprocess(x).contiguous()
    for layer in list(seq.children())[:7]:  # conv1_1, relu, conv1_2, relu, pool1, conv2_1, relu
        y = layer(y)
    assert torch.allclose(y, ours, atol=1e-5)

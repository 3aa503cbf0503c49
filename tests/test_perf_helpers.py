"""The performance helpers: closed-form loss gradients, oneDNN products, bf16, benchmark parts.

Nothing here is timed; each test checks that a fast path computes what the plain one does.
"""

from __future__ import annotations

import pytest
import torch

from gatys.losses import content_loss, gram_matrix, style_layer_loss

CL = torch.channels_last


def _rand(*shape, seed=0, dtype=torch.float64, channels_last=False):
    t = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return t.contiguous(memory_format=CL) if channels_last else t


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
    flat = f.reshape(2, 6, 20)
    plain = (flat @ flat.transpose(1, 2) - a).pow(2).sum() / (4.0 * 6**2 * 20**2)  # Eq. 4, autograd through G
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


def test_quality_section_runs_every_variant_to_the_target(tiny_st, content_img, style_img, tmp_path, monkeypatch):
    """The time-to-quality section: the single-scale target, the multi-scale preset from its own init and from
    noise, and the single-scale run from the preset's init, each stopped at the target, in one table."""
    import argparse
    import time

    from benchmarks import speed
    from gatys.presets import PRESETS, get_preset

    # its two scales at 96 px, as at 512 px (the preset itself runs no coarse scale under 256 px)
    monkeypatch.setitem(PRESETS, "quality", PRESETS["quality"].with_overrides(min_scale_size=16))

    bench = object.__new__(speed.Bench)
    bench.st, bench.content, bench.style = tiny_st, content_img, style_img
    bench.preset, bench.clock, bench.device = get_preset("paper"), time.perf_counter, tiny_st.device
    args = argparse.Namespace(
        quality_size=96,
        quality_steps=15,
        quality_precision="fp32",
        quality_preset="quality",
        coarse_steps=3,
        progress=False,
        rounds=1,
        out=str(tmp_path),
        save=lambda: None,
    )
    results: dict = {}
    lines = speed.section_quality(args, bench, results)
    q = results["quality"]
    target = q["target_loss"]
    assert target == results["quality_single"]["history"][-1][1]
    runs = q["multi"]
    n = get_preset("quality").num_scales
    assert [(r["preset"]["num_scales"], r["preset"]["init"]) for r in runs] == [
        (n, "content"),
        (n, "noise"),
        (1, "content"),
    ]
    for r in runs:
        last = r["preset"]["num_scales"] - 1
        losses = [loss for _, scale, loss in r["history"] if scale == last]
        if r["reached"]:  # the run stops at the first step at or below the target
            assert losses[-1] <= target and all(loss > target for loss in losses[:-1])
            assert r["seconds"][0] == r["history"][-1][0]
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 1 + 1 + 2 * len(runs)  # header, the target run, and a row plus a ratio per run
    assert any(line.startswith("| single scale (paper") and "init content" in line for line in table)
    assert (tmp_path / "quality_single_content_96.png").exists()
    assert (tmp_path / "quality_multi_noise_96.png").exists()


@pytest.mark.parametrize("variant", ["photo", "coarse-x4", "photo-history100", "photo-pyramid3-r0.5"])
def test_fine_phase_variants(tiny_st, content_img, style_img, variant):
    """benchmarks.fine_phase: each start is evaluated as the first full-resolution step sees it, and a run stops
    at the first step at or below the target."""
    from benchmarks.fine_phase import FinePhase

    bench = FinePhase(tiny_st, content_img, style_img, 96)
    free = bench.run(variant, target=0.0, cap=8, coarse_steps=3)
    assert len(free["losses"]) == 8 and free["reached"] is None
    assert free["losses"][0][0] == pytest.approx(free["start"][0], rel=1e-5)
    assert (free["coarse_seconds"] > 0) == variant.startswith("coarse")
    if variant == "photo":
        assert free["start"][1] == 0.0  # the photo has no content loss
    target = sorted(loss for loss, _, _ in free["losses"])[3]  # reached within the 8 steps
    stopped = bench.run(variant, target=target, cap=8, coarse_steps=3)
    steps, _ = stopped["reached"]
    assert stopped["losses"][-1][0] <= target and len(stopped["losses"]) == steps
    assert all(loss > target for loss, _, _ in stopped["losses"][:-1])


# --- benchmarks.instant: the Fig. 5 step count and the refine stop ------------------------------------------


def test_instant_benchmark_counts_steps_to_a_loss_and_stops_there():
    from benchmarks.instant import first_at_or_below, lbfgs_trace

    assert first_at_or_below([5.0, 3.0, 2.0, 1.0], 2.5) == 2
    assert first_at_or_below([5.0, 3.0], 5.0) == 0 and first_at_or_below([5.0, 3.0], 1.0) is None

    class Quadratic(torch.nn.Module):  # the objective's call shape: (image, content) -> {"total": loss}
        def forward(self, x, content):
            return {"total": (x - content).pow(2).sum()}

    content = torch.zeros(1, 3, 4, 4)
    start = torch.full_like(content, 0.5)
    losses, seconds, images = lbfgs_trace(Quadratic(), start, content, steps=20)
    assert losses[0] == pytest.approx(12.0) and losses[-1] < 1e-6 and len(losses) == len(seconds) == len(images)
    assert seconds == sorted(seconds) and images[0].dtype == torch.uint8
    stopped, _, _ = lbfgs_trace(Quadratic(), start, content, steps=20, stop_below=1.0)
    assert stopped[-1] <= 1.0 and all(v > 1.0 for v in stopped[:-1])

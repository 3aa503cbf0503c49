"""StyleTransfer on tiny seeded networks and tiny images: every option, determinism, errors, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gatys import PRESETS, Plan, StepInfo, StyleTransfer, StylizeOutput
from gatys.errors import ConfigError, ImageError, WeightsError

FAST = dict(size=32, steps=4)


def test_stylize_returns_output_and_lowers_loss(tiny_st, content_img, style_img):
    out = tiny_st.stylize(content_img, style_img, size=32, steps=15, snapshot_every=5)
    assert isinstance(out, StylizeOutput)
    assert out.image.size == (32, 27)
    assert [s.step for s in out.snapshots] == [5, 10, 15]
    assert len(out.losses) == 15 and out.losses[-1].loss < out.losses[0].loss
    assert out.settings.name == "paper+custom" and out.device == "cpu"


def test_same_seed_same_output(tiny_st, content_img, style_img):
    a = tiny_st.stylize(content_img, style_img, seed=3, **FAST).image
    b = tiny_st.stylize(content_img, style_img, seed=3, **FAST).image
    c = tiny_st.stylize(content_img, style_img, seed=4, **FAST).image
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_init_options(tiny_st, content_img, style_img):
    one = dict(size=32, steps=1, optimizer="adam", learning_rate=1e-6)
    from_content = tiny_st.stylize(content_img, style_img, init="content", **one).image
    ref = content_img.resize(from_content.size)
    assert np.abs(np.asarray(from_content, float) - np.asarray(ref, float)).mean() < 3
    from_image = tiny_st.stylize(content_img, style_img, init_image=style_img, **one).image
    assert np.abs(np.asarray(from_image, float) - np.asarray(style_img.resize(from_image.size), float)).mean() < 3
    noise = tiny_st.stylize(content_img, style_img, init="noise", **one).image
    arr = np.asarray(noise, float)
    assert abs(arr.mean() - 128) < 20 and arr.std() < 30  # low-amplitude white noise around mid-grey


def test_adam_and_lbfgs_both_optimise(tiny_st, content_img, style_img):
    for opt in ("adam", "lbfgs"):
        out = tiny_st.stylize(
            content_img, style_img, size=32, steps=20, optimizer=opt, learning_rate=0.05, init="content"
        )
        assert out.losses[-1].loss < 0.9 * out.losses[0].loss, opt


def test_multiscale_runs_coarse_to_fine(tiny_st, content_img, style_img):
    out = tiny_st.stylize(content_img, style_img, size=64, steps=3, num_scales=2, coarse_steps=2)
    assert [i.size for i in out.losses] == [(32, 27)] * 2 + [(64, 53)] * 3
    assert out.image.size == (64, 53)


def test_coarse_scales_weigh_content_as_the_final_size_does(tiny_st, content_img, style_img):
    """L_content sums over positions, E_l does not: a coarse scale multiplies α by the pixel ratio."""
    out = tiny_st.stylize(content_img, style_img, size=64, steps=2, num_scales=2, coarse_steps=2, alpha_beta=1e-3)
    ratio = (64 * 53) / (32 * 27)
    for info in out.losses:
        alpha = 1e-3 * (ratio if info.scale == 0 else 1.0)
        assert info.loss == pytest.approx(alpha * info.content_loss + info.style_loss, rel=1e-4)


def test_several_styles_blend(tiny_st, content_img, style_img):
    other = style_img.transpose(0)
    out = tiny_st.stylize(content_img, [style_img, other], style_weights=[3, 1], **FAST)
    assert out.image.size == (32, 27)
    with pytest.raises(ConfigError, match="2 style images"):
        tiny_st.stylize(content_img, [style_img, other], style_weights=[1], **FAST)
    with pytest.raises(ConfigError, match="non-negative"):
        tiny_st.stylize(content_img, [style_img, other], style_weights=[1, -1], **FAST)
    with pytest.raises(ConfigError, match="all zero"):
        tiny_st.stylize(content_img, [style_img, other], style_weights=[0, 0], **FAST)


def test_blend_weight_one_equals_single_style(tiny_st, content_img, style_img):
    single = tiny_st.stylize(content_img, style_img, **FAST).image
    blended = tiny_st.stylize(content_img, [style_img, content_img], style_weights=[1, 0], **FAST).image
    assert np.array_equal(np.asarray(single), np.asarray(blended))


def test_style_scale_changes_result(tiny_st, content_img, style_img):
    a = tiny_st.stylize(content_img, style_img, style_scale=1.0, **FAST).image
    b = tiny_st.stylize(content_img, style_img, style_scale=2.0, **FAST).image
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_preserve_colors_keeps_content_chroma(tiny_st, content_img, style_img):
    from gatys import image as im

    out = tiny_st.stylize(content_img, style_img, preserve_colors=True, init="content", size=32, steps=5)
    got = im.rgb_to_yiq(im.to_tensor(out.image))[:, 1:]
    want = im.rgb_to_yiq(im.to_tensor(content_img.resize(out.image.size, 1)))[:, 1:]
    assert (got - want).abs().mean() < 0.03


def test_tv_weight_smooths(tiny_st, content_img, style_img):
    from gatys import image as im
    from gatys.losses import tv_loss

    rough = tiny_st.stylize(content_img, style_img, size=32, steps=10, tv_weight=0.0)
    smooth = tiny_st.stylize(content_img, style_img, size=32, steps=10, tv_weight=1e3)
    assert smooth.losses[-1].tv_loss > 0
    assert tv_loss(im.to_tensor(smooth.image)) < tv_loss(im.to_tensor(rough.image))


def test_callback_gets_typed_steps_and_can_stop(tiny_st, content_img, style_img):
    seen: list[StepInfo] = []

    def cb(info):
        seen.append(info)
        assert info.image.size == (32, 27)
        return False if info.step == 3 else None

    out = tiny_st.stylize(content_img, style_img, size=32, steps=10, callback=cb)
    assert [i.step for i in seen] == [1, 2, 3] and seen[0].total == 10
    assert out.stopped and len(out.losses) == 3


def test_progress_bar_can_be_switched_off(tiny_st, content_img, style_img, capsys):
    tiny_st.stylize(content_img, style_img, progress=False, **FAST)
    assert capsys.readouterr().err == ""
    tiny_st.stylize(content_img, style_img, progress=True, **FAST)
    assert "gatys" in capsys.readouterr().err


def test_bf16_runs(tiny_st, content_img, style_img):
    out = tiny_st.stylize(content_img, style_img, precision="bf16", **FAST)
    assert np.isfinite(out.losses[-1].loss)


def test_bad_arguments_before_compute(tiny_st, content_img, style_img):
    with pytest.raises(ConfigError, match="unknown layer 'conv6_1'"):
        tiny_st.stylize(content_img, style_img, style_layers=("conv1_1", "conv6_1"), **FAST)
    with pytest.raises(ConfigError, match="unknown layer"):
        tiny_st.stylize(content_img, style_img, content_layers=("fc7",), **FAST)
    with pytest.raises(ConfigError, match="steps"):
        tiny_st.stylize(content_img, style_img, size=32, steps=0)
    with pytest.raises(ConfigError, match="unknown preset"):
        tiny_st.stylize(content_img, style_img, preset="monet")
    with pytest.raises(ConfigError, match="precision"):
        tiny_st.stylize(content_img, style_img, precision="fp8", **FAST)
    with pytest.raises(ConfigError, match="at least one style image"):
        tiny_st.stylize(content_img, [], **FAST)
    with pytest.raises(ImageError, match="style image not found"):
        tiny_st.stylize(content_img, "/nonexistent.png", **FAST)


def test_reconstructions(tiny_st, content_img):
    c = tiny_st.reconstruct_content(content_img, "conv2_1", size=32, steps=20)
    assert c.losses[-1].content_loss < 0.5 * c.losses[0].content_loss and c.losses[-1].style_loss == 0
    s = tiny_st.reconstruct_style(content_img, ["conv1_1", "conv2_1"], size=32, steps=20)
    assert s.losses[-1].style_loss < 0.5 * s.losses[0].style_loss and s.losses[-1].content_loss == 0


def test_reconstructions_are_ordinary_settings(tiny_st, content_img):
    """Content only: no style image, so the loss is L_content itself. Style only: no content layer."""
    c = tiny_st.reconstruct_content(content_img, "conv2_1", size=32, steps=2)
    assert all(i.loss == i.content_loss for i in c.losses)
    s = tiny_st.reconstruct_style(content_img, ["conv1_1"], size=32, steps=2)
    assert s.settings.content_layers == () and s.settings.style_layers == ("conv1_1",)
    assert all(i.loss == i.style_loss for i in s.losses)


def test_check_inputs_returns_the_plan_stylize_runs(tiny_st, content_img, style_img):
    other = style_img.transpose(0)
    plan = tiny_st.check_inputs(content_img, [style_img, other], style_weights=[3, 1], size=32, steps=4)
    assert isinstance(plan, Plan)
    assert plan.settings.size == 32 and plan.settings.steps == 4 and plan.blend == (0.75, 0.25)
    assert plan.content.size == content_img.size and len(plan.styles) == 2 and plan.init_image is None
    # stylize's own defaults, written once there
    assert (plan.seed, plan.precision, plan.snapshot_every) == (0, "fp32", 0)
    with pytest.raises(ConfigError, match="callback"):
        tiny_st.check_inputs(content_img, style_img, callback="not a function")
    with pytest.raises(ConfigError, match="unknown setting"):
        tiny_st.check_inputs(content_img, style_img, sizes=32)


def test_from_pretrained_folder_roundtrip(tiny_weights_dir, tiny_net, content_img, style_img):
    st = StyleTransfer.from_pretrained(str(tiny_weights_dir), device="cpu")
    assert st.weights_name == "tiny random VGG-16 (tests)" and "cpu" in st.description
    x = torch.rand(1, 3, 32, 32)
    a = st.model(x, ["conv5_1"])["conv5_1"]
    b = tiny_net(x, ["conv5_1"])["conv5_1"]
    assert torch.allclose(a, b, atol=1e-5)
    st.stylize(content_img, style_img, **FAST)


def test_from_pretrained_uses_accelerate_device(tiny_weights_dir):
    from accelerate import PartialState

    st = StyleTransfer.from_pretrained(str(tiny_weights_dir))
    assert st.device == PartialState().device


def test_missing_or_broken_weights(tmp_path, tiny_weights_dir):
    with pytest.raises(WeightsError, match="not found; run 'bash setup.sh'"):
        StyleTransfer.from_pretrained(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="has no config.json"):
        StyleTransfer.from_pretrained(str(tmp_path / "empty"))
    cfg = json.loads((tiny_weights_dir / "config.json").read_text())
    cfg["architecture"] = "vgg19"
    (tiny_weights_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="blocks must have|does not match"):
        StyleTransfer.from_pretrained(str(tiny_weights_dir))


def test_truncated_safetensors(tiny_weights_dir):
    f = tiny_weights_dir / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        StyleTransfer.from_pretrained(str(tiny_weights_dir))


def test_offline_hub_id_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsError, match="no network|not in the cache|cannot download"):
        StyleTransfer.from_pretrained("someone/vgg19-weights", cache_dir=str(tmp_path / "hf"))


def test_default_weights_resolution(tmp_path, monkeypatch, tiny_weights_dir):
    from gatys import weights

    monkeypatch.delenv("GATYS_WEIGHTS", raising=False)
    monkeypatch.setenv("GATYS_HOME", str(tmp_path / "home"))
    assert weights.default_weights() == weights.DEFAULT_HUB_REPO
    monkeypatch.setenv("GATYS_HOME", str(tiny_weights_dir.parent))
    (tiny_weights_dir.parent / "vgg16-hed").symlink_to(tiny_weights_dir)
    assert weights.default_weights() == str(tiny_weights_dir.parent / "vgg16-hed")
    monkeypatch.setenv("GATYS_WEIGHTS", "org/repo")
    assert weights.default_weights() == "org/repo"


def test_presets_all_run_on_tiny(tiny_st, content_img, style_img):
    for name in ("paper", "paper-1e-4", "preview", "fig3-C-1e-4"):
        tiny_st.stylize(content_img, style_img, preset=PRESETS[name], size=32, steps=1, num_scales=1)

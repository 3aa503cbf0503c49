"""gatys video: flow, warp and the consistency mask; both methods; resume; audio and frame rate; errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import make_image
from PIL import Image
from test_feedforward import tiny_style

from gatys import _videoio
from gatys.video import (
    Motion,
    Stopped,
    consistency_mask,
    feedforward_method,
    iter_frames,
    main,
    optimization_method,
    stylize_video,
    temporal_error,
    warp,
    work_folder,
)

W, H = 48, 32


def panning_frames(n: int = 4, step: int = 2) -> list[np.ndarray]:
    """A textured picture sliding left by ``step`` px per frame: frame t at x equals frame t-1 at x + step."""
    base = np.asarray(make_image(W + n * step, H, seed=5))
    return [np.ascontiguousarray(base[:, t * step : t * step + W]) for t in range(n)]


def write_test_video(path: Path, frames: list[np.ndarray], fps: int = 12, audio: bool = False) -> Path:
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps, options={"crf": "0"})
        v.height, v.width = frames[0].shape[:2] if frames else (H, W)
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=16000) if audio else None
        if a is not None:
            a.layout = "mono"
        c.start_encoding()
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(4096) / 16000)).astype(np.float32)[None]
            for k in range(0, 4096, 1024):
                frame = av.AudioFrame.from_ndarray(tone[:, k : k + 1024].copy(), format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, k
                for p in a.encode(frame):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


@pytest.fixture
def clip(tmp_path):
    return write_test_video(tmp_path / "clip.mp4", panning_frames())


# -- warp, mask, flow -----------------------------------------------------------------------------------------


def test_warp_with_a_known_translation_moves_pixels_where_expected():
    rng = np.random.default_rng(0)
    img = rng.random((20, 30, 3)).astype(np.float32)
    bw = np.zeros((20, 30, 2), np.float32)
    bw[..., 0], bw[..., 1] = 3, 2  # pixel p of frame t came from p + (3, 2) in frame t-1
    out = warp(img, bw)
    assert np.allclose(out[:-2, :-3], img[2:, 3:], atol=1e-6)
    fw = -bw
    mask = consistency_mask(fw, bw)
    assert mask[:-2, :-3].all()  # consistent flow, no motion boundary
    assert not mask[-2:, :].any() and not mask[:, -3:].any()  # came from outside frame t-1


def test_the_mask_drops_inconsistent_flow_and_motion_boundaries():
    bw = np.zeros((20, 30, 2), np.float32)
    fw = np.zeros_like(bw)
    fw[5:10, 5:10, 0] = 4  # forward flow disagrees with backward there: disoccluded
    bw[:, 20:, 0] = -5  # a moving block: its edge is a motion boundary
    fw[:, 15:25, 0] = 5
    mask = consistency_mask(fw, bw)
    assert not mask[5:10, 5:10].any()
    assert not mask[:, 19:21].any()
    assert mask[12:18, 0:4].all()


def test_dis_flow_finds_the_pan_and_the_error_vanishes_on_the_input():
    frames = panning_frames(2, step=2)
    m = Motion.between(frames[0], frames[1])
    inner = m.backward[6:-6, 6:-8]
    assert np.allclose(inner[..., 0], 2, atol=0.3) and np.allclose(inner[..., 1], 0, atol=0.3)
    assert temporal_error(frames[1] / 255.0, frames[0] / 255.0, m) < 1e-3
    shifted = np.roll(frames[1], 5, axis=0) / 255.0  # not what the flow says
    assert temporal_error(shifted, frames[0] / 255.0, m) > 10 * temporal_error(frames[1] / 255.0, frames[0] / 255.0, m)


# -- the methods ----------------------------------------------------------------------------------------------


def test_feedforward_video_keeps_fps_frame_count_and_audio(tmp_path):
    src = write_test_video(tmp_path / "a.mp4", panning_frames(5), fps=15, audio=True)
    fs = tiny_style()
    out = stylize_video(src, tmp_path / "o.mp4", feedforward_method(fs, blend=0.0), keep_frames=True)
    assert out.frames == 5 and out.audio == "copied" and out.fps == Fraction(15) and out.size == (W, H)
    info = _videoio.probe(out.path)
    assert (info.width, info.height, info.fps, info.has_audio) == (W, H, Fraction(15), True)
    assert len(list(iter_frames(out.path))) == 5
    first = next(iter_frames(src))
    expected = np.asarray(fs.stylize(Image.fromarray(first)))
    assert np.array_equal(np.asarray(Image.open(work_folder(out.path) / "frame_000000.png")), expected)


def test_blending_follows_the_warped_previous_output(clip, tmp_path):
    fs = tiny_style()
    errs = {}
    for blend in (0.0, 0.8):
        frames: list[np.ndarray] = []
        stylize_video(clip, tmp_path / f"b{blend}.mp4", feedforward_method(fs, blend=blend), callback=frames.append)
        content = list(iter_frames(clip))
        errs[blend] = np.mean(
            [
                temporal_error(
                    np.asarray(frames[t].image) / 255.0,
                    np.asarray(frames[t - 1].image) / 255.0,
                    Motion.between(content[t - 1], content[t]),
                )
                for t in range(1, len(frames))
            ]
        )
    assert errs[0.8] < errs[0.0]


def test_the_temporal_loss_pulls_towards_the_warped_frame(clip, tmp_path, tiny_st):
    style = make_image(40, 48, seed=2)
    content = list(iter_frames(clip))
    m = Motion.between(content[0], content[1])
    errors = {}
    for weight in (0.0, 1e4):
        method = optimization_method(tiny_st, style, preset="paper", steps=5, temporal_weight=weight, seed=0)
        first = method(torch.from_numpy(content[0] / np.float32(255)).permute(2, 0, 1)[None], None, 0)
        prev = first[0].permute(1, 2, 0).numpy()
        second = method(
            torch.from_numpy(content[1] / np.float32(255)).permute(2, 0, 1)[None], (m.warp(prev), m.mask), 1
        )
        errors[weight] = temporal_error(second[0].permute(1, 2, 0).numpy(), prev, m)
    assert errors[1e4] < 0.5 * errors[0.0]


def test_resume_computes_only_the_missing_frames(clip, tmp_path, tiny_st):
    calls: list[int] = []
    inner = optimization_method(tiny_st, make_image(40, 48, seed=2), preset="paper", steps=2)

    def method(content, previous, index):
        calls.append(index)
        return inner(content, previous, index)

    out = tmp_path / "o.mp4"
    with pytest.raises(Stopped, match="stopped after frame 2"):
        stylize_video(clip, out, method, callback=lambda f: f.index < 1)
    assert calls == [0, 1] and not out.exists()
    half = work_folder(out) / "frame_000001.png"
    half.write_bytes(half.read_bytes()[:50])  # cut short: redone
    calls.clear()
    result = stylize_video(clip, out, method)
    assert calls == [1, 2, 3] and result.resumed == 1 and result.frames == 4
    assert out.is_file() and not work_folder(out).exists()
    calls.clear()
    stylize_video(clip, out, method, run_key={"style": "another"})  # other settings: start over
    assert calls == [0, 1, 2, 3]


# -- the command line -----------------------------------------------------------------------------------------


def test_cli_writes_the_video(clip, tmp_path, capsys):
    model = tiny_style().save_pretrained(tmp_path / "tiny-style")
    out = tmp_path / "out.mp4"
    assert main([str(clip), "--model", str(model), "-o", str(out), "-q"]) == 0
    assert "4 frames" in capsys.readouterr().err
    assert _videoio.probe(out).frames == 4


def zero_frames(tmp_path: Path) -> Path:
    return write_test_video(tmp_path / "empty.mp4", [])


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (lambda c, t, m: [str(zero_frames(t)), "--model", m, "-o", str(t / "o.mp4")], "no frames"),
        (lambda c, t, m: [str(t / "notes.mp4"), "--model", m, "-o", str(t / "o.mp4")], "cannot read"),
        (lambda c, t, m: [str(t / "nope.mp4"), "--model", m, "-o", str(t / "o.mp4")], "does not exist"),
        (lambda c, t, m: [str(c), "--model", m, "-o", str(t / "missing" / "o.mp4")], "does not exist; create it"),
        (lambda c, t, m: [str(c), "--model", m, "-o", str(t / "o.gif")], "unknown video suffix"),
        (lambda c, t, m: [str(c), "-o", str(t / "o.mp4")], "give either --style"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(clip, tmp_path, capsys, make_argv, message):
    (tmp_path / "notes.mp4").write_text("not a video")
    model = str(tiny_style().save_pretrained(tmp_path / "tiny-style"))
    assert main(make_argv(clip, tmp_path, model)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gatys: error:") and message in err and "\n" not in err, err


def test_gatys_video_dispatches(clip, tmp_path, capsys):
    from gatys.cli import main as gatys_main

    assert gatys_main(["video", str(clip), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "give either --style" in capsys.readouterr().err


@pytest.mark.slow
def test_real_model_on_a_pan_across_tubingen(shared_images, tmp_path):
    """The shipped starry-night model on 6 frames of a pan across tubingen.jpg: blending lowers the flicker."""
    photo = Image.open(shared_images / "tubingen.jpg").convert("RGB").resize((160, 120), Image.Resampling.LANCZOS)
    frames = [np.ascontiguousarray(np.asarray(photo)[20:84, 4 * t : 4 * t + 96]) for t in range(6)]
    clip = write_test_video(tmp_path / "pan.mp4", frames)
    from gatys import FastStyle

    fs = FastStyle.from_pretrained("starry-night", device="cpu")
    content = list(iter_frames(clip))
    motions = [Motion.between(content[t - 1], content[t]) for t in range(1, 6)]
    errs = {}
    for blend in (0.0, 0.5):
        got: list[np.ndarray] = []
        stylize_video(clip, tmp_path / f"o{blend}.mp4", feedforward_method(fs, blend=blend), callback=got.append)
        imgs = [np.asarray(f.image) / 255.0 for f in got]
        errs[blend] = np.mean([temporal_error(imgs[t], imgs[t - 1], motions[t - 1]) for t in range(1, 6)])
    assert errs[0.5] < 0.7 * errs[0.0], errs

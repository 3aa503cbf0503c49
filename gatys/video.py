"""Video, temporally consistent: Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016).

Stylising frames one by one makes them flicker: each optimisation lands in a different local optimum. Here frame
t starts from the stylised frame t-1 warped along the optical flow (OpenCV's DIS flow), and a temporal loss
pulls it towards that warped frame wherever the forward-backward flow check finds neither a disocclusion nor a
motion boundary (the paper's Eq. 7-8 and its consistency check). A trained feed-forward model stylises each frame
in one pass and blends in the warped previous output under the same mask.

Frames are decoded one at a time and each stylised frame is written as a PNG into a work folder beside the output
(``OUT.mp4.frames/``), so memory stays bounded and an interrupted run resumes from the last finished frame; the
video is encoded from those PNGs at the input's frame rate, with its audio track copied.

Example:
    >>> from gatys import StyleTransfer
    >>> from gatys.video import optimization_method, stylize_video
    >>> method = optimization_method(StyleTransfer.from_pretrained(), "starry_night.jpg", steps=100)  # doctest: +SKIP
    >>> stylize_video("in.mp4", "out.mp4", method, size=256, progress=True).frames  # doctest: +SKIP
    48
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import _optimize, _videoio
from . import image as im
from ._flow import Motion, consistency_mask, optical_flow, temporal_error, warp
from .errors import ConfigError, GatysError
from .presets import Preset, get_preset

#: γ/α, the temporal loss's weight relative to the content loss's, both as means over their elements (pixels on
#: a 0-255 scale, features): artistic-videos, the authors' code, defaults to -temporal_weight 1e3 with
#: -content_weight 5. See :func:`temporal_scale` for how it maps onto this project's sums.
TEMPORAL_WEIGHT = 200.0
#: Feed-forward mode: the warped previous output's share in each frame where the flow is reliable.
BLEND = 0.5

# -- the per-frame methods ------------------------------------------------------------------------------------


def _as_array(t: torch.Tensor) -> np.ndarray:
    return t.detach()[0].permute(1, 2, 0).float().cpu().numpy()


def _as_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None].to(device)


#: Stylises frame t (content as (1, 3, H, W) in [0, 1]) given the previous stylised frame warped to t and the mask
#: ((H, W, 3) and (H, W) float arrays), or None for the first frame; returns (1, 3, H, W) in [0, 1].
FrameMethod = Callable[[torch.Tensor, "tuple[np.ndarray, np.ndarray] | None", int], torch.Tensor]


def temporal_scale(settings: Preset, model: Any, content_elements: int) -> float:
    """The factor that turns γ/α (:data:`TEMPORAL_WEIGHT`) into this project's weight on mean((c·(x - w))²) for x
    in [0, 1].

    artistic-videos weighs means: γ · mean over D pixels on a 0-255 scale against α · mean over the content
    layer's elements. This project's content loss is ½ Σ (F - P)² weighted by α·alpha_beta_scale, so the same
    balance needs α_here · ½ · (elements) · 255² · γ/α on the [0, 1] mean.
    """
    alpha = settings.alpha_beta * model.config.alpha_beta_scale
    return alpha * 0.5 * content_elements * 255.0**2


class _TemporalEvaluation(_optimize.Evaluation):
    """:class:`gatys._optimize.Evaluation` with Ruder et al.'s temporal term added to the objective."""

    def __init__(self, *args: Any, warped: torch.Tensor, mask: torch.Tensor, weight: float):
        super().__init__(*args)
        self.warped, self.mask, self.weight = warped, mask, weight

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        loss, values = super().loss(x)
        # L_temporal = (1/D) Σ c (x - ω)² (Ruder et al., Eq. 7), D = pixels × channels.
        loss = loss + self.weight * (self.mask * (x - self.warped) ** 2).mean()
        return loss, [float(loss.detach()), *values[1:]]


def optimization_method(
    st: Any,
    style: im.ImageInput,
    *,
    preset: str | Preset = "recommended",
    temporal_weight: float = TEMPORAL_WEIGHT,
    consistent: bool = True,
    first_steps: int | None = None,
    seed: int | None = 0,
    precision: str = "fp32",
    **overrides: Any,
) -> FrameMethod:
    """Per-frame optimisation with :class:`gatys.StyleTransfer`'s network and a preset's settings (one scale).

    Args:
        st: a :class:`gatys.StyleTransfer`.
        style: the painting.
        preset, overrides: as for :meth:`gatys.StyleTransfer.stylize` (``steps``, ``alpha_beta``...); ``size`` is
            the video's (:func:`stylize_video`'s), and a run is one scale.
        temporal_weight: γ/α of the temporal loss (:data:`TEMPORAL_WEIGHT`, the authors' default; 0: none).
        consistent: False stylises every frame independently from the preset's init (the paper's baseline).
        first_steps: steps for the first frame (default the preset's ``steps``); later frames start from the
            warped previous one and need fewer (the paper: 2000 then 800 iterations).
        seed: of the white-noise init, when the preset starts from noise.
    """
    settings = get_preset(preset).with_overrides(**{**overrides, "num_scales": 1})
    st._check_run(settings, 0, precision)
    style_img = im.load_image(style, name="style image")
    if temporal_weight < 0 or not np.isfinite(temporal_weight):
        raise ConfigError(f"temporal weight must be a number >= 0, got {temporal_weight}")
    model, device = st.model, st.device

    def run(content: torch.Tensor, previous: tuple[np.ndarray, np.ndarray] | None, index: int) -> torch.Tensor:
        content = content.to(device)
        h, w = content.shape[2:]
        size = round(max(h, w) * settings.style_scale)
        style_t = im.to_tensor(im.resize_longest(style_img, max(im.MIN_SIDE, size), "style image")).to(device)
        net_content = content
        if settings.preserve_colors:
            net_content = im.luminance(content)
            style_t = im.match_luminance(im.luminance(style_t), net_content)
        targets = _optimize.build_targets(model, settings, net_content, [style_t], [1.0])
        steps = first_steps or settings.steps if index == 0 else settings.steps
        x = _optimize.initial_image(settings, net_content, style_t, None, seed)
        if previous is not None and consistent:
            warped = _as_tensor(previous[0], device)
            warped = im.luminance(warped) if settings.preserve_colors else warped
            mask = torch.from_numpy(previous[1])[None, None].to(device)
            # Departure: Ruder et al. start from the warped frame everywhere and let 800 iterations repaint what
            # the flow could not carry over; here disoccluded pixels and those that entered the frame start from
            # the preset's init instead of smeared border pixels, so a short per-frame budget leaves no streaks.
            x = mask * warped + (1 - mask) * x
        x = x.detach().contiguous().requires_grad_(True)
        if settings.style_balance == "gradient" and targets.grams:
            targets.style_weights = _optimize.balance_style_weights(model, x, targets)
        param = _optimize.FourierImage(x) if settings.parameterization == "fourier" else _optimize.PixelImage(x)
        args = (model, param.image, targets, precision, steps, lambda x, v: None)
        if previous is not None and consistent and temporal_weight > 0:
            n_elements = sum(t.numel() for t in targets.content.values())
            weight = temporal_weight * temporal_scale(settings, model, n_elements)
            f: _optimize.Evaluation = _TemporalEvaluation(*args, warped=warped, mask=mask, weight=weight)
        else:
            f = _optimize.Evaluation(*args)
        if settings.optimizer == "lbfgs":
            _optimize.run_lbfgs(param.leaves, f, steps)
            final = f.best_x
        else:
            _optimize.run_adam(param.leaves, f, settings.learning_rate, box=isinstance(param, _optimize.PixelImage))
            final = param.image().detach()
        return _optimize.pixels(final, content, settings)

    return run


def feedforward_method(fs: Any, *, blend: float = BLEND) -> FrameMethod:
    """Per-frame output of a trained :class:`gatys.FastStyle`, blended with the warped previous output.

    Args:
        blend: the warped previous output's share where the flow is reliable (0: plain per-frame output).
    """
    if not 0 <= blend < 1:
        raise ConfigError(f"blend must be in [0, 1), got {blend}")

    def run(content: torch.Tensor, previous: tuple[np.ndarray, np.ndarray] | None, index: int) -> torch.Tensor:
        y = im.to_tensor(fs.stylize(im.to_pil(content)))
        if previous is None or blend == 0:
            return y
        c = torch.from_numpy(blend * previous[1])[None, None]
        return (1 - c) * y + c * _as_tensor(previous[0], torch.device("cpu"))

    return run


class Stopped(GatysError):
    """The callback asked :func:`stylize_video` to stop; the same call resumes after the last finished frame."""


# -- the video ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FrameInfo:
    """What :func:`stylize_video` reports after each frame."""

    index: int  # 0-based
    total: int  # frames the container announces (0: unknown)
    seconds: float  # this frame's
    reliable: float  # share of the frame where the flow from the previous one passed the consistency check
    image: Image.Image = dataclasses.field(repr=False)
    resumed: bool = False  # read back from the work folder, not computed


@dataclasses.dataclass
class VideoOutput:
    """The written video and how it was made."""

    path: Path
    frames: int
    resumed: int  # frames read back from an earlier run's work folder
    size: tuple[int, int]
    fps: Fraction
    audio: str  # "copied", "none" or "dropped (reason)"
    seconds: float


def frame_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """(width, height) with the longest side ``size`` (default the video's), rounded down to even numbers (H.264's
    yuv420p needs them)."""
    w, h = im.longest_side_shape((width, height), size) if size else (width, height)
    w, h = w - w % 2, h - h % 2
    if min(w, h) < im.MIN_SIDE:
        raise ConfigError(f"frames of {w}x{h} px are too small; each side must be at least {im.MIN_SIDE} px")
    return w, h


def work_folder(output: Path) -> Path:
    """Where the stylised frames of ``output`` are kept until it is encoded: ``OUT.mp4.frames/`` beside it."""
    return output.with_name(output.name + ".frames")


def _frame_path(folder: Path, index: int) -> Path:
    return folder / f"frame_{index:06d}.png"


def _finished_frames(folder: Path) -> int:
    """How many frames from the start are finished in ``folder`` (a frame that does not decode is not)."""
    from .batch import is_finished

    n = 0
    while is_finished(_frame_path(folder, n)):
        n += 1
    return n


def _prepare_work(folder: Path, run_key: dict[str, Any]) -> int:
    """Make or reuse the work folder; returns the number of finished frames to resume from."""
    key_file = folder / "run.json"
    if folder.is_dir() and key_file.is_file():
        try:
            same = json.loads(key_file.read_text()) == run_key
        except ValueError:
            same = False
        if same:
            return _finished_frames(folder)
    if folder.exists():
        shutil.rmtree(folder)  # frames of another run (other input, style or settings): start over
    folder.mkdir()
    im.write_atomic(key_file, json.dumps(run_key, indent=1))
    return 0


def stylize_video(
    video: str | Path,
    output: str | Path,
    method: FrameMethod,
    *,
    size: int | None = None,
    run_key: dict[str, Any] | None = None,
    keep_frames: bool = False,
    callback: Callable[[FrameInfo], Any] | None = None,
    progress: bool = False,
) -> VideoOutput:
    """Stylise every frame of ``video`` with ``method`` and write ``output`` (same frame rate, audio copied).

    Args:
        video: the input video file (any container and codec FFmpeg reads).
        output: .mp4, .m4v, .mov or .mkv; written atomically when every frame is done.
        method: :func:`optimization_method` or :func:`feedforward_method`.
        size: longest side of the output frames in px (default the video's).
        run_key: what identifies the run (style, settings) in the work folder: frames there from a run with
            another key are discarded instead of resumed. The input path and size are always part of it.
        keep_frames: keep the work folder of stylised PNGs after encoding.
        callback: called with a :class:`FrameInfo` after every frame; return False to stop (raises
            :class:`Stopped`; the same call resumes).
        progress: a tqdm bar over frames.
    """
    start = time.perf_counter()
    out = _videoio.check_output(output)
    info = _videoio.probe(video)
    w, h = frame_size(info.width, info.height, size)
    folder = work_folder(out)
    key = {"input": str(Path(video).resolve()), "size": [w, h], **(run_key or {})}
    done = _prepare_work(folder, key)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=info.frames or None, desc="gatys video", unit="frame", dynamic_ncols=True)
    count, prev_content, prev_styled = 0, None, None
    try:
        for index, rgb in enumerate(_videoio.read_frames(video)):
            t0 = time.perf_counter()
            content = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
            motion = Motion.between(prev_content, content) if prev_content is not None else None
            path = _frame_path(folder, index)
            resumed = index < done
            if resumed:
                styled = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
            else:
                previous = None
                if motion is not None and prev_styled is not None:
                    previous = (motion.warp(prev_styled), motion.mask)
                y = method(im.to_tensor(Image.fromarray(content)), previous, index)
                im.save_image(im.to_pil(y), path)
                styled = _as_array(y.clamp(0, 1))
            prev_content, prev_styled, count = content, styled, index + 1
            if bar is not None:
                bar.update(1)
            reliable = float(motion.mask.mean()) if motion is not None else 0.0
            if callback is not None:
                frame = FrameInfo(
                    index,
                    info.frames,
                    time.perf_counter() - t0,
                    reliable,
                    im.to_pil(_as_tensor(styled, torch.device("cpu"))),
                    resumed,
                )
                if callback(frame) is False:
                    raise Stopped(f"stopped after frame {index + 1}; finished frames are kept in {folder}")
    finally:
        if bar is not None:
            bar.close()
    if count == 0:
        raise GatysError(f"{video} has no video frames; give a video with at least one frame")
    frames = (np.asarray(Image.open(_frame_path(folder, i)).convert("RGB")) for i in range(count))
    audio = _videoio.write_video(out, frames, info.fps, audio_from=Path(video) if info.has_audio else None)
    if not keep_frames:
        shutil.rmtree(folder, ignore_errors=True)
    return VideoOutput(out, count, min(done, count), (w, h), info.fps, audio, time.perf_counter() - start)


def iter_frames(video: str | Path, size: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a video as RGB uint8 arrays, resized as :func:`stylize_video` resizes them."""
    info = _videoio.probe(video)
    w, h = frame_size(info.width, info.height, size)
    for rgb in _videoio.read_frames(video):
        yield np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))


# -- the command line -----------------------------------------------------------------------------------------


def _parser(prog: str) -> argparse.ArgumentParser:
    from .cli import _add_preset_options
    from .presets import DEFAULT_PRESET, PRESETS

    p = argparse.ArgumentParser(
        prog=prog,
        description="Stylise a video, temporally consistent (Ruder, Dosovitskiy & Brox 2016). Stylised frames are "
        "kept in OUTPUT.frames/ until the video is encoded: run the same command again to resume.",
    )
    p.add_argument("input", help="the video (.mp4, .mov, .mkv, .webm ...)")
    p.add_argument("--style", metavar="PAINTING", help="style image to optimise towards")
    p.add_argument("--model", metavar="MODEL", help="a trained FastStyle model (name, folder or Hub repo) instead")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .m4v, .mov, .mkv)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), metavar="NAME", help="[%(default)s]")
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=TEMPORAL_WEIGHT,
        help="weight of the temporal loss relative to the content loss (0: none) [%(default)s, Ruder et al.]",
    )
    p.add_argument("--first-steps", type=int, default=None, help="steps for the first frame [--steps]")
    p.add_argument("--independent", action="store_true", help="stylise every frame on its own (flickers)")
    p.add_argument("--blend", type=float, default=BLEND, help="with --model: share of the warped previous output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--weights", default=None, help="VGG weights folder or Hub repo id [the default weights]")
    p.add_argument("--local-files-only", action="store_true", help="never download weights or models")
    p.add_argument("--keep-frames", action="store_true", help="keep OUTPUT.frames/ after encoding")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_preset_options(p)
    return p


def _method(args: argparse.Namespace) -> tuple[FrameMethod, dict[str, Any], int | None]:
    """The frame method, the run's key (what identifies its frames) and the frame size."""
    from .presets import DESCRIPTIVE_FIELDS

    if args.model:
        from .feedforward import FastStyle

        fs = FastStyle.from_pretrained(args.model, local_files_only=args.local_files_only)
        key = {"model": fs.source, "blend": args.blend}
        return feedforward_method(fs, blend=args.blend), key, args.size
    from .transfer import StyleTransfer

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Preset) if f.name not in DESCRIPTIVE_FIELDS}
    settings = get_preset(args.preset).with_overrides(**overrides)
    im.load_image(args.style, name="style image")
    st = StyleTransfer.from_pretrained(args.weights, local_files_only=args.local_files_only)
    method = optimization_method(
        st,
        args.style,
        preset=settings,
        temporal_weight=args.temporal_weight,
        consistent=not args.independent,
        first_steps=args.first_steps,
        seed=args.seed,
        precision=args.precision,
    )
    key = {
        "style": str(Path(args.style).resolve()),
        "settings": repr(settings),
        "temporal_weight": args.temporal_weight,
        "independent": args.independent,
        "first_steps": args.first_steps,
        "seed": args.seed,
        "weights": st.weights_name,
    }
    return method, key, settings.size


def main(argv: list[str] | None = None, prog: str = "gatys video") -> int:
    """``gatys video``: one-line errors with exit status 2; 130 after Ctrl-C (the same command resumes)."""
    args = _parser(prog).parse_args(argv)
    try:
        if bool(args.style) == bool(args.model):
            raise ConfigError("give either --style PAINTING (optimisation) or --model MODEL (a trained network)")
        _videoio.check_output(args.output)
        _videoio.probe(args.input)
        method, key, size = _method(args)
        out = stylize_video(
            args.input,
            args.output,
            method,
            size=size,
            run_key=key,
            keep_frames=args.keep_frames,
            progress=not args.quiet,
        )
    except GatysError as e:
        from .cli import _err  # the command line's one wording of errors (exit status 2)

        return _err(str(e))
    except KeyboardInterrupt:
        print("gatys: interrupted; finished frames are kept, run the same command to resume", file=sys.stderr)
        return 130
    print(
        f"gatys video: wrote {out.path} ({out.frames} frames, {out.size[0]}x{out.size[1]}, {float(out.fps):.3g} fps, "
        f"audio {out.audio}; {out.resumed} frames resumed) in {out.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


__all__ = [
    "BLEND",
    "TEMPORAL_WEIGHT",
    "FrameInfo",
    "Motion",
    "Stopped",
    "VideoOutput",
    "consistency_mask",
    "feedforward_method",
    "iter_frames",
    "main",
    "optical_flow",
    "optimization_method",
    "stylize_video",
    "temporal_error",
    "warp",
]

if __name__ == "__main__":
    sys.exit(main())

"""Neural style transfer after Gatys, Ecker & Bethge (2015): a Gradio app, deployable as a Hugging Face Space.

    python app.py            # serves http://127.0.0.1:7860
    python app.py --share    # plus a public *.gradio.live link (or GRADIO_SHARE=True)

The weights are loaded once, here at import (``GATYS_WEIGHTS``, else the offline default from setup.sh, else
timm/vgg19.tv_in1k from the Hub). Each run optimises in a worker thread that checks a stop flag after every
step, so Stop, a closed tab or a cancelled API job ends the optimisation within one step.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from PIL import Image

from gatys import PRESETS, GatysError, Preset, StyleTransfer
from gatys import image as gimg
from gatys.presets import FIG3_LAYER_SETS, FIG3_RATIOS, PAPER_STYLE_LAYERS, fig3_preset_name

log = logging.getLogger("gatys.app")

HERE = Path(__file__).resolve().parent
#: Example images: the Space ships some in examples/; a checkout of the project finds them in ../shared/images.
EXAMPLE_DIRS = [HERE / "examples", HERE.parent / "shared" / "images"]
#: The app's default: a 256 px preset that shows a first snapshot within seconds and finishes in about a
#: minute on a 2-core CPU (the library's default works at 512 px, minutes on such a CPU).
DEFAULT_PRESET = "preview"
#: Uploads larger than this (longest side) are downscaled with a notice: the output is at most MAX_SIZE px and
#: the style image at most a few times that, so more pixels only cost memory.
MAX_UPLOAD_SIDE = 2048
#: Refuse to decode more than this on a shared server (gatys' own limit is 200 MP).
MAX_UPLOAD_PIXELS = 60_000_000
MAX_SIZE = 1024
#: Fig. 1 of the paper: content reconstructed from each of conv1_1 ... conv5_1 (the paper's style layers) ...
FIG1_CONTENT_LAYERS = PAPER_STYLE_LAYERS
#: ... and style reconstructed from the growing sets conv1_1, conv1_1+conv2_1, ... (FIG3_LAYER_SETS rows A-E).
FIG1_STYLE_SETS = tuple(FIG3_LAYER_SETS.values())

# -- the model, once -----------------------------------------------------------------------------------------

try:
    st: StyleTransfer | None = StyleTransfer.from_pretrained()
    WEIGHTS_LINE = f"Weights: **{st.description}**"  # e.g. "VGG-16 (HED, offline) on cpu"
    WEIGHTS_ERROR = ""
except Exception as e:  # the app still starts and says why it cannot run
    log.exception("could not load the weights")
    st = None
    WEIGHTS_ERROR = f"The VGG weights could not be loaded: {e}"
    WEIGHTS_LINE = f"⚠️ {WEIGHTS_ERROR}"

#: Seconds per output pixel per L-BFGS step, measured on this project's 2-core CPU (256x192 px: 0.23 s/step);
#: refined from every finished run, so the estimates shown fit the machine the app runs on.
SECONDS_PER_PIXEL_STEP = 4.7e-6 * 2 / max(1, torch.get_num_threads())
if st is not None and st.device.type != "cpu":
    SECONDS_PER_PIXEL_STEP /= 30  # a rough first guess for a GPU; the first run measures it

#: One optimisation at a time in this process, whatever the queue does: a stopped run's thread finishes its
#: current step while holding this, so the next run never overlaps it.
COMPUTE = threading.Lock()


@dataclasses.dataclass
class Run:
    """A running optimisation as its Stop button sees it."""

    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    step: int = 0
    total: int = 0


RUNS: dict[tuple[str, str], Run] = {}  # (session, tab) -> its current run
RUNS_LOCK = threading.Lock()
WORK_DIR = Path(tempfile.gettempdir()) / "gatys-app"


# -- helpers -------------------------------------------------------------------------------------------------


def preset_label(name: str) -> str:
    p = PRESETS[name]
    if name == "paper":
        return f"Fig. 2 B–D · α/β = 1e-3 (the paper; {p.size} px, {p.steps} steps)"
    if name == "paper-1e-4":
        return f"Fig. 2 E–F · α/β = 1e-4, more style ({p.size} px, {p.steps} steps)"
    if name == "preview":
        return f"Quick preview · from the photo ({p.size} px, {p.steps} steps)"
    if name == "quality":
        return "Quality · coarse to fine 128 → 256 → 512 px"
    if name.startswith("fig3-"):
        letter, ratio = name.split("-", 2)[1:]
        layers = FIG3_LAYER_SETS[letter]
        span = layers[0] if len(layers) == 1 else f"{layers[0]}…{layers[-1]}"
        return f"Fig. 3 row {letter} ({span}) · α/β = {ratio}"
    return f"{name.capitalize()} · {p.description.split(':')[0]} ({p.size} px, {p.steps} steps)"


FIRST = ("preview", "recommended", "paper", "paper-1e-4", "quality")
PRESET_CHOICES = [
    (preset_label(n), n)
    for n in (
        *[n for n in FIRST if n in PRESETS],
        *[n for n in PRESETS if n not in FIRST and not n.startswith("fig3-")],
    )
]
PRESET_CHOICES += [
    (preset_label(fig3_preset_name(letter, r)), fig3_preset_name(letter, r))
    for letter in FIG3_LAYER_SETS
    for r in FIG3_RATIOS
]


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{max(1, round(s))} s"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def schedule(opts: Preset, aspect: float = 0.75) -> list[tuple[int, int]]:
    """(pixels, steps) per scale, for an image whose short side is ``aspect`` times its long side."""
    return [(round(s * s * aspect), n) for s, n in zip(opts.scale_sizes(), opts.scale_steps())]


def expected_seconds(plan: list[tuple[int, int]]) -> float:
    return SECONDS_PER_PIXEL_STEP * sum(px * n for px, n in plan)


def load_upload(path: str | None, name: str) -> Image.Image | None:
    """An uploaded file -> RGB image, downscaled with a notice when over MAX_UPLOAD_SIDE; gr.Error if unusable."""
    if path is None:
        return None
    try:
        with Image.open(path) as probe:  # header only: refuse huge images before decoding them
            w, h = probe.size
    except Exception:
        w = h = 0  # load_image below gives the precise message
    if w * h > MAX_UPLOAD_PIXELS:
        raise gr.Error(
            f"The {name} is {w}×{h} px ({w * h / 1e6:.0f} MP); this app accepts up to "
            f"{MAX_UPLOAD_PIXELS / 1e6:.0f} MP. Downscale it first."
        )
    try:
        img = gimg.load_image(path, max_side=MAX_UPLOAD_SIDE, name=name)
        if max(img.size) > MAX_UPLOAD_SIDE:
            w, h = img.size
            img = gimg.resize_longest(img, MAX_UPLOAD_SIDE, name)
            gr.Warning(f"The {name} is {w}×{h} px; it was downscaled to {img.width}×{img.height} px.")
    except GatysError as e:
        raise gr.Error(str(e)) from None
    return img


def begin(request: gr.Request | None, tab: str) -> tuple[tuple[str, str], Run]:
    key = (getattr(request, "session_hash", None) or "local", tab)
    run = Run()
    with RUNS_LOCK:
        old = RUNS.get(key)
        if old is not None:
            old.stop.set()
        RUNS[key] = run
    return key, run


def end(key: tuple[str, str], run: Run) -> None:
    run.stop.set()
    with RUNS_LOCK:
        if RUNS.get(key) is run:
            del RUNS[key]


def in_worker(run: Run, job: Callable[[Callable[[str, Any], bool]], Any]) -> Iterator[tuple[str, Any]]:
    """Run ``job(emit)`` in a worker thread and yield what it emits, then ("done", result).

    ``emit(kind, value)`` returns False once the run should stop; the job's step callback passes that on
    to the library, which stops after the current step. Closing this generator (Stop, a closed tab, a
    cancelled API job) sets the stop flag. Waits never exceed half a second, so the generator is never
    busy for long and Gradio can close it at once; ("tick", None) marks a wait with nothing new.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()

    def emit(kind: str, value: Any) -> bool:
        if run.stop.is_set():
            return False
        events.put((kind, value))
        return True

    def target() -> None:
        with COMPUTE:
            try:
                result = None if run.stop.is_set() else job(emit)
                events.put(("done", result))
            except BaseException as e:
                events.put(("error", e))

    threading.Thread(target=target, name="gatys-run", daemon=True).start()
    try:
        while True:
            try:
                kind, value = events.get(timeout=0.5)
            except queue.Empty:
                yield "tick", None
                continue
            if kind == "error":
                raise value
            yield kind, value
            if kind == "done":
                return
    finally:
        run.stop.set()


def user_error(e: BaseException) -> gr.Error:
    """Every failure as one plain line (the traceback goes to the server log, never to the page)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, GatysError):
        return gr.Error(str(e))
    log.error("run failed", exc_info=e)
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(e).lower():
        return gr.Error("Out of memory at this size; lower the output size (Advanced) and try again.")
    return gr.Error(f"The run failed ({type(e).__name__}: {e}). Try other settings or images.")


def learn_speed(losses: list) -> None:
    """Refine SECONDS_PER_PIXEL_STEP from a run's StepInfo history (first step excluded: it warms up)."""
    global SECONDS_PER_PIXEL_STEP
    work = sum(i.size[0] * i.size[1] for i in losses[1:])
    if len(losses) < 10 or work < 2_000_000:  # short or tiny runs measure overhead, not the network
        return
    measured = (losses[-1].elapsed - losses[0].elapsed) / work
    if math.isfinite(measured) and measured > 0:
        SECONDS_PER_PIXEL_STEP = 0.5 * SECONDS_PER_PIXEL_STEP + 0.5 * measured


def auto_every(total: int) -> int:
    """Snapshot interval giving about 20 snapshots, on a round number of steps."""
    return next((n for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500) if n * 20 >= total), 1000)


def stem(path: str | None, default: str) -> str:
    name = Path(path).stem if path else default
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or default


# -- Stylize tab ---------------------------------------------------------------------------------------------


def preset_settings(preset: str) -> tuple:
    """The Advanced fields for a preset, and its description with the expected time."""
    p = PRESETS.get(preset, PRESETS[DEFAULT_PRESET])
    return (
        math.log10(p.alpha_beta) if p.alpha_beta > 0 else -8.0,
        p.steps,
        p.size,
        p.num_scales,
        [layer for layer in PAPER_STYLE_LAYERS if layer in p.style_layers],
        p.init,
        p.preserve_colors,
        p.style_scale,
        p.tv_weight,
        preset_info(preset, p.size, p.steps, p.num_scales),
    )


def preset_info(preset: str, size: float, steps: float, scales: float) -> str:
    p = PRESETS.get(preset, PRESETS[DEFAULT_PRESET])
    try:
        opts = p.with_overrides(size=int(size), steps=int(steps), num_scales=int(scales))
    except (GatysError, TypeError, ValueError):
        opts = p
    eta = expected_seconds(schedule(opts))
    machine = "this CPU" if st is None or st.device.type == "cpu" else f"this {st.device.type.upper()}"
    scales_note = f", {opts.num_scales} scales" if opts.num_scales > 1 else ""
    return (
        f"{p.description}. <br>Source: {p.source}. <br>**Expected time on {machine}: about "
        f"{format_seconds(eta)}** ({opts.size} px, {opts.steps} steps{scales_note})."
    )


def stylize(
    content: str | None = None,
    style: str | None = None,
    style_weight: float = 1.0,
    style_2: str | None = None,
    style_2_weight: float = 1.0,
    style_3: str | None = None,
    style_3_weight: float = 1.0,
    preset: str = DEFAULT_PRESET,
    alpha_beta_log10: float | None = None,
    steps: float | None = None,
    size: float | None = None,
    scales: float | None = None,
    style_layers: list[str] | None = None,
    init: str | None = None,
    seed: float | None = 0,
    preserve_colors: bool | None = None,
    style_scale: float | None = None,
    tv_weight: float | None = None,
    snapshot_every: float = 0,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """Render the content photo in the style of the style image(s); yields the gallery as it fills.

    Yields (gallery, status, final PNG). Settings come from the preset, then every Advanced field overrides it.
    """
    if st is None:
        raise gr.Error(WEIGHTS_ERROR)
    if content is None:
        raise gr.Error("Upload a content image (the photo) first.")
    if style is None and style_2 is None and style_3 is None:
        raise gr.Error("Upload a style image (a painting) first.")
    if preset not in PRESETS:
        raise gr.Error(f"Unknown preset {preset!r}; choose one from the list.")
    content_img = load_upload(content, "content image")
    styles, weights = [], []
    for i, (path, w) in enumerate([(style, style_weight), (style_2, style_2_weight), (style_3, style_3_weight)]):
        if path is not None and (w is None or w > 0):
            styles.append(load_upload(path, f"style image {i + 1}" if i else "style image"))
            weights.append(float(w if w is not None else 1.0))
    if not styles:
        raise gr.Error("Every style image has weight 0; give at least one a positive weight.")
    if size is not None and int(size) > MAX_SIZE:
        raise gr.Error(f"Output size {int(size)} px is over this app's limit of {MAX_SIZE} px.")

    base = PRESETS[preset]
    fields = dict(
        alpha_beta=None if alpha_beta_log10 is None else 10.0 ** float(alpha_beta_log10),
        steps=None if steps is None else int(steps),
        size=None if size is None else int(size),
        num_scales=None if scales is None else int(scales),
        style_layers=None if style_layers is None else tuple(sorted(style_layers, key=_layer_order)),
        init=init,
        preserve_colors=None if preserve_colors is None else bool(preserve_colors),
        style_scale=None if style_scale is None else float(style_scale),
        tv_weight=None if tv_weight is None else float(tv_weight),
    )
    # None means "the preset's value"; only fields that differ are overrides, so an untouched preset keeps
    # its name in the results.
    overrides = {k: v for k, v in fields.items() if v is not None and not _same(getattr(base, k), v)}
    seed = None if seed is None else int(seed)
    try:
        opts, content_img, styles, blend, _ = st.check_inputs(
            content_img, styles, preset=preset, style_weights=weights, **overrides
        )
    except GatysError as e:
        raise gr.Error(str(e)) from None

    plan = schedule(opts, min(content_img.size) / max(content_img.size))
    total = sum(n for _, n in plan)
    every = int(snapshot_every) or auto_every(total)
    key, run = begin(request, "stylize")
    run.total = total
    run_dir = WORK_DIR / uuid.uuid4().hex
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"{stem(content, 'content')}-x-{stem(style or style_2 or style_3, 'style')}-{opts.name.replace('+', '-')}"

    def job(emit: Callable[[str, Any], bool]):
        def callback(info):
            snap = info.image if info.step % every == 0 or info.step == info.total else None
            return emit("step", (info, snap))

        return st.stylize(content_img, styles, preset=opts, style_weights=blend, seed=seed, callback=callback)

    items: list[tuple[str, str]] = []
    last_yield = 0.0
    total_work = sum(px * n for px, n in plan)
    try:
        # A fresh page for this run. The status line then hosts the progress bar: Gradio shows it over a
        # component until that component's next value, so the status gets none until the end.
        yield [], "", None
        progress(0, desc="Starting")
        for kind, value in in_worker(run, job):
            if run.stop.is_set():  # Stop was clicked: its handler has the last word on the page
                return
            if kind == "done":
                out = value
                learn_speed(out.losses)
                final = gimg.save_image(out.image, run_dir / f"{name}.png")
                fl = out.final_losses
                status = (
                    f"**Done** in {out.seconds:.0f} s · {out.losses[-1].step} steps · final loss "
                    f"{fl['loss']:.4g} (content {fl['content']:.3g}, style {fl['style']:.3g}) · settings "
                    f"`{opts.name}` · {out.weights} on {out.device}"
                )
                yield gr.Gallery(value=list(items), selected_index=len(items) - 1), status, str(final)
                return
            new_snapshot = False
            if kind == "step":
                info, snap = value
                run.step = info.step
                remaining = _remaining(plan, info.step)
                left = expected_seconds(remaining)
                if info.step >= 5:  # this run's own pace, which counts whatever else the machine is doing
                    done_work = total_work - sum(px * n for px, n in remaining)
                    left *= info.elapsed / done_work / SECONDS_PER_PIXEL_STEP
                progress(
                    (info.step, info.total),
                    desc=f"loss {info.loss:.3g} · about {format_seconds(left)} left",
                    unit="steps",
                )
                if snap is not None:
                    path = gimg.save_image(snap, run_dir / f"step{info.step:05d}.png")
                    size_note = f" · {info.size[0]}×{info.size[1]}" if opts.num_scales > 1 else ""
                    items.append((str(path), f"step {info.step}/{info.total} · loss {info.loss:.3g}{size_note}"))
                    new_snapshot = True
            # Yield at least every half second, even with nothing new: Gradio can only close (cancel) this
            # generator between two yields.
            if new_snapshot or time.monotonic() - last_yield >= 0.5:
                last_yield = time.monotonic()
                gallery = gr.Gallery(value=list(items), selected_index=len(items) - 1) if new_snapshot else gr.skip()
                yield gallery, gr.skip(), gr.skip()
    except Exception as e:
        raise user_error(e) from None
    finally:
        end(key, run)
        shutil.rmtree(run_dir, ignore_errors=True)


def _layer_order(layer: str) -> int:
    return PAPER_STYLE_LAYERS.index(layer) if layer in PAPER_STYLE_LAYERS else len(PAPER_STYLE_LAYERS)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def _remaining(plan: list[tuple[int, int]], done: int) -> list[tuple[int, int]]:
    out = []
    for px, n in plan:
        take = min(n, done)
        done -= take
        out.append((px, n - take))
    return out


def stop_stylize(request: gr.Request) -> str:
    return stop(request, "stylize")


def stop(request: gr.Request | None, tab: str) -> str:
    key = (getattr(request, "session_hash", None) or "local", tab)
    with RUNS_LOCK:
        run = RUNS.pop(key, None)
    if run is None:
        return "Nothing is running."
    run.stop.set()
    return (
        f"**Stopped** at step {run.step} of {run.total}. The gallery keeps the snapshots so far; "
        "click Stylize to start again."
    )


def stop_session(request: gr.Request) -> None:
    """A closed tab: stop whatever this session was running."""
    session = getattr(request, "session_hash", None) or "local"
    with RUNS_LOCK:
        runs = [RUNS.pop(k) for k in list(RUNS) if k[0] == session]
    for run in runs:
        run.stop.set()


# -- Fig. 1 tab ----------------------------------------------------------------------------------------------


def fig1_info(size: float, steps: float) -> str:
    eta = expected_seconds([(round(int(size) ** 2 * 0.75), int(steps) * 10)])
    return (
        f"Ten reconstructions from white noise (five content, five style), {int(steps)} steps each at "
        f"{int(size)} px: **about {format_seconds(eta)}** here."
    )


def reconstruct(
    content: str | None = None,
    style: str | None = None,
    size: float = 128,
    steps: float = 100,
    optimizer: str = "auto",
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """Fig. 1: the content from each of conv1_1..conv5_1 and the style from the growing layer sets.

    Yields (content reconstructions, style reconstructions, status).
    """
    if st is None:
        raise gr.Error(WEIGHTS_ERROR)
    if content is None or style is None:
        raise gr.Error("Upload both a content image and a style image first.")
    content_img = load_upload(content, "content image")
    style_img = load_upload(style, "style image")
    size, steps = int(size), int(steps)
    if optimizer not in ("auto", "adam", "lbfgs"):
        raise gr.Error(f"Unknown optimiser {optimizer!r}; use auto, adam or lbfgs.")
    # auto: the library's defaults, Adam for content (L-BFGS fills deep reconstructions with speckle), L-BFGS
    # for style.
    chosen = {} if optimizer == "auto" else {"optimizer": optimizer}
    if size > MAX_SIZE:
        raise gr.Error(f"Size {size} px is over this app's limit of {MAX_SIZE} px.")
    try:
        for img, name in ((content_img, "content image"), (style_img, "style image")):
            gimg.resize_longest(img, size, name)
    except GatysError as e:
        raise gr.Error(str(e)) from None
    key, run = begin(request, "fig1")
    n_runs = len(FIG1_CONTENT_LAYERS) + len(FIG1_STYLE_SETS)
    run.total = n_runs * steps
    run_dir = WORK_DIR / uuid.uuid4().hex
    run_dir.mkdir(parents=True, exist_ok=True)

    def job(emit: Callable[[str, Any], bool]) -> None:
        # Interleaved, so the two galleries fill row by row: content conv1_1, style {conv1_1}, content conv2_1 ...
        for i, (layer, layers) in enumerate(zip(FIG1_CONTENT_LAYERS, FIG1_STYLE_SETS)):
            for j, (kind, fn, arg) in enumerate(
                (("content", st.reconstruct_content, layer), ("style", st.reconstruct_style, layers))
            ):
                done = (2 * i + j) * steps
                cb = lambda info, done=done: emit("step", (done + info.step, info.loss))  # noqa: E731
                img = content_img if kind == "content" else style_img
                out = fn(img, arg, size=size, steps=steps, seed=0, callback=cb, **chosen)
                if out.stopped or not emit("result", (kind, arg, out)):
                    return

    contents: list[tuple[str, str]] = []
    styles: list[tuple[str, str]] = []
    last_yield = 0.0
    step = 0
    start = time.monotonic()
    try:
        yield [], [], ""  # a fresh page; the status line then hosts the progress bar until the end
        progress(0, desc="Starting")
        for kind, value in in_worker(run, job):
            if run.stop.is_set():  # Stop was clicked: its handler has the last word on the page
                return
            if kind == "done":
                status = (
                    f"**Done** in {time.monotonic() - start:.0f} s: left, the photo as each layer keeps it; "
                    "right, the painting's style from ever more layers."
                )
                yield contents, styles, status
                return
            if kind == "step":
                step, loss = value
                run.step = step
                done = len(contents) + len(styles)
                progress((step, run.total), desc=f"Reconstruction {done + 1} of {n_runs}", unit="steps")
            elif kind == "result":
                which, arg, out = value
                # Style sets grow by one layer: conv1_1, + conv2_1, ... + conv5_1.
                label = arg if which == "content" else arg[0] if len(arg) == 1 else f"+ {arg[-1]}"
                path = gimg.save_image(out.image, run_dir / f"{which}-{len(contents) + len(styles)}.png")
                (contents if which == "content" else styles).append((str(path), label))
                yield (
                    list(contents) if which == "content" else gr.skip(),
                    list(styles) if which == "style" else gr.skip(),
                    gr.skip(),
                )
                last_yield = time.monotonic()
                continue
            if time.monotonic() - last_yield >= 0.5:  # Gradio can only close (cancel) us between two yields
                last_yield = time.monotonic()
                yield gr.skip(), gr.skip(), gr.skip()
    except Exception as e:
        raise user_error(e) from None
    finally:
        end(key, run)
        shutil.rmtree(run_dir, ignore_errors=True)


def stop_reconstruct(request: gr.Request) -> str:
    return stop(request, "fig1")


# -- the page ------------------------------------------------------------------------------------------------


def image_input(label: str, **kw: Any) -> gr.Image:
    """An image upload that Gradio passes through untouched (``gatys.image`` reads it), and whose unreadable
    files raise a plain gr.Error: Gradio's own message names its internals."""
    component = gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], **kw)
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        try:
            return gradio_preprocess(payload)
        except Exception:
            raise gr.Error(f"The {label.lower()} is not an image file we can read; use PNG, JPEG or WebP.") from None

    # On the instance, not in a subclass: a gr.Image subclass makes Gradio write an app.pyi stub beside app.py.
    component.preprocess = preprocess
    return component


def example_rows() -> list[list[str]]:
    folder = next((d for d in EXAMPLE_DIRS if (d / "tubingen.jpg").is_file()), None)
    if folder is None:
        return []
    return [
        [str(folder / "tubingen.jpg"), str(folder / s)]
        for s in ("starry_night.jpg", "shipwreck.jpg")
        if (folder / s).is_file()
    ]


CSS = """
#weights-line {opacity: 0.85}
#stylize-gallery {min-height: 360px}
"""

with gr.Blocks(title="Neural style transfer (Gatys et al. 2015)", delete_cache=(1800, 3600)) as demo:
    gr.Markdown(
        "# Neural style transfer\n"
        "Gatys, Ecker & Bethge, [*A Neural Algorithm of Artistic Style*](https://arxiv.org/abs/1508.06576) (2015): "
        "an image is optimised so that its VGG features match the photo's content and the painting's style."
    )
    gr.Markdown(WEIGHTS_LINE, elem_id="weights-line")
    with gr.Tab("Stylize"):
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    content = image_input("Content image", height=260, elem_id="content")
                    style = image_input("Style image", height=260, elem_id="style")
                style_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style image weight")
                with gr.Accordion("Blend more styles", open=False):
                    gr.Markdown("Style images are blended by their weights (normalised to sum to 1).")
                    with gr.Row():
                        style_2 = image_input("Style image 2", height=180)
                        style_3 = image_input("Style image 3", height=180)
                    with gr.Row():
                        style_2_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style 2 weight")
                        style_3_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style 3 weight")
                preset = gr.Dropdown(
                    PRESET_CHOICES,
                    value=DEFAULT_PRESET,
                    label="Preset (the paper's settings by figure)",
                    elem_id="preset",
                )
                settings0 = preset_settings(DEFAULT_PRESET)
                info = gr.Markdown(settings0[-1], elem_id="preset-info")
                with gr.Row():
                    run_btn = gr.Button("Stylize", variant="primary", elem_id="run")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Accordion("Advanced (filled in by the preset)", open=False):
                    alpha_beta = gr.Slider(
                        -6,
                        0,
                        value=settings0[0],
                        step=0.25,
                        label="α/β, content : style weight ratio (log₁₀: -3 means 1e-3)",
                        elem_id="alpha-beta",
                    )
                    with gr.Row():
                        steps = gr.Slider(
                            1, 2000, value=settings0[1], step=1, label="Steps (at the finest scale)", elem_id="steps"
                        )
                        size = gr.Slider(
                            64,
                            MAX_SIZE,
                            value=settings0[2],
                            step=32,
                            label="Output size (longest side, px)",
                            elem_id="size",
                        )
                    with gr.Row():
                        scales = gr.Slider(1, 4, value=settings0[3], step=1, label="Scales (coarse to fine)")
                        snapshot_every = gr.Slider(
                            0, 200, value=0, step=1, label="Snapshot every N steps (0: auto)", elem_id="snapshot-every"
                        )
                    style_layers = gr.CheckboxGroup(list(PAPER_STYLE_LAYERS), value=settings0[4], label="Style layers")
                    init = gr.Radio(
                        [("White noise (the paper)", "noise"), ("Content image", "content"), ("Style image", "style")],
                        value=settings0[5],
                        label="Start from",
                        elem_id="init",
                    )
                    with gr.Row():
                        style_scale = gr.Slider(0.25, 4, value=settings0[7], step=0.05, label="Style scale")
                        tv_weight = gr.Number(settings0[8], minimum=0, label="TV weight (smoothness; not in the paper)")
                    with gr.Row():
                        seed = gr.Number(0, precision=0, label="Seed (empty: random)")
                        preserve_colors = gr.Checkbox(settings0[6], label="Preserve the photo's colours")
            with gr.Column(scale=1):
                gallery = gr.Gallery(
                    label="Snapshots (newest selected)",
                    columns=4,
                    height=560,
                    preview=True,
                    object_fit="contain",
                    elem_id="stylize-gallery",
                    interactive=False,
                )
                status = gr.Markdown(
                    "Upload two images (or pick an example below) and click **Stylize**.",
                    elem_id="status",
                    min_height=80,
                )
                result = gr.File(label="Final image (PNG)", elem_id="result", interactive=False, height=110)
        rows = example_rows()
        labels = ["Tübingen × The Starry Night", "Tübingen × The Shipwreck of the Minotaur"][: len(rows)]
        if rows:
            gr.Examples(rows, inputs=[content, style], cache_examples=False, example_labels=labels)

    with gr.Tab("Fig. 1: what each layer keeps"):
        gr.Markdown(
            "The paper's Fig. 1: starting from white noise, match only the **content** features of one layer "
            "(conv1_1 … conv5_1: lower layers keep the exact pixels, higher ones only the arrangement), or only the "
            "**style** (Gram matrices) of a growing set of layers (conv1_1, then + conv2_1, …: texture at ever "
            "larger scales)."
        )
        with gr.Row():
            fig1_content = image_input("Content image", height=220, elem_id="fig1-content-in")
            fig1_style = image_input("Style image", height=220, elem_id="fig1-style-in")
            with gr.Column():
                fig1_size = gr.Slider(64, 512, value=128, step=32, label="Size (px)", elem_id="fig1-size")
                fig1_steps = gr.Slider(
                    1, 500, value=100, step=1, label="Steps per reconstruction", elem_id="fig1-steps"
                )
                fig1_optimizer = gr.Radio(
                    [("Content: Adam, style: L-BFGS", "auto"), ("L-BFGS", "lbfgs"), ("Adam", "adam")],
                    value="auto",
                    label="Optimiser",
                )
                fig1_eta = gr.Markdown(fig1_info(128, 100))
                with gr.Row():
                    fig1_btn = gr.Button("Reconstruct", variant="primary", elem_id="fig1-run")
                    fig1_stop = gr.Button("Stop", variant="stop", elem_id="fig1-stop")
        with gr.Row():
            fig1_content_out = gr.Gallery(
                label="Content reconstructions, from conv1_1 … conv5_1 alone",
                columns=5,
                height=300,
                elem_id="fig1-content",
                interactive=False,
            )
            fig1_style_out = gr.Gallery(
                label="Style reconstructions, from conv1_1, + conv2_1, … + conv5_1",
                columns=5,
                height=300,
                elem_id="fig1-style",
                interactive=False,
            )
        fig1_status = gr.Markdown("", elem_id="fig1-status", min_height=80)
        if rows:
            gr.Examples(rows, inputs=[fig1_content, fig1_style], cache_examples=False, example_labels=labels)

    advanced = [alpha_beta, steps, size, scales, style_layers, init, preserve_colors, style_scale, tv_weight]
    preset.change(preset_settings, preset, [*advanced, info], api_name="preset_settings", queue=False)
    for field in (size, steps, scales):
        field.change(preset_info, [preset, size, steps, scales], info, api_visibility="private", queue=False)
    run_event = run_btn.click(
        stylize,
        [
            content,
            style,
            style_weight,
            style_2,
            style_2_weight,
            style_3,
            style_3_weight,
            preset,
            *advanced[:6],
            seed,
            preserve_colors,
            style_scale,
            tv_weight,
            snapshot_every,
        ],
        [gallery, status, result],
        api_name="stylize",
        concurrency_limit=1,
        concurrency_id="optimiser",
        show_progress_on=[status],
    )
    stop_btn.click(stop_stylize, None, status, cancels=[run_event], api_name="stop", queue=False)
    for field in (fig1_size, fig1_steps):
        field.change(fig1_info, [fig1_size, fig1_steps], fig1_eta, api_visibility="private", queue=False)
    fig1_event = fig1_btn.click(
        reconstruct,
        [fig1_content, fig1_style, fig1_size, fig1_steps, fig1_optimizer],
        [fig1_content_out, fig1_style_out, fig1_status],
        api_name="reconstruct",
        concurrency_limit=1,
        concurrency_id="optimiser",
        show_progress_on=[fig1_status],
    )
    fig1_stop.click(stop_reconstruct, None, fig1_status, cancels=[fig1_event], api_name="stop_reconstruct", queue=False)
    demo.unload(stop_session)

# One optimisation runs at a time (it uses every core); a few more may wait, each holding only its uploads.
demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    demo.launch(
        share=True if "--share" in sys.argv[1:] else None,  # None: Gradio reads GRADIO_SHARE
        max_file_size="25mb",
        theme=gr.themes.Soft(),
        css=CSS,
    )

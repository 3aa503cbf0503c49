"""Neural style transfer after Gatys, Ecker & Bethge (2015): a Gradio app, deployable as a Hugging Face Space.

    python app.py            # serves http://127.0.0.1:7860
    python app.py --share    # plus a public *.gradio.live link (or GRADIO_SHARE=True)

    python app.py --mcp      # plus an MCP server at /gradio_api/mcp/ (or GATYS_MCP=1)

The weights and the instant-style models are loaded once, here at import (``GATYS_WEIGHTS``, else the offline
default from setup.sh, else timm/vgg19.tv_in1k from the Hub; the styles in hub/styles/ and the Hub repos listed
in ``GATYS_STYLE_REPOS``). The compute runs in a few narrow functions decorated with ``spaces.GPU``: on a
ZeroGPU Space each call borrows a GPU for a duration computed from its inputs, elsewhere the decorator does
nothing. Their arguments and everything they yield are plain data (PIL images, numbers, dataclasses), as
ZeroGPU's forked worker requires. An optimisation runs in a worker thread that checks a stop flag after every
step; closing the generator that follows it sets the flag, so Stop, a closed tab or a cancelled API job ends
the optimisation within one step, on ZeroGPU too (the spaces package closes the worker's generator when the
caller's is closed).
"""

from __future__ import annotations

try:  # Hugging Face's ZeroGPU decorator: first, before torch, as its documentation asks; absent off the Hub.
    import spaces

    GPU = spaces.GPU
except ImportError:  # pragma: no cover - the app's tests install spaces

    def GPU(task=None, *, duration=None, size=None):  # type: ignore[no-redef]
        return task if task is not None else (lambda fn: fn)


import collections
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import logging
import math
import os
import queue
import shutil
import statistics
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

from gatys import PRESETS, GatysError, Plan, Preset, StepInfo, StyleTransfer, StylizeOutput, tiling
from gatys import image as gimg
from gatys.feedforward import FastStyle, builtin_styles
from gatys.presets import APP_DEFAULT_PRESET, FIG3_LAYER_SETS, FIG3_RATIOS, PAPER_STYLE_LAYERS, fig3_preset_name

log = logging.getLogger("gatys.app")

HERE = Path(__file__).resolve().parent
#: Example images: the Space ships some in examples/; a checkout of the project finds them in ../shared/images.
EXAMPLE_DIRS = [HERE / "examples", HERE.parent / "shared" / "images"]
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
WORK_DIR = Path(tempfile.gettempdir()) / "gatys-app"

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


class SpeedEstimate:
    """Seconds per output pixel per L-BFGS step on this machine: the median of the last few finished runs.

    A median, and a move of at most 1.5x per run, so one run on a busy machine cannot double the estimate
    (the old running mean drifted from 8 to 16 min after two slow runs); the spread of the runs says how sure
    it is.
    """

    def __init__(self, per_pixel_step: float, keep: int = 7) -> None:
        self.per_pixel_step = per_pixel_step
        self.measured: collections.deque[float] = collections.deque(maxlen=keep)

    def seconds(self, plan: list[tuple[int, int]]) -> float:
        """Expected seconds for ``plan``: (pixels, steps) per scale."""
        return self.per_pixel_step * sum(px * n for px, n in plan)

    def spread(self) -> tuple[float, float]:
        """The range the estimate may be off by, as factors (low, high): from the measured runs once there are
        three, else a first guess's (half to double)."""
        if len(self.measured) < 3:
            return 0.5, 2.0
        return min(self.measured) / self.per_pixel_step, max(self.measured) / self.per_pixel_step

    def describe(self, plan: list[tuple[int, int]]) -> str:
        """``about 70 s (50 s to 2 min)``: the estimate and how sure it is."""
        t = self.seconds(plan)
        lo, hi = self.spread()
        if hi / lo < 1.3:
            return f"about {format_seconds(t)}"
        return f"about {format_seconds(t)} ({format_seconds(t * lo)} to {format_seconds(t * hi)})"

    def seconds_left(self, plan: list[tuple[int, int]], step: int, elapsed: float) -> float:
        """Seconds left after ``step`` steps of ``plan``, at the pace the run kept over its ``elapsed`` seconds
        (which counts whatever else the machine is doing)."""
        done, left = step, []
        for px, n in plan:  # scales run coarse to fine, each to its step count
            left.append((px, n - min(n, done)))
            done -= min(n, done)
        expected_so_far = self.seconds(plan) - self.seconds(left)
        pace = elapsed / expected_so_far if step >= 5 and expected_so_far > 0 else 1.0
        return self.seconds(left) * pace

    def update(self, losses: list[StepInfo]) -> None:
        """Learn from a finished run's StepInfo history (the first step excluded: it warms up)."""
        work = sum(i.size[0] * i.size[1] for i in losses[1:])
        if len(losses) < 10 or work < 2_000_000:  # short or tiny runs measure overhead, not the network
            return
        measured = (losses[-1].elapsed - losses[0].elapsed) / work
        if not (math.isfinite(measured) and measured > 0):
            return
        self.measured.append(measured)
        median = statistics.median(self.measured)
        self.per_pixel_step = min(1.5 * self.per_pixel_step, max(self.per_pixel_step / 1.5, median))


#: Measured on this project's 2-core CPU (256x192 px: 0.23 s/step); for a GPU a rough first guess (30x faster)
#: until its first run measures it.
SPEED = SpeedEstimate(
    4.7e-6 * 2 / max(1, torch.get_num_threads()) / (1 if st is None or st.device.type == "cpu" else 30)
)

# -- runs: each optimises in a worker thread and reports through typed events -------------------------------

#: One optimisation at a time in this process, whatever the queue does: a stopped run's thread finishes its
#: current step while holding this, so the next run never overlaps it.
COMPUTE = threading.Lock()


@dataclasses.dataclass
class Progress:
    """One optimisation step; ``step`` counts over the whole run (Fig. 1 runs ten optimisations in a row).

    ``info`` is the library's StepInfo without its pixels: events cross ZeroGPU's process boundary pickled.
    """

    step: int
    info: StepInfo | None


@dataclasses.dataclass
class GalleryImage:
    """An image for one of the page's galleries, named by ``gallery`` (a key of the handler's, not a component:
    components do not pickle)."""

    image: Image.Image
    caption: str
    gallery: str


@dataclasses.dataclass
class Done:
    """The job returned ``result``."""

    result: Any


Event = Progress | GalleryImage | Done | None
Emit = Callable[[Progress | GalleryImage], bool]


def worker_events(job: Callable[[Emit], Any]) -> Iterator[Event]:
    """Run ``job(emit)`` in a worker thread; yield what it emits, then Done(result), or raise what it raised.

    ``emit(event)`` returns False once the run should stop, and the job's step callback passes that on to the
    library. Closing this generator (the handler's Stop, a closed tab, a cancelled API job; on ZeroGPU the spaces
    package closes it in the GPU worker when the handler's copy is closed) sets the stop flag, so the job ends
    within one step. Gradio can only close a handler between two yields, and handlers yield on all but Progress,
    so None (a heartbeat) comes when half a second passed without a GalleryImage.
    """
    stop = threading.Event()
    queued: queue.SimpleQueue[Progress | GalleryImage | Done | BaseException] = queue.SimpleQueue()

    def emit(event: Progress | GalleryImage) -> bool:
        if stop.is_set():
            return False
        queued.put(event)
        return True

    def target() -> None:
        with COMPUTE:
            try:
                queued.put(Done(None if stop.is_set() else job(emit)))
            except BaseException as e:
                queued.put(e)

    threading.Thread(target=target, name="gatys-run", daemon=True).start()
    last_shown = time.monotonic()
    try:
        while True:
            try:
                event: Progress | GalleryImage | Done | BaseException | None = queued.get(timeout=0.5)
            except queue.Empty:
                event = None
            if isinstance(event, BaseException):
                raise event
            if event is not None:
                yield event
            if isinstance(event, Done):
                return
            if isinstance(event, GalleryImage):
                last_shown = time.monotonic()
            elif time.monotonic() - last_shown >= 0.5:
                last_shown = time.monotonic()
                yield None
    finally:
        stop.set()


@dataclasses.dataclass
class Run:
    """A running optimisation, as its Stop button sees it, with a folder for the images it shows."""

    total: int
    folder: Path = dataclasses.field(default_factory=lambda: WORK_DIR / uuid.uuid4().hex)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    step: int = 0
    seconds_left: float | None = None  # the handler's latest estimate, for the visitors waiting behind it
    stopped: str = ""  # what Stop said; the handler's own last word then repeats it, never a progress line

    def follow(self, events: Iterator[Event]) -> Iterator[Event]:
        """The events of a GPU function's generator until this run is stopped; then nothing more comes (the
        Stop handler has the last word on the page) and ``events`` is closed, which ends the job."""
        try:
            for event in events:
                if self.stop.is_set():
                    return
                yield event
        finally:
            self.stop.set()
            close = getattr(events, "close", None)
            if close is not None:
                close()


RUNS: dict[tuple[str, str], Run] = {}  # (session, tab) -> its current run
RUNS_LOCK = threading.Lock()
WAITING: dict[str, float] = {}  # session -> when it asked for an optimisation, until that run starts


def session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


@contextlib.contextmanager
def running(request: gr.Request | None, tab: str, total: int) -> Iterator[Run]:
    """The one skeleton of every handler that optimises: register the session's run in ``tab`` (stopping its
    previous one there), turn whatever fails into one plain line on the page, and clean up after."""
    key, run = (session(request), tab), Run(total)
    run.folder.mkdir(parents=True, exist_ok=True)
    with RUNS_LOCK:
        old = RUNS.get(key)
        if old is not None:
            old.stop.set()
        RUNS[key] = run
        WAITING.pop(key[0], None)
    try:
        yield run
    except GeneratorExit:  # the handler was closed: Stop's cancel (which may reach it before Stop's own handler)
        with RUNS_LOCK:
            now = time.monotonic()
            for k in [k for k, (t, _) in CLOSED.items() if now - t > CLOSED_SECONDS]:
                del CLOSED[k]
            if RUNS.get(key) is run:
                CLOSED[key] = (now, run)
        raise
    except Exception as e:
        raise page_error(e) from None
    finally:
        run.stop.set()
        with RUNS_LOCK:
            if RUNS.get(key) is run:
                del RUNS[key]
        shutil.rmtree(run.folder, ignore_errors=True)  # Gradio has copied what it showed


#: Runs whose handler was closed in the last CLOSED_SECONDS, by session and tab: a Stop click both cancels the
#: run's event and calls stop(), in either order, and stop() must still say where the run stopped (a CI run
#: saw "Nothing is running." when the cancel came first).
CLOSED: dict[tuple[str, str], tuple[float, Run]] = {}
CLOSED_SECONDS = 30.0


def stop(request: gr.Request | None, tab: str, button: str) -> str:
    key = (session(request), tab)
    with RUNS_LOCK:
        run = RUNS.pop(key, None)
        if run is None:
            closed_at, closed = CLOSED.pop(key, (0.0, None))
            if closed is not None and time.monotonic() - closed_at <= CLOSED_SECONDS:
                run = closed
    if run is None:
        return "Nothing is running."
    run.stopped = (
        f"**Stopped** at step {run.step} of {run.total}. The images so far stay; click {button} to start again."
    )
    run.stop.set()
    return run.stopped


def queue_note(request: gr.Request) -> Any:
    """Said before an optimisation joins the queue (this handler skips the queue): when another visitor's image
    is being made, say so plainly, with this visitor's place in line and a wait from that run's own pace."""
    me = session(request)
    with RUNS_LOCK:
        WAITING[me] = time.monotonic()
        busy = [run for (who, _), run in RUNS.items() if who != me]
        ahead = sum(1 for who, since in WAITING.items() if who != me and since < WAITING[me])
    if not busy:
        return gr.skip()
    run = busy[0]
    left = run.seconds_left if run.seconds_left is not None else SPEED.seconds(schedule(DEFAULT))
    wait = left + ahead * SPEED.seconds(schedule(DEFAULT))  # those ahead: a default run each
    place = "next" if ahead == 0 else f"number {ahead + 1} in line"
    return (
        f"**Another visitor's image is being made** (step {run.step} of {run.total}). Yours is {place} and "
        f"should start in about {format_seconds(wait)}; this page updates by itself."
    )


def stop_session(request: gr.Request) -> None:
    """A closed tab: stop whatever this session was running."""
    with RUNS_LOCK:
        WAITING.pop(session(request), None)
        runs = [RUNS.pop(k) for k in list(RUNS) if k[0] == session(request)]
    for run in runs:
        run.stop.set()


# -- helpers -------------------------------------------------------------------------------------------------


def mistake(message: str) -> gr.Error:
    """A user's mistake: one plain line on the page and one in the log (no traceback: nothing broke)."""
    log.info("user mistake: %s", message)
    return gr.Error(message, print_exception=False)


def page_error(e: Exception) -> gr.Error:
    """Any failure as one plain line on the page; a real fault's traceback goes to the log, once."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, GatysError):
        return mistake(str(e))
    log.error("run failed", exc_info=e)
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(e).lower():
        message = "Out of memory at this size; lower the output size (Advanced) and try again."
    else:
        message = f"The run failed ({type(e).__name__}: {e}). Try other settings or images."
    return gr.Error(message, print_exception=False)


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
        raise mistake(
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
        raise mistake(without_path(str(e), path, name)) from None
    return img


def status_on_error(handler: Callable, status_of: Callable[[], gr.Markdown]) -> Callable:
    """``handler`` as a generator that, when it fails with a message for the visitor, first writes that message
    into its status line (``status_of()``: the component, looked up when it runs), then raises it as before (the
    toast, and the error an API client gets). Without this the status kept its old text under an Error badge."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            out = handler(*args, **kwargs)
            if inspect.isgenerator(out):
                yield from out
            else:
                yield out
        except gr.Error as e:
            yield {status_of(): f"⚠️ **{e.message}**"}
            raise

    return wrapped


def without_path(message: str, path: str, role: str) -> str:
    """A library message about an upload, for the page: the server's temporary path left out (the message names
    the upload by its role instead: "The content image is damaged..."), and a capital first letter."""
    message = message.replace(f" {path}", "").replace(path, f"the {role}")
    if message.startswith(role):
        message = f"the {message}"
    return message[:1].upper() + message[1:]


def progress_line(step: int, total: int, elapsed: float, detail: str) -> str:
    """The status line while a run works: a bar, the step count, the time since it started and ``detail``.

    Drawn by the app in its own status line, not Gradio's progress overlay: that one vanished whenever a
    snapshot arrived, its step count ran over the bar's end and its timer restarted at every update.
    """
    return (
        f'<progress value="{step}" max="{total}" style="width: 100%"></progress>\n\n'
        f"**Step {step} of {total}** · {format_seconds(elapsed)} so far · {detail}"
    )


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{max(1, round(s))} s"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def schedule(opts: Preset, aspect: float = 0.75) -> list[tuple[int, int]]:
    """(pixels, steps) per scale, for an image whose short side is ``aspect`` times its long side."""
    return [(round(s * s * aspect), n) for s, n in zip(opts.scale_sizes(), opts.scale_steps())]


def auto_every(total: int) -> int:
    """Snapshot interval giving about 20 snapshots, on a round number of steps."""
    return next((n for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500) if n * 20 >= total), 1000)


def stem(path: str | None, default: str) -> str:
    name = Path(path).stem if path else default
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or default


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


# -- Instant tab ---------------------------------------------------------------------------------------------


def load_styles() -> tuple[dict[str, FastStyle], list[str]]:
    """The instant styles, by name: this checkout's hub/styles/, then the Hub repos (or folders) listed in
    ``GATYS_STYLE_REPOS`` (comma-separated). A model that does not load is skipped with one log line."""
    models: dict[str, FastStyle] = {}
    problems = []
    sources = [(name, name) for name in builtin_styles()]
    for repo in filter(None, (r.strip() for r in os.environ.get("GATYS_STYLE_REPOS", "").split(","))):
        sources.append((repo.rstrip("/").rsplit("/", 1)[-1], repo))
    for name, source in sources:
        try:
            models[name] = FastStyle.from_pretrained(source)
        except GatysError as e:
            log.warning("instant style %s skipped: %s", source, e)
            problems.append(f"{source}: {e}")
    return models, problems


STYLES, STYLE_PROBLEMS = load_styles()
#: Instant styles are one forward pass (0.4 s at 512 px on this 2-core CPU), tiled where the whole image would
#: not fit in memory: up to print sizes on a GPU; 2048 px on a CPU, where 4096 px takes minutes.
INSTANT_MAX_SIZE = 2048 if st is None or st.device.type == "cpu" else 4096
INSTANT_DEFAULT_SIZE = 512
#: Large outputs of the optimisation: above MAX_SIZE the Stylize tab runs under a memory budget, tiled where the
#: whole image does not fit (gatys.tiling), with the schedule and the time it will take shown before it starts.
#: A 2048 px run takes tens of minutes on a CPU (benchmarks/README.md "Large outputs"); GATYS_APP_MAX_SIZE and
#: GATYS_APP_MAX_MEMORY set the limit and the budget (defaults: 2048 px and 3GB on a CPU, 4096 px and 16GB on a GPU).
LARGE_MAX_SIZE = int(os.environ.get("GATYS_APP_MAX_SIZE", 2048 if st is None or st.device.type == "cpu" else 4096))
LARGE_MEMORY = os.environ.get("GATYS_APP_MAX_MEMORY", "3GB" if st is None or st.device.type == "cpu" else "16GB")


def planned_work(opts: Preset, aspect: float = 0.75) -> tuple[list[tuple[int, int]], str]:
    """(pixels, steps) per scale as a run of ``opts`` will do them, tiles counted, and a note on the tiling.

    Up to MAX_SIZE a run is whole (:func:`schedule`); above, under LARGE_MEMORY, a tiled scale's steps are its
    tiles x steps, each step costing a tile's pixels (overlaps included).
    """
    if st is None or opts.size <= MAX_SIZE:
        return schedule(opts, aspect), ""
    shape = (opts.size, max(1, round(opts.size * aspect)))
    plan = tiling.plan_schedule(
        st.model, opts, shape, tiling.parse_memory(LARGE_MEMORY), tiling.process_memory(st.device)
    )
    work = [(s.pixel_steps // max(1, s.total_steps), s.total_steps) for s in plan.scales]
    return work, f" Large output: {plan.describe()}." if plan.tiled else ""


def prune(folder: Path, older_than: float) -> None:
    """Remove the sub-folders of ``folder`` last changed more than ``older_than`` seconds ago."""
    for sub in folder.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - sub.stat().st_mtime > older_than:
                shutil.rmtree(sub, ignore_errors=True)


def painting_of(name: str) -> str | None:
    """The painting a style was trained on, when it is among the example images (found by its SHA-256)."""
    cfg = STYLES[name].config if name in STYLES else None
    if cfg is None or not cfg.style_name:
        return None
    for folder in EXAMPLE_DIRS:
        path = folder / cfg.style_name
        if path.is_file() and (
            not cfg.style_sha256 or hashlib.sha256(path.read_bytes()).hexdigest() == cfg.style_sha256
        ):
            return str(path)
    return None


def style_for_painting(path: str) -> str | None:
    """The instant style trained on exactly this painting file, if there is one."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return next((name for name, fs in STYLES.items() if fs.config.style_sha256 == digest), None)


def instant_duration(photo: Image.Image, style: str, size: int, preserve_colors: bool) -> int:
    """instant_on_gpu's ZeroGPU duration: one forward pass takes well under a second on any GPU."""
    return 10 if size <= 2048 else 20


@GPU(duration=instant_duration)
def instant_on_gpu(photo: Image.Image, style: str, size: int, preserve_colors: bool) -> Image.Image:
    """One forward pass of the style's network, on the GPU where there is one; beyond what memory allows (large
    outputs), in overlapping tiles with the whole image's instance-norm statistics (gatys.tiling). Not under
    COMPUTE: it runs beside an optimisation instead of waiting for it to end."""
    return STYLES[style].stylize(photo, size=size, preserve_colors=preserve_colors)


def check_instant(photo: str | None, style: str | None, size: float) -> tuple[Image.Image, str, int]:
    if not STYLES:
        raise mistake("No instant styles are installed here; use the Stylize tab (optimisation) instead.")
    if photo is None:
        raise mistake("Upload a photo first (or pick an example below).")
    if style not in STYLES:
        raise mistake(f"Unknown instant style {style!r}; choose one from the list: {', '.join(STYLES)}.")
    size = int(size)
    if not 64 <= size <= INSTANT_MAX_SIZE:
        raise mistake(f"Output size must be between 64 and {INSTANT_MAX_SIZE} px, got {size}.")
    return load_upload(photo, "photo"), style, size


def instant(
    photo: str | None = None,
    style: str | None = None,
    size: float = INSTANT_DEFAULT_SIZE,
    preserve_colors: bool = False,
) -> tuple[list[tuple[str, str]], str, str]:
    """Stylise a photo instantly with a trained style model (one forward pass of a feed-forward network,
    Johnson et al. 2016): about a second, against minutes for the optimisation.

    Args:
        photo: the photo to stylise (an image file: PNG, JPEG or WebP).
        style: the name of an instant style, e.g. "starry-night" or "shipwreck".
        size: the longest side of the output in pixels (64 to 2048 on a CPU, 4096 on a GPU).
        preserve_colors: keep the photo's own colours and take only the painting's brush work.

    Returns:
        The gallery (a list with the stylised image and its caption), a status line, and the PNG file.
    """
    img, style, size = check_instant(photo, style, size)
    t0 = time.perf_counter()
    try:
        out = instant_on_gpu(img, style, size, bool(preserve_colors))
    except Exception as e:
        raise page_error(e) from None
    seconds = time.perf_counter() - t0
    folder = WORK_DIR / "instant" / uuid.uuid4().hex  # Gradio copies it out after the return: pruned later
    folder.mkdir(parents=True)
    prune(folder.parent, older_than=3600)
    path = str(gimg.save_image(out, folder / f"{stem(photo, 'photo')}-{style}.png"))
    painting = painting_of(style)
    refine = (
        "**Refine** continues from this image with the paper's optimisation."
        if painting
        else "To **Refine** it with the paper's optimisation, upload the painting it was trained on."
    )
    fs = STYLES[style]
    trained_on = f"a network trained on {fs.config.style_name}" if fs.config.style_name else "a trained network"
    status = f"**Done** in {seconds:.2f} s · {out.width}×{out.height} px · {trained_on}, on {fs.device.type}. {refine}"
    return [(path, f"instant · {style}")], status, path


def painting_note(painting: str | None) -> str:
    """What the page says about an uploaded painting: its instant style, or that it needs the optimisation."""
    if painting is None:
        return ""
    name = style_for_painting(painting)
    if name is not None:
        return f"This painting has an instant style: **{name}**."
    opts = PRESETS[APP_DEFAULT_PRESET]
    return (
        "No instant style has been trained on this painting. Click **Refine** to render the photo in its style "
        f"by optimisation ({SPEED.describe(schedule(opts))} here), or use the Stylize tab."
    )


def refine(
    photo: str | None = None,
    style: str | None = None,
    painting: str | None = None,
    size: float = INSTANT_DEFAULT_SIZE,
    preserve_colors: bool = False,
    request: gr.Request = None,
):
    """Continue from the instant result with the paper's optimisation (the app's default preset, started from the
    instant image instead of the photo); its snapshots stream into the same gallery after the instant image.

    Without a style model for the painting, the optimisation starts from the photo.
    """
    WAITING.pop(session(request), None)
    if photo is None:
        raise mistake("Upload a photo first (or pick an example below).")
    uploaded, painting = painting, painting or (painting_of(style) if style in STYLES else None)
    if painting is None:
        raise mistake("Upload the painting to refine towards (the style image) first.")
    size = min(int(size), MAX_SIZE)
    first: list[tuple[str, str]] = []
    init = None
    # From the instant image when its network was trained on this painting; otherwise from the photo.
    if style in STYLES and (uploaded is None or style_for_painting(uploaded) == style):
        first, _, init = instant(photo, style, size, preserve_colors)
    if st is None:
        raise gr.Error(WEIGHTS_ERROR, print_exception=False)
    content_img, style_img = load_upload(photo, "photo"), load_upload(painting, "painting")
    try:
        plan = st.check_inputs(
            content_img,
            [style_img],
            preset=APP_DEFAULT_PRESET,
            init_image=init,
            size=size,
            preserve_colors=bool(preserve_colors),
        )
    except GatysError as e:
        raise mistake(str(e)) from None
    name = f"{stem(photo, 'photo')}-x-{stem(painting, 'painting')}-refined"
    yield from run_stylize(
        plan,
        0,
        name,
        request,
        into=(instant_gallery, instant_status, instant_file),
        first=first,
        tab="instant",
    )


def stop_refine(request: gr.Request) -> str:
    return stop(request, "instant", "Refine")


# -- Stylize tab ---------------------------------------------------------------------------------------------

#: The menu: the app's default first, then the paper's Fig. 2 and the other named presets, then the Fig. 3 grid.
FIRST = (APP_DEFAULT_PRESET, "recommended", "paper", "paper-1e-4", "quality")
PRESET_CHOICES = [
    (PRESETS[n].label, n)
    for n in (
        *[n for n in FIRST if n in PRESETS],
        *[n for n in PRESETS if n not in FIRST and not n.startswith("fig3-")],
        *[fig3_preset_name(letter, r) for letter in FIG3_LAYER_SETS for r in FIG3_RATIOS],
    )
]


#: The α/β slider's step in log₁₀ units: fine enough for every preset's ratio (recommended's 5e-5 is -4.30).
RATIO_STEP = 0.01


def ratio_log10(p: Preset) -> float:
    """The preset's α/β as the slider shows it: log₁₀, on the slider's steps."""
    return round(math.log10(p.alpha_beta), 2) if p.alpha_beta > 0 else -8.0


def ratio_from_log10(value: float, preset: str) -> float:
    """The slider's α/β: the preset's own value where the slider still shows it (5e-5, not 10^-4.30)."""
    p = PRESETS.get(preset)
    if p is not None and p.alpha_beta > 0 and math.isclose(float(value), ratio_log10(p), abs_tol=RATIO_STEP / 2):
        return p.alpha_beta
    return 10.0 ** float(value)


def layers_shown(p: Preset) -> list[str]:
    return [layer for layer in PAPER_STYLE_LAYERS if layer in p.style_layers]


def layer_order(layer: str) -> int:
    return PAPER_STYLE_LAYERS.index(layer) if layer in PAPER_STYLE_LAYERS else len(PAPER_STYLE_LAYERS)


def preset_settings(preset: str) -> dict:
    """The Advanced fields for a preset, and its description with the expected time."""
    p = PRESETS.get(preset, PRESETS[APP_DEFAULT_PRESET])
    return {
        alpha_beta: ratio_log10(p),
        steps: p.steps,
        size: p.size,
        scales: p.num_scales,
        style_layers: layers_shown(p),
        init: p.init,
        preserve_colors: p.preserve_colors,
        style_scale: p.style_scale,
        tv_weight: p.tv_weight,
        info: preset_info(preset, p.size, p.steps, p.num_scales),
    }


def preset_info(preset: str, size: float, steps: float, scales: float) -> str:
    p = PRESETS.get(preset, PRESETS[APP_DEFAULT_PRESET])
    try:
        opts = p.with_overrides(size=int(size), steps=int(steps), num_scales=int(scales))
    except (GatysError, TypeError, ValueError):
        opts = p
    machine = "this CPU" if st is None or st.device.type == "cpu" else f"this {st.device.type.upper()}"
    sizes = opts.scale_sizes()  # without coarse scales under the preset's min_scale_size
    scales_note = f", scales {' → '.join(map(str, sizes))} px" if len(sizes) > 1 else ""
    try:
        work, tiles_note = planned_work(opts)
    except GatysError as e:
        return f"{p.description}. <br>**{opts.size} px does not fit this app's memory budget:** {e}."
    return (
        f"{p.description}. <br>Source: {p.source}. <br>**Expected time on {machine}: "
        f"{SPEED.describe(work)}** ({opts.size} px, {opts.steps} steps{scales_note}).{tiles_note}"
    )


def check_stylize(
    content: str | None,
    styles: list[tuple[str | None, float | None]],
    preset: str,
    seed: int | None,
    fields: dict[str, Any],
) -> Plan:
    """Read and check a stylization's uploads and settings before any compute; a gr.Error for every mistake.

    ``fields`` are Preset fields from the page; None means "the preset's value", and only fields that differ
    from the preset override it, so an untouched preset keeps its name in the results.
    """
    if st is None:
        raise gr.Error(WEIGHTS_ERROR, print_exception=False)  # logged once, at start
    if content is None:
        raise mistake("Upload a content image (the photo) first.")
    if all(path is None for path, _ in styles):
        raise mistake("Upload a style image (a painting) first.")
    if preset not in PRESETS:
        raise mistake(f"Unknown preset {preset!r}; choose one from the list.")
    content_img = load_upload(content, "content image")
    images, weights = [], []
    for i, (path, w) in enumerate(styles):
        if path is not None and (w is None or w > 0):
            images.append(load_upload(path, f"style image {i + 1}" if i else "style image"))
            weights.append(float(w if w is not None else 1.0))
    if not images:
        raise mistake("Every style image has weight 0; give at least one a positive weight.")
    if fields["size"] is not None and fields["size"] > LARGE_MAX_SIZE:
        raise mistake(f"Output size {fields['size']} px is over this app's limit of {LARGE_MAX_SIZE} px.")
    overrides = {k: v for k, v in fields.items() if v is not None and not same(getattr(PRESETS[preset], k), v)}
    size = fields["size"] if fields["size"] is not None else PRESETS[preset].size
    try:
        plan = st.check_inputs(
            content_img,
            images,
            preset=preset,
            style_weights=weights,
            seed=seed,
            max_memory=LARGE_MEMORY if size > MAX_SIZE else None,
            **overrides,
        )
        st.schedule(plan)  # a budget too small for the size is a plain message now, not an error mid-run
    except GatysError as e:
        raise mistake(str(e)) from None
    return plan


def stylize(
    content: str | None = None,
    style: str | None = None,
    style_weight: float = 1.0,
    style_2: str | None = None,
    style_2_weight: float = 1.0,
    style_3: str | None = None,
    style_3_weight: float = 1.0,
    preset: str = APP_DEFAULT_PRESET,
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
):
    """Render the content photo in the style of the style image(s); yields the gallery as it fills.

    Settings come from the preset, then every Advanced field overrides it (None: the preset's value).
    """
    WAITING.pop(session(request), None)  # out of the line, whatever happens next
    plan = check_stylize(
        content,
        [(style, style_weight), (style_2, style_2_weight), (style_3, style_3_weight)],
        preset,
        None if seed is None else int(seed),
        dict(
            alpha_beta=None if alpha_beta_log10 is None else ratio_from_log10(alpha_beta_log10, preset),
            steps=None if steps is None else int(steps),
            size=None if size is None else int(size),
            num_scales=None if scales is None else int(scales),
            style_layers=None if style_layers is None else tuple(sorted(style_layers, key=layer_order)),
            init=init,
            preserve_colors=None if preserve_colors is None else bool(preserve_colors),
            style_scale=None if style_scale is None else float(style_scale),
            tv_weight=None if tv_weight is None else float(tv_weight),
        ),
    )
    name = f"{stem(content, 'content')}-x-{stem(style or style_2 or style_3, 'style')}-{plan.settings.name}"
    yield from run_stylize(plan, int(snapshot_every), name.replace("+", "-"), request)


#: ZeroGPU refuses a call whose requested duration is over the visitor's per-call cap ("illegal duration") and
#: counts the requested time, not the time used, against their daily quota; shorter requests queue first. So a
#: call asks for its estimate with headroom, never more than this (GATYS_GPU_MAX_SECONDS on the Space).
GPU_MAX_SECONDS = int(os.environ.get("GATYS_GPU_MAX_SECONDS", "120"))


def gpu_seconds(estimate: float) -> int:
    """The ZeroGPU duration for a call expected to take ``estimate`` s: 1.5x and 5 s of headroom (a busy GPU, the
    first call's warm-up), at least 10 s, at most GPU_MAX_SECONDS."""
    return int(min(GPU_MAX_SECONDS, max(10, math.ceil(1.5 * estimate + 5))))


def stylize_duration(plan: Plan, every: int) -> int:
    """stylize_on_gpu's ZeroGPU duration, from the same inputs."""
    aspect = min(plan.content.size) / max(plan.content.size)
    return gpu_seconds(SPEED.seconds(planned_work(plan.settings, aspect)[0]))


@GPU(duration=stylize_duration)
def stylize_on_gpu(plan: Plan, every: int) -> Iterator[Event]:
    """The optimisation, on the GPU where there is one: Progress after every step, GalleryImage("stylize") every
    ``every`` steps and at the last, then Done(StylizeOutput); None as a heartbeat. Closing it stops the run."""
    opts = plan.settings

    def job(emit: Emit) -> StylizeOutput:
        def callback(info: StepInfo) -> bool:
            light = dataclasses.replace(info, pixels=None)
            if info.step % every and info.step != info.total:
                return emit(Progress(info.step, light))
            size_note = f" · {info.size[0]}×{info.size[1]}" if opts.scales_run > 1 else ""
            caption = f"step {info.step}/{info.total} · loss {info.loss:.3g}{size_note}"
            return emit(Progress(info.step, light)) and emit(GalleryImage(info.image, caption, "stylize"))

        return st.stylize(
            plan.content,
            list(plan.styles),
            preset=opts,
            style_weights=plan.blend,
            init_image=plan.init_image,
            seed=plan.seed,
            callback=callback,
            max_memory=plan.max_memory,
        )

    yield from worker_events(job)


def run_stylize(
    plan: Plan,
    every: int,
    name: str,
    request: gr.Request | None,
    *,
    into: tuple[gr.Gallery, gr.Markdown, gr.File] | None = None,
    first: list[tuple[str, str]] | None = None,
    tab: str = "stylize",
):
    """stylize() once its inputs are checked: snapshots every ``every`` steps (0: auto), then ``name``.png.

    ``into`` are the gallery, status and file components to fill (the Stylize tab's by default); ``first`` are
    gallery items to keep in front of the snapshots (Refine keeps the instant result there).
    """
    opts = plan.settings
    out_gallery, out_status, out_file = into or (gallery, status, result)
    work = planned_work(opts, min(plan.content.size) / max(plan.content.size))[0]
    every = every or auto_every(sum(n for _, n in work))

    with running(request, tab, sum(n for _, n in work)) as run:
        shown: list[tuple[str, str]] = list(first or [])
        line = "Starting…"
        yield {out_gallery: list(shown), out_status: line, out_file: None}  # a fresh page for this run
        for event in run.follow(stylize_on_gpu(plan, every)):
            match event:
                case Progress(step=step, info=info):
                    run.step = step
                    run.seconds_left = SPEED.seconds_left(work, step, info.elapsed)
                    detail = f"about {format_seconds(run.seconds_left)} left · loss {info.loss:.3g}"
                    line = progress_line(step, info.total, info.elapsed, detail)
                case GalleryImage(image=image, caption=caption):
                    shown.append((str(gimg.save_image(image, run.folder / f"{len(shown):04d}.png")), caption))
                    yield {
                        out_gallery: gr.Gallery(value=list(shown), selected_index=len(shown) - 1),
                        out_status: run.stopped or line,
                    }
                case Done(result=out):
                    SPEED.update(out.losses)
                    fl = out.final_losses
                    yield {
                        out_gallery: gr.Gallery(value=list(shown), selected_index=len(shown) - 1),
                        out_status: f"**Done** in {out.seconds:.0f} s · {out.losses[-1].step} steps · final loss "
                        f"{fl['loss']:.4g} (content {fl['content']:.3g}, style {fl['style']:.3g}) · settings "
                        f"`{opts.name}` · {out.weights} on {out.device}",
                        out_file: str(gimg.save_image(out.image, run.folder / f"{name}.png")),
                    }
                case None:
                    yield {out_status: run.stopped or line}


def stop_stylize(request: gr.Request) -> str:
    return stop(request, "stylize", "Stylize")


# -- Fig. 1 tab ----------------------------------------------------------------------------------------------


def fig1_info(size: float, steps: float) -> str:
    eta = SPEED.describe([(round(int(size) ** 2 * 0.75), int(steps) * 10)])
    return (
        f"Ten reconstructions from white noise (five content, five style), {int(steps)} steps each at "
        f"{int(size)} px: **{eta}** here."
    )


def check_reconstruct(
    content: str | None, style: str | None, size: int, optimizer: str
) -> tuple[Image.Image, Image.Image]:
    """Read and check the Fig. 1 uploads and settings before any compute; a gr.Error for every mistake."""
    if st is None:
        raise gr.Error(WEIGHTS_ERROR, print_exception=False)  # logged once, at start
    if content is None or style is None:
        raise mistake("Upload both a content image and a style image first.")
    content_img, style_img = load_upload(content, "content image"), load_upload(style, "style image")
    if optimizer not in ("auto", "adam", "lbfgs"):
        raise mistake(f"Unknown optimiser {optimizer!r}; use auto, adam or lbfgs.")
    if size > MAX_SIZE:
        raise mistake(f"Size {size} px is over this app's limit of {MAX_SIZE} px.")
    try:
        for img, name in ((content_img, "content image"), (style_img, "style image")):
            gimg.resize_longest(img, size, name)
    except GatysError as e:
        raise mistake(str(e)) from None
    return content_img, style_img


def reconstruct(
    content: str | None = None,
    style: str | None = None,
    size: float = 128,
    steps: float = 100,
    optimizer: str = "auto",
    request: gr.Request = None,
):
    """Fig. 1: the content from each of conv1_1..conv5_1 and the style from the growing layer sets.

    Yields the content reconstructions, the style reconstructions and the status.
    """
    WAITING.pop(session(request), None)
    size, steps = int(size), int(steps)
    content_img, style_img = check_reconstruct(content, style, size, optimizer)
    total = len(FIG1_CONTENT_LAYERS) * 2 * steps
    galleries = {"content": fig1_content_out, "style": fig1_style_out}
    start = time.monotonic()
    with running(request, "fig1", total) as run:
        shown: dict[str, list[tuple[str, str]]] = {"content": [], "style": []}
        line = "Starting…"
        yield {fig1_content_out: [], fig1_style_out: [], fig1_status: line}
        for event in run.follow(reconstruct_on_gpu(content_img, style_img, size, steps, optimizer)):
            n = sum(map(len, shown.values()))
            match event:
                case Progress(step=step):
                    run.step = step
                    detail = f"reconstruction {n + 1} of {total // steps}"
                    line = progress_line(step, run.total, time.monotonic() - start, detail)
                case GalleryImage(image=image, caption=caption, gallery=key):
                    shown[key].append((str(gimg.save_image(image, run.folder / f"{n:02d}.png")), caption))
                    yield {galleries[key]: list(shown[key]), fig1_status: run.stopped or line}
                case Done():
                    yield {
                        **{galleries[k]: list(items) for k, items in shown.items()},
                        fig1_status: f"**Done** in {time.monotonic() - start:.0f} s: left, the photo as each layer "
                        "keeps it; right, the painting's style from ever more layers.",
                    }
                case None:
                    yield {fig1_status: run.stopped or line}


def reconstruct_duration(content_img: Image.Image, style_img: Image.Image, size: int, steps: int, optimizer: str):
    """reconstruct_on_gpu's ZeroGPU duration, from the same inputs: ten runs of ``steps`` steps."""
    return gpu_seconds(SPEED.seconds([(round(size * size * 0.75), steps * 2 * len(FIG1_CONTENT_LAYERS))]))


@GPU(duration=reconstruct_duration)
def reconstruct_on_gpu(
    content_img: Image.Image, style_img: Image.Image, size: int, steps: int, optimizer: str
) -> Iterator[Event]:
    """Fig. 1's ten optimisations, on the GPU where there is one: Progress after every step, each result as a
    GalleryImage for the "content" or "style" gallery, then Done. Closing it stops the run."""
    # auto: the library's defaults, Adam for content (L-BFGS fills deep reconstructions with speckle), L-BFGS
    # for style.
    chosen = {} if optimizer == "auto" else {"optimizer": optimizer}
    # Interleaved, so the two galleries fill row by row: content conv1_1, style {conv1_1}, content conv2_1 ...
    # Style sets grow by one layer: conv1_1, + conv2_1, ... + conv5_1.
    runs = []
    for layer, layers in zip(FIG1_CONTENT_LAYERS, FIG1_STYLE_SETS):
        runs.append((st.reconstruct_content, content_img, layer, layer, "content"))
        plus = layers[0] if len(layers) == 1 else f"+ {layers[-1]}"
        runs.append((st.reconstruct_style, style_img, layers, plus, "style"))

    def job(emit: Emit) -> None:
        for i, (fn, img, arg, caption, key) in enumerate(runs):
            cb = lambda info, done=i * steps: emit(Progress(done + info.step, dataclasses.replace(info, pixels=None)))  # noqa: E731
            out = fn(img, arg, size=size, steps=steps, seed=0, callback=cb, **chosen)
            if out.stopped or not emit(GalleryImage(out.image, caption, key)):
                return

    yield from worker_events(job)


def stop_reconstruct(request: gr.Request) -> str:
    return stop(request, "fig1", "Reconstruct")


# -- the page ------------------------------------------------------------------------------------------------


def check_upload(path: str | None, role: str) -> str | None:
    """An upload as it arrives: read (JPEGs at a reduced size, so this is quick) or refused with one line."""
    if path is not None:
        try:
            gimg.load_image(path, max_side=256, name=role)
        except GatysError as e:
            raise mistake(without_path(str(e), path, role)) from None
    return path


def image_input(label: str, role: str | None = None, **kw: Any) -> gr.Image:
    """An image upload that Gradio passes through untouched (``gatys.image`` reads it), checked when it arrives:
    a file that is not a readable image is refused there with a plain line (Gradio's own message names its
    internals) and the upload is cleared, instead of showing a broken image until the run is asked for."""
    role = role or label.lower()
    component = gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], **kw)
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        try:
            return gradio_preprocess(payload)
        except Exception:
            raise mistake(f"The {role} is not an image file we can read; use PNG, JPEG or WebP.") from None

    # On the instance, not in a subclass: a gr.Image subclass makes Gradio write an app.pyi stub beside app.py.
    component.preprocess = preprocess
    checked = component.upload(
        lambda path: check_upload(path, role), component, component, queue=False, api_visibility="private"
    )
    checked.failure(lambda: None, None, component, queue=False, api_visibility="private")
    return component


def first_example() -> str | None:
    """The example photo, pre-filled in the first tab so the first click makes an image."""
    return next((str(d / "tubingen.jpg") for d in EXAMPLE_DIRS if (d / "tubingen.jpg").is_file()), None)


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
/* Gradio fades a component while its event waits in the queue: the status line then says why, readably. */
#status .pending, #instant-status .pending, #fig1-status .pending {opacity: 1 !important}
#stylize-gallery {min-height: 360px}
"""
DEFAULT = PRESETS[APP_DEFAULT_PRESET]  # the Advanced fields start with its values


#: Both optimisations (Stylize and Fig. 1) share one worker: each uses every core.
ONE_OPTIMISATION_AT_A_TIME: dict[str, Any] = dict(concurrency_limit=1, concurrency_id="optimiser")
#: Instant styles are a tenth of a second each: two at a time keep a CPU busy without starving the optimiser.
INSTANT_CONCURRENCY = 2


def live_info(triggers: list, fn: Callable, output: gr.Markdown, **inputs: gr.components.Component) -> None:
    """Refresh an info line when a setting changes: instant (no queue) and not part of the public API."""
    gr.on(triggers, fn, inputs_kwargs=inputs, outputs=output, api_visibility="private", queue=False)


with gr.Blocks(title="Neural style transfer (Gatys et al. 2015)", delete_cache=(1800, 3600)) as demo:
    gr.Markdown(
        "# Neural style transfer\n"
        "Gatys, Ecker & Bethge, [*A Neural Algorithm of Artistic Style*](https://arxiv.org/abs/1508.06576) (2015): "
        "an image is optimised so that its VGG features match the photo's content and the painting's style "
        "(**Stylize**). Johnson, Alahi & Fei-Fei, [*Perceptual Losses for Real-Time Style Transfer*]"
        "(https://arxiv.org/abs/1603.08155) (2016): a network trained on one painting with the same losses "
        "stylises a photo in one pass (**Instant styles**)."
    )
    gr.Markdown(WEIGHTS_LINE, elem_id="weights-line")
    with gr.Tab("Instant styles", elem_id="instant-tab"), gr.Row():
        with gr.Column(scale=1):
            instant_photo = image_input("Photo", height=220, elem_id="instant-photo", value=first_example())
            instant_style = gr.Dropdown(
                list(STYLES),
                value="starry-night" if "starry-night" in STYLES else next(iter(STYLES), None),
                label="Instant style (a network trained on one painting)",
                elem_id="instant-style",
            )
            with gr.Row():
                instant_btn = gr.Button("Stylize instantly", variant="primary", elem_id="instant-run")
                refine_btn = gr.Button("Refine", elem_id="refine")
                refine_stop = gr.Button("Stop", variant="stop", elem_id="refine-stop")
            with gr.Row():
                instant_size = gr.Slider(
                    64, INSTANT_MAX_SIZE, value=INSTANT_DEFAULT_SIZE, step=32, label="Output size (px)"
                )
                instant_preserve = gr.Checkbox(False, label="Keep the photo's colours")
            instant_painting = image_input(
                "Painting, for Refine (found for the built-in styles; any other painting refines from the photo)",
                "painting",
                height=160,
                elem_id="painting",
            )
            painting_info = gr.Markdown("", elem_id="painting-info")
        with gr.Column(scale=1):
            instant_gallery = gr.Gallery(
                label="Result (Refine adds the optimisation's snapshots)",
                columns=4,
                height=480,
                preview=True,
                object_fit="contain",
                elem_id="instant-gallery",
                interactive=False,
            )
            instant_status = gr.Markdown(
                "Pick a photo and a style and click **Stylize instantly**: about a second."
                if STYLES
                else "No instant styles are installed here; use the **Stylize** tab.",
                elem_id="instant-status",
                min_height=60,
            )
            instant_file = gr.File(label="Image (PNG)", elem_id="instant-file", interactive=False, height=90)
    with gr.Tab("Stylize"), gr.Row():
        with gr.Column(scale=1):
            # The main action in the first screen (1280x800): uploads, preset, the buttons; the rest below.
            with gr.Row():
                content = image_input("Content image", height=220, elem_id="content")
                style = image_input("Style image", height=220, elem_id="style")
            preset = gr.Dropdown(
                PRESET_CHOICES,
                value=APP_DEFAULT_PRESET,
                label="Preset (the paper's settings by figure)",
                elem_id="preset",
            )
            with gr.Row():
                run_btn = gr.Button("Stylize", variant="primary", elem_id="run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
            rows = example_rows()
            labels = ["Tübingen × The Starry Night", "Tübingen × The Shipwreck of the Minotaur"][: len(rows)]
            if rows:
                gr.Examples(rows, inputs=[content, style], cache_examples=False, example_labels=labels)
            info = gr.Markdown(
                preset_info(APP_DEFAULT_PRESET, DEFAULT.size, DEFAULT.steps, DEFAULT.num_scales),
                elem_id="preset-info",
            )
            style_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style image weight")
            with gr.Accordion("Blend more styles", open=False):
                gr.Markdown("Style images are blended by their weights (normalised to sum to 1).")
                with gr.Row():
                    style_2 = image_input("Style image 2", height=180)
                    style_3 = image_input("Style image 3", height=180)
                with gr.Row():
                    style_2_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style 2 weight")
                    style_3_weight = gr.Slider(0, 5, value=1, step=0.1, label="Style 3 weight")
            with gr.Accordion("Advanced (filled in by the preset)", open=False):
                alpha_beta = gr.Slider(
                    -6,
                    0,
                    value=ratio_log10(DEFAULT),
                    step=RATIO_STEP,
                    label="α/β, content : style weight ratio (log₁₀: -3 means 1e-3)",
                    elem_id="alpha-beta",
                )
                with gr.Row():
                    steps = gr.Slider(
                        1,
                        2000,
                        value=DEFAULT.steps,
                        step=1,
                        label="Steps (at the finest scale)",
                        elem_id="steps",
                    )
                    size = gr.Slider(
                        64,
                        LARGE_MAX_SIZE,
                        value=DEFAULT.size,
                        step=32,
                        label="Output size (longest side, px)",
                        info=f"Above {MAX_SIZE} px: a large output, made in tiles where it does not fit in memory "
                        "(the time it takes is shown above before you start).",
                        elem_id="size",
                    )
                with gr.Row():
                    scales = gr.Slider(1, 4, value=DEFAULT.num_scales, step=1, label="Scales (coarse to fine)")
                    snapshot_every = gr.Slider(
                        0, 200, value=0, step=1, label="Snapshot every N steps (0: auto)", elem_id="snapshot-every"
                    )
                style_layers = gr.CheckboxGroup(
                    list(PAPER_STYLE_LAYERS), value=layers_shown(DEFAULT), label="Style layers"
                )
                init = gr.Radio(
                    [("White noise (the paper)", "noise"), ("Content image", "content"), ("Style image", "style")],
                    value=DEFAULT.init,
                    label="Start from",
                    elem_id="init",
                )
                with gr.Row():
                    style_scale = gr.Slider(0.25, 4, value=DEFAULT.style_scale, step=0.05, label="Style scale")
                    tv_weight = gr.Number(
                        DEFAULT.tv_weight, minimum=0, label="TV weight (smoothness; not in the paper)"
                    )
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="Seed (empty: random)")
                    preserve_colors = gr.Checkbox(DEFAULT.preserve_colors, label="Preserve the photo's colours")
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
                "Upload two images (or pick an example on the left) and click **Stylize**.",
                elem_id="status",
                min_height=80,
            )
            result = gr.File(label="Final image (PNG)", elem_id="result", interactive=False, height=110)

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
            # Titles above the galleries, not as their label badge: the badge covered the first thumbnails.
            with gr.Column():
                gr.Markdown("**Content reconstructions**, from conv1_1 … conv5_1 alone")
                fig1_content_out = gr.Gallery(
                    label="Content reconstructions",
                    show_label=False,
                    columns=5,
                    height=300,
                    elem_id="fig1-content",
                    interactive=False,
                )
            with gr.Column():
                gr.Markdown("**Style reconstructions**, from conv1_1, + conv2_1, … + conv5_1")
                fig1_style_out = gr.Gallery(
                    label="Style reconstructions",
                    show_label=False,
                    columns=5,
                    height=300,
                    elem_id="fig1-style",
                    interactive=False,
                )
        fig1_status = gr.Markdown("", elem_id="fig1-status", min_height=80)
        if rows:
            gr.Examples(rows, inputs=[fig1_content, fig1_style], cache_examples=False, example_labels=labels)

    instant_inputs = dict(photo=instant_photo, style=instant_style, size=instant_size, preserve_colors=instant_preserve)
    instant_btn.click(
        status_on_error(instant, lambda: instant_status),
        inputs_kwargs=instant_inputs,
        outputs=[instant_gallery, instant_status, instant_file],
        api_name="instant",
        concurrency_limit=INSTANT_CONCURRENCY,
        concurrency_id="instant",
    )
    refine_event = refine_btn.click(
        queue_note, None, instant_status, queue=False, api_visibility="private", show_progress="hidden"
    ).then(
        status_on_error(refine, lambda: instant_status),
        inputs_kwargs=dict(instant_inputs, painting=instant_painting),
        outputs=[instant_gallery, instant_status, instant_file],
        api_name="refine",
        show_progress="hidden",  # the status line shows the app's own progress (progress_line)
        **ONE_OPTIMISATION_AT_A_TIME,
    )
    refine_stop.click(stop_refine, None, instant_status, cancels=[refine_event], api_name="stop_refine", queue=False)
    instant_painting.change(painting_note, instant_painting, painting_info, api_visibility="private", queue=False)
    preset.change(
        preset_settings,
        preset,
        [alpha_beta, steps, size, scales, style_layers, init, preserve_colors, style_scale, tv_weight, info],
        api_name="preset_settings",
        queue=False,
    )
    live_info(
        [size.change, steps.change, scales.change],
        preset_info,
        info,
        preset=preset,
        size=size,
        steps=steps,
        scales=scales,
    )
    # Inputs by parameter name: the API's /stylize takes them in this order (positional callers depend on it).
    run_event = run_btn.click(
        queue_note, None, status, queue=False, api_visibility="private", show_progress="hidden"
    ).then(
        status_on_error(stylize, lambda: status),
        inputs_kwargs=dict(
            content=content,
            style=style,
            style_weight=style_weight,
            style_2=style_2,
            style_2_weight=style_2_weight,
            style_3=style_3,
            style_3_weight=style_3_weight,
            preset=preset,
            alpha_beta_log10=alpha_beta,
            steps=steps,
            size=size,
            scales=scales,
            style_layers=style_layers,
            init=init,
            seed=seed,
            preserve_colors=preserve_colors,
            style_scale=style_scale,
            tv_weight=tv_weight,
            snapshot_every=snapshot_every,
        ),
        outputs=[gallery, status, result],
        api_name="stylize",
        show_progress="hidden",  # the status line shows the app's own progress (progress_line)
        **ONE_OPTIMISATION_AT_A_TIME,
    )
    stop_btn.click(stop_stylize, None, status, cancels=[run_event], api_name="stop", queue=False)
    live_info([fig1_size.change, fig1_steps.change], fig1_info, fig1_eta, size=fig1_size, steps=fig1_steps)
    fig1_event = fig1_btn.click(
        queue_note, None, fig1_status, queue=False, api_visibility="private", show_progress="hidden"
    ).then(
        status_on_error(reconstruct, lambda: fig1_status),
        inputs_kwargs=dict(
            content=fig1_content, style=fig1_style, size=fig1_size, steps=fig1_steps, optimizer=fig1_optimizer
        ),
        outputs=[fig1_content_out, fig1_style_out, fig1_status],
        api_name="reconstruct",
        show_progress="hidden",  # the status line shows the app's own progress (progress_line)
        **ONE_OPTIMISATION_AT_A_TIME,
    )
    fig1_stop.click(stop_reconstruct, None, fig1_status, cancels=[fig1_event], api_name="stop_reconstruct", queue=False)
    demo.unload(stop_session)

# One optimisation runs at a time (it uses every core); a few more may wait, each holding only its uploads.
demo.queue(default_concurrency_limit=1, max_size=8)

if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # the app's own lines (one per user mistake); other libraries stay at WARNING
    demo.launch(
        share=True if "--share" in sys.argv[1:] else None,  # None: Gradio reads GRADIO_SHARE
        # The API as MCP tools (instant, stylize, refine, reconstruct) at /gradio_api/mcp/; needs gradio[mcp].
        mcp_server="--mcp" in sys.argv[1:] or os.environ.get("GATYS_MCP", "").lower() in ("1", "true", "yes"),
        max_file_size="25mb",
        theme=gr.themes.Soft(),
        css=CSS,
    )

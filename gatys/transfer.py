"""StyleTransfer: the paper's algorithm, with the options users of the best tools expect.

Data flows one way: images -> :mod:`gatys.image` -> a checked :class:`Plan` -> per scale, targets computed
once and the optimiser's steps (:mod:`gatys._optimize`) -> :class:`StylizeOutput`. The library never prints;
it reports through a typed callback and an optional tqdm bar.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from PIL import Image

from . import _optimize, allocator, tiling
from . import image as im
from ._optimize import NOISE_STD, lbfgs
from .errors import ConfigError, GatysError
from .presets import PAPER_STYLE_LAYERS, Preset, get_preset
from .vgg import VGGFeatures
from .weights import pick_device

__all__ = ["NOISE_STD", "Plan", "Snapshot", "StepInfo", "StyleTransfer", "StylizeOutput", "lbfgs"]


@dataclasses.dataclass
class StepInfo:
    """What the optimiser reports after each step (one forward + backward pass)."""

    step: int  # 1-based, counted over all scales
    total: int  # steps planned over all scales
    loss: float  # α L_content + β L_style (+ tv) at this step, with the ratio actually used
    content_loss: float
    style_loss: float
    tv_loss: float
    scale: int  # 0-based index of the scale (coarse to fine)
    size: tuple[int, int]  # (width, height) at this scale
    elapsed: float  # seconds since the run started
    pixels: torch.Tensor | None = dataclasses.field(default=None, repr=False)

    @property
    def image(self) -> Image.Image:
        """The current image (computed on demand, so callbacks that ignore it cost nothing)."""
        if self.pixels is None:
            raise GatysError("this StepInfo carries no image (only the callback's live StepInfo does)")
        return im.to_pil(self.pixels)


@dataclasses.dataclass
class Snapshot:
    step: int
    loss: float
    image: Image.Image


@dataclasses.dataclass
class StylizeOutput:
    """The result of a run: the final image, snapshots along the way and the loss history."""

    image: Image.Image
    snapshots: list[Snapshot]
    losses: list[StepInfo]
    settings: Preset
    weights: str
    device: str
    seconds: float
    stopped: bool = False  # True if the callback asked to stop early
    tiling: tiling.TilingReport | None = None  # how a run over its memory budget was tiled (None: untiled)
    #: The final image before rounding to 8 bits: (1, 3, H, W) float32 in [0, 1] on the CPU, for 16-bit
    #: outputs (``gatys.image.save_image(out.pixels, "out.png", bits=16)``).
    pixels: torch.Tensor | None = dataclasses.field(default=None, repr=False)

    @property
    def images(self) -> list[Image.Image]:
        return [s.image for s in self.snapshots]

    @property
    def final_losses(self) -> dict[str, float]:
        last = self.losses[-1]
        return {"loss": last.loss, "content": last.content_loss, "style": last.style_loss, "tv": last.tv_loss}


Callback = Callable[[StepInfo], Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked run, built once before any compute: what :meth:`StyleTransfer.check_inputs` returns.

    The images are read and validated; :meth:`StyleTransfer.stylize` optimises exactly this.
    """

    settings: Preset  # the preset with the call's overrides
    content: Image.Image
    styles: tuple[Image.Image, ...]  # none: no style term (the loss is L_content alone)
    blend: tuple[float, ...]  # weight of each style image, summing to 1
    init_image: Image.Image | None  # start from this image instead of ``settings.init``
    seed: int | None  # of the white-noise init; None: random
    precision: str  # "fp32" or "bf16"
    snapshot_every: int  # keep a snapshot every N steps (0: only the last)
    max_memory: int | None = None  # bytes the process may hold; None: what it holds plus 80 % of the free memory


class _Recorder:
    """The bookkeeping after every step of a run: loss history, progress bar, snapshots, the caller's callback."""

    def __init__(self, total: int, snapshot_every: int, callback: Callback | None, progress: bool):
        self.total, self.snapshot_every, self.callback = total, snapshot_every, callback
        self.history: list[StepInfo] = []
        self.snapshots: list[Snapshot] = []
        self.stopped = False
        self.start = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="gatys", unit="step", dynamic_ncols=True)

    def reporter(self, scale: _optimize.Scale, settings: Preset) -> _optimize.Report:
        """What the optimiser calls after each step of ``scale``."""

        def report(x: torch.Tensor, values: list[float]) -> None:
            step = len(self.history) + 1
            w, h = scale.size
            loss, lc, ls, ltv = values
            info = StepInfo(step, self.total, loss, lc, ls, ltv, scale.index, (w, h), time.perf_counter() - self.start)
            self.history.append(info)
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(loss=f"{info.loss:.3g}", size=f"{w}x{h}")
            want_snapshot = self.snapshot_every and (step % self.snapshot_every == 0 or step == self.total)
            if self.callback is not None or want_snapshot:
                pixels = _optimize.pixels(x, scale.content, settings)
                if want_snapshot:
                    self.snapshots.append(Snapshot(step, info.loss, im.to_pil(pixels)))
                if self.callback is not None and self.callback(dataclasses.replace(info, pixels=pixels)) is False:
                    raise _optimize.Stop

        return report

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def finish(self, pixels: torch.Tensor, settings: Preset, weights: str, device: str) -> StylizeOutput:
        """The output, with ``pixels`` (the kept best, not a line-search trial) as the last snapshot."""
        pixels = pixels.detach().float().cpu()
        final = im.to_pil(pixels)
        step = len(self.history)
        if self.snapshots and self.snapshots[-1].step == step:
            self.snapshots[-1] = Snapshot(step, self.snapshots[-1].loss, final)
        else:
            self.snapshots.append(Snapshot(step, self.history[-1].loss, final))
        return StylizeOutput(
            image=final,
            snapshots=self.snapshots,
            losses=self.history,
            settings=settings,
            weights=weights,
            device=device,
            seconds=time.perf_counter() - self.start,
            stopped=self.stopped,
            pixels=pixels,
        )


def fit_scales(settings: Preset, content: Image.Image, styles: Sequence[Image.Image]) -> Preset:
    """``settings`` without the coarse scales at which an image would be too small for the network.

    A coarse scale only prepares the next one, so where the content (at the scale's size) or a style image (at
    ``style_scale`` times it) would have a side under :data:`gatys.image.MIN_SIDE` px, the coarsest scales are
    left out rather than the run refused: ``recommended`` (256 -> 512 px) at ``size=32`` runs 32 px alone. The
    final scale is kept as asked (and checked by :meth:`StyleTransfer.check_inputs`).
    """

    def fits(size: int) -> bool:
        style_size = max(im.MIN_SIDE, round(size * settings.style_scale))
        shapes = [im.longest_side_shape(content.size, size)]
        shapes += [im.longest_side_shape(s.size, style_size) for s in styles]
        return min(min(shape) for shape in shapes) >= im.MIN_SIDE

    n = settings.num_scales
    while n > 1 and not all(fits(size) for size in dataclasses.replace(settings, num_scales=n).scale_sizes()[:-1]):
        n -= 1
    return settings if n == settings.num_scales else dataclasses.replace(settings, num_scales=n)


class StyleTransfer:
    """Neural style transfer after Gatys, Ecker & Bethge (2015).

    Args:
        model: the loss network; :meth:`from_pretrained` loads one.
        device: force a device; by default ``accelerate`` picks (GPU when present, else CPU).
        weights_name: names the weights in :attr:`description` and in results.
        tune_malloc: whether runs on the CPU tune glibc's malloc (below). None: yes, unless the environment
            variable ``GATYS_TUNE_MALLOC`` is 0 (or false, no, off).

    Memory on the CPU: PyTorch has no caching allocator there, and glibc maps every block over 32 MB afresh
    and unmaps it when freed, so each step at 512 px pays page faults for the same activations again (up to
    40 % of a step on 2 cores, ``benchmarks/README.md``). A CPU run therefore first has glibc serve large
    blocks from its heap and keep freed memory for the next step, and gives the free memory back to the
    system when it ends (:mod:`gatys.allocator`). These settings are **process-wide**: they apply to every
    allocation of the process, including other libraries', and stay in effect after the run. Switch them off
    with ``tune_malloc=False`` or ``GATYS_TUNE_MALLOC=0``. Malloc options you set in ``GLIBC_TUNABLES`` are
    left alone; nothing is done on GPUs or without glibc (macOS, Windows, musl).

    Example:
        >>> from gatys import StyleTransfer
        >>> st = StyleTransfer.from_pretrained()  # offline default, or a folder / Hub repo id
        >>> out = st.stylize("tubingen.jpg", "starry_night.jpg", size=256)
        >>> out.image.save("out.png")
    """

    def __init__(
        self,
        model: VGGFeatures,
        *,
        device: str | torch.device | None = None,
        weights_name: str = "",
        tune_malloc: bool | None = None,
    ):
        self.device = pick_device(device)
        self.model = model.to(self.device)
        # channels_last lets oneDNN/cuDNN pick their fastest kernels for 3x3 convolutions.
        self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.weights_name = weights_name or getattr(model, "source", "") or "random weights"
        self.tune_malloc = tune_malloc

    # -- loading -------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        repo_id_or_path: str | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
        tune_malloc: bool | None = None,
    ) -> StyleTransfer:
        """Load VGG weights (safetensors) from a folder or Hugging Face Hub repo.

        Args:
            repo_id_or_path: a local folder or a Hub repo id; None uses :func:`gatys.weights.default_weights`.
            revision, cache_dir, local_files_only, token: passed to ``huggingface_hub`` for Hub repos.
            device: force a device; by default ``accelerate`` picks (GPU when present, else CPU).
            tune_malloc: process-wide malloc tuning for CPU runs; see :class:`StyleTransfer`.

        Example:
            >>> st = StyleTransfer.from_pretrained("timm/vgg19.tv_in1k")
        """
        from .weights import load_vgg

        model = load_vgg(
            repo_id_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        return cls(model, device=device, weights_name=model.config.display_name, tune_malloc=tune_malloc)

    @property
    def description(self) -> str:
        """One line naming the weights and the device, e.g. ``VGG-16 (HED, offline) on cpu``."""
        return f"{self.weights_name} on {self.device.type}"

    # -- public entry points -------------------------------------------------------------------------------

    def stylize(
        self,
        content: im.ImageInput,
        style: im.ImageInput | Sequence[im.ImageInput],
        *,
        preset: str | Preset = "paper",
        style_weights: Sequence[float] | None = None,
        init_image: im.ImageInput | None = None,
        seed: int | None = 0,
        callback: Callback | None = None,
        snapshot_every: int = 0,
        progress: bool = False,
        precision: str = "fp32",
        max_memory: str | int | None = None,
        **overrides: Any,
    ) -> StylizeOutput:
        """Render ``content`` in the style of ``style`` (one image or several blended).

        Args:
            content: the photo (path, bytes, PIL image, array or tensor).
            style: one style image or a list of them.
            preset: a name from ``PRESETS`` or a :class:`Preset`; every field can be overridden by keyword
                (``size=256, steps=200, alpha_beta=1e-4, init="content", preserve_colors=True``...).
            style_weights: blend weights of the style images (normalised to sum to 1); default equal.
            init_image: start from this image instead of the preset's ``init``.
            seed: seeds the white-noise init; same seed and inputs give the same output on CPU. None: random.
            callback: called with a :class:`StepInfo` after every step; return ``False`` to stop early.
            snapshot_every: keep a snapshot every N steps (and always the last).
            progress: show a tqdm progress bar.
            precision: ``"fp32"`` or ``"bf16"`` (autocast for the network; losses accumulate in fp32).
            max_memory: what the process may hold (``"4GB"``, ``"512MB"`` or bytes; on a GPU, its memory). A run
                that does not fit is tiled (:mod:`gatys.tiling`): whole-image scales up to the largest size
                that fits, finer ones tile by tile against the whole style's Gram matrices. None: what the
                process holds plus 80 % of the device's free memory.

        Returns:
            A :class:`StylizeOutput` with ``image``, ``snapshots`` and ``losses``.
        """
        plan = self.check_inputs(
            content,
            style,
            preset=preset,
            style_weights=style_weights,
            init_image=init_image,
            seed=seed,
            callback=callback,
            snapshot_every=snapshot_every,
            progress=progress,
            precision=precision,
            max_memory=max_memory,
            **overrides,
        )
        return self._run(plan, callback, progress)

    def check_inputs(
        self, content: im.ImageInput, style: im.ImageInput | Sequence[im.ImageInput], **options: Any
    ) -> Plan:
        """Validate every argument of :meth:`stylize` and read the images, before any compute.

        Takes :meth:`stylize`'s arguments with :meth:`stylize`'s defaults (written once, there). ``callback``
        and ``progress`` are checked too but are not part of the plan.

        Returns:
            The :class:`Plan` that :meth:`stylize` would optimise: settings, images, normalised blend weights.

        Example:
            >>> plan = st.check_inputs("photo.jpg", ["a.jpg", "b.jpg"], style_weights=[3, 1], size=256)
            >>> plan.blend
            (0.75, 0.25)
        """
        bound = inspect.signature(StyleTransfer.stylize).bind(self, content, style, **options)
        bound.apply_defaults()
        a = bound.arguments
        if a["callback"] is not None and not callable(a["callback"]):
            raise ConfigError(f"callback must be a function of a StepInfo, got {a['callback']!r}")
        settings = get_preset(a["preset"]).with_overrides(**a["overrides"])
        styles = cast("list[im.ImageInput]", list(style) if isinstance(style, (list, tuple)) else [style])
        if not styles:
            raise ConfigError("give at least one style image")
        blend = self._check_blend(a["style_weights"], len(styles))
        self._check_run(settings, a["snapshot_every"], a["precision"])
        content_img, style_imgs = self._read_images(settings, content, styles)
        settings = fit_scales(settings, content_img, style_imgs)
        init_img = None if a["init_image"] is None else im.load_image(a["init_image"], name="init image")
        for size in settings.scale_sizes():
            im.resize_longest(content_img, size, f"content image at {size} px")
            for img in style_imgs:
                style_size = max(im.MIN_SIDE, round(size * settings.style_scale))
                im.resize_longest(img, style_size, f"style image at {size} px")
        return Plan(
            settings=settings,
            content=content_img,
            styles=tuple(style_imgs),
            blend=tuple(blend),
            init_image=init_img,
            seed=a["seed"],
            precision=a["precision"],
            snapshot_every=a["snapshot_every"],
            max_memory=None if a["max_memory"] is None else tiling.parse_memory(a["max_memory"]),
        )

    def reconstruct_content(
        self,
        image: im.ImageInput,
        layer: str = "conv4_2",
        *,
        size: int = 256,
        steps: int = 300,
        seed: int | None = 0,
        optimizer: str = "adam",
        learning_rate: float = 0.02,
        callback: Callback | None = None,
        snapshot_every: int = 0,
        progress: bool = False,
    ) -> StylizeOutput:
        """Fig. 1, content reconstructions: from white noise, minimise the content loss on one layer only.

        A run with no style image, so the loss is the content loss alone. The default optimiser here is Adam
        (plain gradient steps, as the paper's Fig. 1 text says: "we perform gradient descent on a white noise
        image"), not L-BFGS. L-BFGS scales each direction by its inverse curvature, so it takes its largest
        steps along the pixel patterns a deep layer barely sees: from conv3_1 on, its reconstructions fill with
        colour speckle and their PSNR *falls* as the loss falls (measured with the HED VGG-16 at 128 px,
        conv3_1: 13.8 dB after 20 steps, 12.5 dB after 500). Adam reconstructions fall in PSNR with depth as
        the paper describes (37.9, 26.3, 13.6, 12.0, 11.5 dB for conv1_1..conv5_1).
        """
        settings = get_preset("paper").with_overrides(
            name=f"content-{layer}",
            content_layers=(layer,),
            size=size,
            steps=steps,
            optimizer=optimizer,
            init="noise",
            learning_rate=learning_rate,
        )
        self._check_run(settings, snapshot_every, "fp32")
        img = im.load_image(image, max_side=size * 2, name="image")
        plan = Plan(settings, img, (), (), None, seed, "fp32", snapshot_every)
        return self._run(plan, callback, progress)

    def reconstruct_style(
        self,
        image: im.ImageInput,
        layers: Sequence[str] = PAPER_STYLE_LAYERS,
        *,
        size: int = 256,
        steps: int = 300,
        seed: int | None = 0,
        optimizer: str = "lbfgs",
        callback: Callback | None = None,
        snapshot_every: int = 0,
        progress: bool = False,
    ) -> StylizeOutput:
        """Fig. 1, style reconstructions: from white noise, minimise the style loss on ``layers`` only.

        A run with no content layer and ``image`` as both content (it sets the size) and style.
        """
        settings = get_preset("paper").with_overrides(
            name=f"style-{layers[-1] if layers else ''}",
            content_layers=(),
            style_layers=tuple(layers),
            size=size,
            steps=steps,
            optimizer=optimizer,
            init="noise",
        )
        self._check_run(settings, snapshot_every, "fp32")
        img = im.load_image(image, max_side=size * 2, name="image")
        w, h = im.resize_longest(img, size, "image").size
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        # Full-range uniform white noise here: with no content term, the low-amplitude noise of stylize() is
        # nearly uniform, its style gradient nearly uniform too, and L-BFGS crawls (measured); a texture
        # keeps no grain the Gram matrices do not ask for.
        noise = im.to_pil(torch.rand((1, 3, h, w), generator=gen))
        plan = Plan(settings, img, (img,), (1.0,), noise, seed, "fp32", snapshot_every)
        return self._run(plan, callback, progress)

    # -- validation ----------------------------------------------------------------------------------------

    def _check_run(self, settings: Preset, snapshot_every: int, precision: str) -> None:
        self.model.check_layers(settings.content_layers)
        self.model.check_layers(settings.style_layers)
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
            raise ConfigError(f"snapshot_every must be an integer >= 0, got {snapshot_every!r}")
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")

    @staticmethod
    def _read_images(
        settings: Preset, content: im.ImageInput, styles: list[im.ImageInput]
    ) -> tuple[Image.Image, list[Image.Image]]:
        content_img = im.load_image(content, max_side=settings.size * 2, name="content image")
        im.check_size(content_img, "content image")
        style_imgs = []
        for i, s in enumerate(styles):
            name = f"style image {i + 1}" if len(styles) > 1 else "style image"
            style_imgs.append(im.load_image(s, max_side=round(settings.size * settings.style_scale * 2), name=name))
            im.check_size(style_imgs[-1], name)
        return content_img, style_imgs

    @staticmethod
    def _check_blend(style_weights: Sequence[float] | None, n: int) -> list[float]:
        if style_weights is None:
            return [1.0 / n] * n
        ws = list(style_weights)
        if len(ws) != n:
            raise ConfigError(f"got {len(ws)} style weights for {n} style images; give one weight per style image")
        for w in ws:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ConfigError(f"style weights must be non-negative numbers, got {w!r}")
        total = float(sum(ws))
        if total <= 0:
            raise ConfigError("style weights are all zero; give at least one positive weight")
        return [w / total for w in ws]

    # -- the optimisation ----------------------------------------------------------------------------------

    def schedule(self, plan: Plan) -> tiling.Schedule:
        """How ``plan`` fits its memory budget: each scale whole or tiled (:func:`gatys.tiling.plan_schedule`)."""
        base = tiling.process_memory(self.device)
        budget = plan.max_memory if plan.max_memory is not None else tiling.default_budget(self.device)
        return tiling.plan_schedule(self.model, plan.settings, plan.content.size, budget, base)

    def estimate_seconds(self, plan: Plan, schedule: tiling.Schedule | None = None) -> float:
        """Seconds ``plan`` will take here: two timed steps of a small image, scaled by the pixels of every step."""
        return tiling.estimate_seconds(self, plan, schedule or self.schedule(plan))

    def run(
        self,
        plan: Plan,
        schedule: tiling.Schedule | None = None,
        *,
        callback: Callback | None = None,
        progress: bool = False,
    ) -> StylizeOutput:
        """Optimise a plan from :meth:`check_inputs`, fitted to its budget as ``schedule`` says.

        ``schedule`` defaults to :meth:`schedule` now. Pass the one whose :meth:`estimate_seconds` you showed, so
        the run is the one described: the memory the process holds (and so the tiling of a large output) can
        shift between planning and running (measured: timing the estimate's steps left 30 MB more, enough to
        turn 154+180 tiles of 352 px into 180+208 of 336 px at 4096 px under 2 GB).

        Example:
            >>> plan = st.check_inputs("photo.jpg", "painting.jpg", size=4096, max_memory="2GB")  # doctest: +SKIP
            >>> schedule = st.schedule(plan); print(schedule.describe())  # doctest: +SKIP
            >>> out = st.run(plan, schedule, progress=True)  # doctest: +SKIP
        """
        return self._run(plan, callback, progress, schedule)

    def _run(
        self, plan: Plan, callback: Callback | None, progress: bool, schedule: tiling.Schedule | None = None
    ) -> StylizeOutput:
        """Optimise a checked plan, coarse to fine: each scale starts from the previous one's result."""
        settings = plan.settings
        schedule = schedule or self.schedule(plan)
        if schedule.tiled:
            return self._run_tiled(plan, schedule, callback, progress)
        sizes, steps = settings.scale_sizes(), settings.scale_steps()
        recorder = _Recorder(sum(steps), plan.snapshot_every, callback, progress)
        tuned = self.device.type == "cpu" and allocator.tune_allocator(self.tune_malloc)
        final_w, final_h = im.longest_side_shape(plan.content.size, sizes[-1])
        x: torch.Tensor | None = None
        scale: _optimize.Scale | None = None
        try:
            for index, (size, n_steps) in enumerate(zip(sizes, steps)):
                # L_content and the TV loss are sums over positions (they grow with the pixel count) while each
                # E_l is normalised by M_l² (it does not), so at a coarse scale the same α/β would favour style
                # by the ratio of pixel counts. Each coarse scale weighs them as the final size does, so it
                # optimises the same balance and hands the next scale a start near that balance's optimum.
                scale = self._scale(plan, index, size, n_steps, final_w * final_h)
                x = self._start(plan, x, scale)
                report = recorder.reporter(scale, settings)
                _optimize.optimize_scale(self.model, x, settings, scale, plan.blend, plan.precision, report)
        except _optimize.Stop:
            recorder.stopped = True
        finally:
            recorder.close()
            if tuned:
                allocator.release_memory()
        if x is None or scale is None or not recorder.history:
            raise GatysError("the run stopped before its first step; nothing to return")
        return recorder.finish(
            _optimize.pixels(x, scale.content, settings), settings, self.weights_name, str(self.device)
        )

    def _run_tiled(
        self, plan: Plan, schedule: tiling.Schedule, callback: Callback | None, progress: bool
    ) -> StylizeOutput:
        """A run over its memory budget: :func:`gatys.tiling.run_stylize`, with the progress counting tiles x steps."""
        recorder = _Recorder(schedule.total_steps, plan.snapshot_every, callback, progress)
        tuned = self.device.type == "cpu" and allocator.tune_allocator(self.tune_malloc)
        try:
            out = tiling.run_stylize(self, plan, schedule, recorder)
        finally:
            recorder.close()
            if tuned:
                allocator.release_memory()
        if not recorder.history:
            raise GatysError("the run stopped before its first step; nothing to return")
        return out

    def _prepare(self, img: Image.Image, size: int, name: str) -> torch.Tensor:
        t = im.to_tensor(im.resize_longest(img, size, name))
        return t.to(self.device)

    def _scale(self, plan: Plan, index: int, size: int, steps: int, final_pixels: int) -> _optimize.Scale:
        """The images of one scale on the device: content at ``size``, styles at ``size * style_scale``."""
        content = self._prepare(plan.content, size, "content image")
        style_size = max(im.MIN_SIDE, round(size * plan.settings.style_scale))
        styles = [self._prepare(s, style_size, "style image") for s in plan.styles]
        net_content = content
        if plan.settings.preserve_colors:
            net_content = im.luminance(content)
            styles = [im.match_luminance(im.luminance(s), net_content) for s in styles]
        _, _, h, w = content.shape
        return _optimize.Scale(index, steps, content, net_content, styles, final_pixels / (h * w))

    def _start(self, plan: Plan, previous: torch.Tensor | None, scale: _optimize.Scale) -> torch.Tensor:
        """The leaf tensor a scale optimises: the run's initial image, or the previous scale's result upsampled."""
        if previous is None:
            style = scale.styles[0] if scale.styles else None
            x = _optimize.initial_image(plan.settings, scale.net_content, style, plan.init_image, plan.seed)
        else:
            w, h = scale.size
            x = F.interpolate(previous, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        return x.detach().contiguous().requires_grad_(True)

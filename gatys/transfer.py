"""StyleTransfer: the paper's algorithm, with the options users of the best tools expect.

Data flows one way: images -> :mod:`gatys.image` -> targets computed once per scale -> the optimiser loop
-> :class:`StylizeOutput`. The library never prints; it reports through a typed callback and an optional
tqdm bar.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from . import allocator
from . import image as im
from .errors import ConfigError, GatysError
from .losses import content_loss, gram_matrix, style_layer_loss, tv_loss
from .presets import PAPER_STYLE_LAYERS, Preset, get_preset
from .vgg import VGGFeatures
from .weights import pick_device


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

    @property
    def images(self) -> list[Image.Image]:
        return [s.image for s in self.snapshots]

    @property
    def final_losses(self) -> dict[str, float]:
        last = self.losses[-1]
        return {"loss": last.loss, "content": last.content_loss, "style": last.style_loss, "tv": last.tv_loss}


Callback = Callable[[StepInfo], Any]

#: Standard deviation of the white-noise init (image in [0, 1]); see StyleTransfer._init.
NOISE_STD = 1e-3


def lbfgs(params: list[torch.Tensor], steps: int, history_size: int = 20) -> torch.optim.LBFGS:
    """The L-BFGS that ``stylize`` runs for ``steps`` function evaluations (one step = one forward + backward).

    A strong-Wolfe line search, as in scipy's L-BFGS-B that Gatys et al.'s code used: without one, the second
    step overshot by 1e6x on Tübingen x Starry Night and L-BFGS crawled afterwards (measured). history_size 20:
    L-BFGS-B keeps 10 pairs; 100 would hold 2.5 GB at 1024 px (and converged no faster at 512 px, measured in
    benchmarks/README.md). No tolerances: the caller stops at its step budget.
    """
    return torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=steps,
        max_eval=steps + 25,
        history_size=history_size,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )


class _Stop(Exception):
    """The callback asked to stop."""


class _ScaleDone(Exception):
    """The step budget of one scale is spent (raised from inside the optimiser's closure)."""


@dataclasses.dataclass
class _Targets:
    """Everything one scale's loss needs, computed once."""

    content: dict[str, torch.Tensor]  # layer -> P^l
    content_weights: dict[str, float]
    grams: dict[str, torch.Tensor]  # layer -> A^l, rescaled to the generated image's M_l
    style_weights: dict[str, float]  # layer -> w_l
    alpha: float  # weight of the content loss (β = 1)
    tv_weight: float
    pooling: str

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content, *self.grams]))


class StyleTransfer:
    """Neural style transfer after Gatys, Ecker & Bethge (2015).

    Example:
        >>> from gatys import StyleTransfer
        >>> st = StyleTransfer.from_pretrained()  # offline default, or a folder / Hub repo id
        >>> out = st.stylize("tubingen.jpg", "starry_night.jpg", size=256)
        >>> out.image.save("out.png")
    """

    def __init__(self, model: VGGFeatures, *, device: str | torch.device | None = None, weights_name: str = ""):
        self.device = pick_device(device)
        self.model = model.to(self.device)
        # channels_last lets oneDNN/cuDNN pick their fastest kernels for 3x3 convolutions.
        self.model.to(memory_format=torch.channels_last)
        self.weights_name = weights_name or getattr(model, "source", "") or "random weights"

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
    ) -> StyleTransfer:
        """Load VGG weights (safetensors) from a folder or Hugging Face Hub repo.

        Args:
            repo_id_or_path: a local folder or a Hub repo id; None uses :func:`gatys.weights.default_weights`.
            revision, cache_dir, local_files_only, token: passed to ``huggingface_hub`` for Hub repos.
            device: force a device; by default ``accelerate`` picks (GPU when present, else CPU).

        Example:
            >>> st = StyleTransfer.from_pretrained("timm/vgg19.tv_in1k")
        """
        from .weights import load_vgg

        model = load_vgg(
            repo_id_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        return cls(model, device=device, weights_name=model.config.display_name)

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

        Returns:
            A :class:`StylizeOutput` with ``image``, ``snapshots`` and ``losses``.
        """
        opts, content_img, style_imgs, blend, init_img = self.check_inputs(
            content,
            style,
            preset=preset,
            style_weights=style_weights,
            init_image=init_image,
            snapshot_every=snapshot_every,
            precision=precision,
            **overrides,
        )
        return self._run(
            opts,
            content_img,
            style_imgs,
            blend,
            init_img,
            seed,
            callback,
            snapshot_every,
            progress,
            precision,
            mode="stylize",
        )

    def check_inputs(
        self,
        content: im.ImageInput,
        style: im.ImageInput | Sequence[im.ImageInput],
        *,
        preset: str | Preset = "paper",
        style_weights: Sequence[float] | None = None,
        init_image: im.ImageInput | None = None,
        snapshot_every: int = 0,
        precision: str = "fp32",
        **overrides: Any,
    ) -> tuple[Preset, Image.Image, list[Image.Image], list[float], Image.Image | None]:
        """Validate every argument of :meth:`stylize` and read the images, before any compute.

        Returns:
            (settings, content image, style images, normalised blend weights, init image or None).
        """
        opts = get_preset(preset).with_overrides(**overrides)
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise ConfigError("give at least one style image")
        blend = self._check_blend(style_weights, len(styles))
        self._check_common(opts, snapshot_every, precision)
        content_img = im.load_image(content, max_side=opts.size * 2, name="content image")
        im.check_size(content_img, "content image")
        style_imgs = []
        for i, s in enumerate(styles):
            name = f"style image {i + 1}" if len(styles) > 1 else "style image"
            style_imgs.append(im.load_image(s, max_side=round(opts.size * opts.style_scale * 2), name=name))
            im.check_size(style_imgs[-1], name)
        init_img = None
        if init_image is not None:
            init_img = im.load_image(init_image, name="init image")
        for size in opts.scale_sizes():
            im.resize_longest(content_img, size, f"content image at {size} px")
            for img in style_imgs:
                im.resize_longest(img, max(im.MIN_SIDE, round(size * opts.style_scale)), f"style image at {size} px")
        return opts, content_img, style_imgs, blend, init_img

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

        The default optimiser here is Adam (plain gradient steps, as the paper's Fig. 1 text says: "we perform
        gradient descent on a white noise image"), not L-BFGS. L-BFGS scales each direction by its inverse
        curvature, so it takes its largest steps along the pixel patterns a deep layer barely sees: from conv3_1
        on, its reconstructions fill with colour speckle and their PSNR *falls* as the loss falls (measured with
        the HED VGG-16 at 128 px, conv3_1: 13.8 dB after 20 steps, 12.5 dB after 500). Adam reconstructions fall
        in PSNR with depth as the paper describes (37.9, 26.3, 13.6, 12.0, 11.5 dB for conv1_1..conv5_1).
        """
        opts = get_preset("paper").with_overrides(
            name=f"content-{layer}",
            content_layers=(layer,),
            size=size,
            steps=steps,
            optimizer=optimizer,
            init="noise",
            learning_rate=learning_rate,
        )
        self._check_common(opts, snapshot_every, "fp32")
        img = im.load_image(image, max_side=size * 2, name="image")
        return self._run(opts, img, [], [], None, seed, callback, snapshot_every, progress, "fp32", mode="content")

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
        """Fig. 1, style reconstructions: from white noise, minimise the style loss on ``layers`` only."""
        opts = get_preset("paper").with_overrides(
            name=f"style-{layers[-1] if layers else ''}",
            style_layers=tuple(layers),
            size=size,
            steps=steps,
            optimizer=optimizer,
            init="noise",
        )
        self._check_common(opts, snapshot_every, "fp32")
        img = im.load_image(image, max_side=size * 2, name="image")
        w, h = im.resize_longest(img, size, "image").size
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        # Full-range uniform white noise here: with no content term, the low-amplitude noise of stylize() is
        # nearly uniform, its style gradient nearly uniform too, and L-BFGS crawls (measured); a texture
        # keeps no grain the Gram matrices do not ask for.
        noise = im.to_pil(torch.rand((1, 3, h, w), generator=gen))
        return self._run(opts, img, [img], [1.0], noise, seed, callback, snapshot_every, progress, "fp32", mode="style")

    # -- validation ----------------------------------------------------------------------------------------

    def _check_common(self, opts: Preset, snapshot_every: int, precision: str) -> None:
        self.model.check_layers(opts.content_layers)
        self.model.check_layers(opts.style_layers)
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
            raise ConfigError(f"snapshot_every must be an integer >= 0, got {snapshot_every!r}")
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")

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

    def _prepare(self, img: Image.Image, size: int, name: str) -> torch.Tensor:
        t = im.to_tensor(im.resize_longest(img, size, name))
        return t.to(self.device)

    @torch.no_grad()
    def _targets(
        self,
        opts: Preset,
        content: torch.Tensor,
        styles: list[torch.Tensor],
        blend: list[float],
        mode: str,
        content_scale: float = 1.0,
    ) -> _Targets:
        use_content = mode in ("stylize", "content")
        use_style = mode in ("stylize", "style")
        c_layers = list(opts.content_layers) if use_content else []
        s_weights = opts.layer_weights if use_style else {}
        content_feats = self.model(content, [*c_layers, *s_weights], opts.pooling)
        targets = {name: content_feats[name].detach().clone() for name in c_layers}
        grams: dict[str, torch.Tensor] = {}
        for style_t, b in zip(styles, blend):
            if b == 0:
                continue
            feats = self.model(style_t, list(s_weights), opts.pooling)
            for name in s_weights:
                f = feats[name]
                m_style = f.shape[2] * f.shape[3]
                m_out = content_feats[name].shape[2] * content_feats[name].shape[3]
                # A^l scaled to the generated image's M_l, so style and output may differ in size (the paper
                # uses same-size images, where this factor is 1).
                g = gram_matrix(f) * (b * m_out / m_style)
                grams[name] = g if name not in grams else grams[name] + g
        # content_scale: see _run (coarse scales of a multi-scale run weigh the pixel sums as at the final size).
        alpha = opts.alpha_beta * self.model.config.alpha_beta_scale * content_scale if use_style else 1.0
        content_weights = {name: 1.0 / len(c_layers) for name in c_layers}
        return _Targets(
            targets,
            content_weights,
            grams,
            {n: w for n, w in s_weights.items()},
            alpha,
            opts.tv_weight * content_scale if use_style else 0.0,
            opts.pooling,
        )

    def _losses(self, x: torch.Tensor, t: _Targets, autocast: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The total loss (for backward) and its parts, stacked so that reading them is one device sync.

        Each layer's loss term is built as soon as the network produces that layer: its backward then runs
        when the network's backward reaches the layer, so the style gradients (a feature map each) are not all
        held through the whole backward pass (about 0.4 GB less peak memory at 1024 px).
        """
        sums = {"content": x.new_zeros(()), "style": x.new_zeros(())}

        def add_terms(name: str, f: torch.Tensor) -> None:
            with torch.autocast(x.device.type, enabled=False):  # only the network runs in bf16
                if name in t.content:
                    sums["content"] = sums["content"] + t.content_weights[name] * content_loss(f, t.content[name])
                if name in t.style_weights:
                    sums["style"] = sums["style"] + t.style_weights[name] * style_layer_loss(f, t.grams[name])

        with autocast():
            self.model(x, t.layers, t.pooling, on_feature=add_terms)
        lc, ls = sums["content"], sums["style"]
        loss = t.alpha * lc + ls
        ltv = x.new_zeros(())
        if t.tv_weight > 0:
            ltv = tv_loss(x)
            loss = loss + t.tv_weight * ltv
        with torch.no_grad():
            parts = torch.stack([loss, lc, ls, ltv])
        return loss, parts

    def _init(
        self,
        opts: Preset,
        content: torch.Tensor,
        style: torch.Tensor | None,
        init_img: Image.Image | None,
        seed: int | None,
    ) -> torch.Tensor:
        _, _, h, w = content.shape
        if init_img is not None:
            x = im.to_tensor(init_img.resize((w, h), Image.Resampling.LANCZOS)).to(self.device)
        elif opts.init == "content":
            x = content.clone()
        elif opts.init == "style" and style is not None:
            x = F.interpolate(style, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        else:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            x = (0.5 + NOISE_STD * torch.randn((1, 3, h, w), generator=gen)).to(self.device)
        if opts.preserve_colors:
            x = im.luminance(x)
        return x

    def _run(
        self,
        opts: Preset,
        content_img: Image.Image,
        style_imgs: list[Image.Image],
        blend: list[float],
        init_img: Image.Image | None,
        seed: int | None,
        callback: Callback | None,
        snapshot_every: int,
        progress: bool,
        precision: str,
        mode: str,
    ) -> StylizeOutput:
        sizes, steps = opts.scale_sizes(), opts.scale_steps()
        total = sum(steps)
        history: list[StepInfo] = []
        snapshots: list[Snapshot] = []
        start = time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="gatys", unit="step", dynamic_ncols=True)
        autocast = (
            (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16))
            if precision == "bf16"
            else contextlib.nullcontext
        )
        on_cpu = self.device.type == "cpu"
        if on_cpu:
            # Reuse freed activations between steps instead of re-mapping them (see gatys.allocator).
            allocator.tune_allocator()
        x: torch.Tensor | None = None
        content = None
        stopped = False
        step = 0
        fw, fh = im.longest_side_shape(content_img.size, sizes[-1])
        final_pixels = fw * fh
        try:
            for scale, (size, n_steps) in enumerate(zip(sizes, steps)):
                content = self._prepare(content_img, size, "content image")
                _, _, h, w = content.shape
                style_size = max(im.MIN_SIDE, round(size * opts.style_scale))
                styles = [self._prepare(s, style_size, "style image") for s in style_imgs]
                if opts.preserve_colors:
                    gray = im.luminance(content)
                    styles = [im.match_luminance(im.luminance(s), gray) for s in styles]
                    content_for_net = gray
                else:
                    content_for_net = content
                # L_content and the TV loss are sums over positions (they grow with the pixel count) while each
                # E_l is normalised by M_l² (it does not), so at a coarse scale the same α/β would favour style
                # by the ratio of pixel counts. Each coarse scale weighs them as the final size does, so it
                # optimises the same balance and hands the next scale a start near that balance's optimum.
                content_scale = final_pixels / (h * w)
                targets = self._targets(opts, content_for_net, styles, blend, mode, content_scale)
                if x is None:
                    x = self._init(opts, content_for_net, styles[0] if styles else None, init_img, seed)
                else:
                    # Coarse to fine: the next scale starts from the upsampled previous result.
                    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
                x = x.detach().contiguous().requires_grad_(True)
                record: dict[str, float] = {}
                scale_end = step + n_steps
                best = {"loss": math.inf, "x": x.detach().clone()}

                def report() -> None:
                    """Bookkeeping after every function evaluation (= one step): history, bar, snapshot, callback."""
                    nonlocal step
                    step += 1
                    if not math.isfinite(record["loss"]):
                        raise GatysError(
                            "the loss became NaN or infinite; lower the learning rate or use --optimizer lbfgs"
                        )
                    if record["loss"] < best["loss"]:
                        best["loss"] = record["loss"]
                        best["x"].copy_(x.detach())
                    info = StepInfo(
                        step,
                        total,
                        record["loss"],
                        record["content"],
                        record["style"],
                        record["tv"],
                        scale,
                        (w, h),
                        time.perf_counter() - start,
                    )
                    history.append(info)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{info.loss:.3g}", size=f"{w}x{h}")
                    want_snapshot = snapshot_every and (step % snapshot_every == 0 or step == total)
                    if callback is not None or want_snapshot:
                        pixels = self._output(x, content, opts)
                        if want_snapshot:
                            snapshots.append(Snapshot(step, info.loss, im.to_pil(pixels)))
                        if callback is not None and callback(dataclasses.replace(info, pixels=pixels)) is False:
                            raise _Stop
                    if step >= scale_end:
                        raise _ScaleDone

                def closure() -> torch.Tensor:
                    opt.zero_grad(set_to_none=False)
                    loss, parts = self._losses(x, targets, autocast)
                    loss.backward()
                    record.update(zip(("loss", "content", "style", "tv"), parts.tolist()))
                    report()
                    return loss

                if opts.optimizer == "lbfgs":
                    opt: torch.optim.Optimizer = lbfgs([x], n_steps)
                    try:
                        while True:  # LBFGS.step returns early when it deems itself converged; go on to the budget
                            opt.step(closure)
                    except _ScaleDone:
                        pass
                    with torch.no_grad():
                        x.copy_(best["x"])  # the budget may end inside a line search, on a trial point
                else:
                    opt = torch.optim.Adam([x], lr=opts.learning_rate)
                    try:
                        while True:
                            closure()
                            opt.step()
                            with torch.no_grad():
                                x.clamp_(0, 1)  # Adam works in the box [0, 1], as in crowsonkb/style-transfer-pytorch
                    except _ScaleDone:
                        pass
        except _Stop:
            stopped = True
        finally:
            if bar is not None:
                bar.close()
            if on_cpu:
                allocator.release_memory()
        if x is None or content is None or not history:
            raise GatysError("the run stopped before its first step; nothing to return")
        final = im.to_pil(self._output(x, content, opts))
        if snapshots and snapshots[-1].step == step:
            snapshots[-1] = Snapshot(step, snapshots[-1].loss, final)  # the kept best, not a line-search trial
        else:
            snapshots.append(Snapshot(step, history[-1].loss, final))
        return StylizeOutput(
            image=final,
            snapshots=snapshots,
            losses=history,
            settings=opts,
            weights=self.weights_name,
            device=str(self.device),
            seconds=time.perf_counter() - start,
            stopped=stopped,
        )

    @torch.no_grad()
    def _output(self, x: torch.Tensor, content: torch.Tensor, opts: Preset) -> torch.Tensor:
        out = x.detach().clamp(0, 1)
        if opts.preserve_colors:
            out = im.with_chroma_of(out, content)
        return out.contiguous().cpu()

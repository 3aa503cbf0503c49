"""One scale of the optimisation: targets, the objective, the start image, and the L-BFGS and Adam step loops.

Private: :class:`gatys.StyleTransfer` runs these scale by scale (coarse to fine) and does the reporting. One
*step* is one evaluation of the objective (a forward and a backward pass), whichever optimiser asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from . import image as im
from .errors import GatysError
from .losses import content_loss, gram_matrix, style_layer_loss, total_loss, tv_loss
from .presets import Preset
from .vgg import VGGFeatures

#: Standard deviation of the white-noise init around mid-grey (image in [0, 1]); see :func:`initial_image`.
NOISE_STD = 1e-3

#: Exponent of the Fourier parameterisation's 1/f scaling (settings.parameterization == "fourier"); measured in
#: benchmarks/README.md ("Picture quality").
FOURIER_DECAY = 1.0

#: Called after every step with the image being optimised and [loss, content, style, tv].
Report = Callable[[torch.Tensor, list[float]], None]


class Stop(Exception):
    """The caller asked to stop (raised by a :data:`Report`)."""


class ScaleDone(Exception):
    """The step budget of one scale is spent (raised from inside the optimiser's closure)."""


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


@dataclasses.dataclass(frozen=True)
class Scale:
    """One scale of a run: its images on the device, its step budget and its content multiplier."""

    index: int  # 0-based, coarse to fine
    steps: int
    content: torch.Tensor  # the content image in RGB
    net_content: torch.Tensor  # the content as the network sees it (its luminance when colours are preserved)
    styles: list[torch.Tensor]  # as the network sees them
    content_scale: float  # multiplies α and the TV weight: see StyleTransfer._run

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.content.shape[3], self.content.shape[2]


@dataclasses.dataclass
class Targets:
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


@torch.no_grad()
def build_targets(
    model: VGGFeatures,
    settings: Preset,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    content_scale: float = 1.0,
) -> Targets:
    """P^l of the content image and the blended A^l of the style images, at the content's size.

    The style term needs style images: without any (a content reconstruction) the loss is L_content alone, with
    α = 1 and no TV term (its weight is relative to the style loss). ``content_scale`` multiplies α and the TV
    weight: see :meth:`gatys.StyleTransfer._run` (coarse scales weigh the pixel sums as the final size does).
    """
    c_layers = list(settings.content_layers)
    s_weights = settings.layer_weights if styles else {}
    content_feats = model(content, [*c_layers, *s_weights], settings.pooling)
    grams: dict[str, torch.Tensor] = {}
    for style, b in zip(styles, blend):
        if b == 0:
            continue
        feats = model(style, list(s_weights), settings.pooling)
        for name in s_weights:
            f = feats[name]
            m_style = f.shape[2] * f.shape[3]
            m_out = content_feats[name].shape[2] * content_feats[name].shape[3]
            # A^l scaled to the generated image's M_l, so style and output may differ in size (the paper
            # uses same-size images, where this factor is 1).
            g = gram_matrix(f) * (b * m_out / m_style)
            grams[name] = g if name not in grams else grams[name] + g
    alpha = settings.alpha_beta * model.config.alpha_beta_scale * content_scale if styles else 1.0
    return Targets(
        content={name: content_feats[name].detach().clone() for name in c_layers},
        content_weights={name: 1.0 / len(c_layers) for name in c_layers},
        grams=grams,
        style_weights=dict(s_weights),
        alpha=alpha,
        tv_weight=settings.tv_weight * content_scale if styles else 0.0,
        pooling=settings.pooling,
    )


def style_gradient_norms(
    model: VGGFeatures, x: torch.Tensor, grams: Mapping[str, torch.Tensor], pooling: str | None = None
) -> dict[str, float]:
    """‖∂E_l/∂x‖ at the image ``x`` for every style layer l in ``grams`` (layer -> target A^l), unweighted."""
    norms = {}
    for name, gram in grams.items():
        xs = x.detach().clone().requires_grad_(True)
        f = model(xs, [name], pooling)[name]
        (g,) = torch.autograd.grad(style_layer_loss(f, gram), xs)
        norms[name] = float(g.norm())
    return norms


def balance_style_weights(model: VGGFeatures, x: torch.Tensor, t: Targets) -> dict[str, float]:
    """Layer weights w'_l that give each style layer its share w_l / Σw of the style gradient at ``x``.

    w'_l = (w_l / Σw) · T / ‖∇E_l‖ with T = Σ_l w_l ‖∇E_l‖: the sum of the layers' gradient norms stays what the
    plain weights give (so α/β keeps its balance with the content), only its split between layers changes.
    With the offline VGG-16 (HED), plain w_l = 1/5 leave ~96 % of that sum to conv1_1 and conv2_1 (measured,
    benchmarks/README.md), and the layers that carry large structures barely act.
    """
    norms = style_gradient_norms(model, x, {n: t.grams[n] for n in t.style_weights}, t.pooling)
    total = sum(w * norms[n] for n, w in t.style_weights.items())
    wsum = sum(t.style_weights.values())
    return {n: (w / wsum) * total / max(norms[n], 1e-30) for n, w in t.style_weights.items()}


def objective(
    model: VGGFeatures, x: torch.Tensor, t: Targets, precision: str = "fp32"
) -> tuple[torch.Tensor, torch.Tensor]:
    """L_total = α L_content + L_style (+ tv) for backward, and its parts stacked so that reading them is one sync.

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

    autocast: Any = torch.autocast(x.device.type, dtype=torch.bfloat16) if precision == "bf16" else None
    with autocast or contextlib.nullcontext():
        model(x, t.layers, t.pooling, on_feature=add_terms)
    lc, ls = sums["content"], sums["style"]
    loss = total_loss(lc, ls, alpha=t.alpha, beta=1.0)
    ltv = x.new_zeros(())
    if t.tv_weight > 0:
        ltv = tv_loss(x)
        loss = loss + t.tv_weight * ltv
    with torch.no_grad():
        parts = torch.stack([loss, lc, ls, ltv])
    return loss, parts


def initial_image(
    settings: Preset,
    content: torch.Tensor,
    style: torch.Tensor | None,
    init_image: Image.Image | None,
    seed: int | None,
) -> torch.Tensor:
    """Where the first scale starts: the init image, the content, the style, or white noise (the paper)."""
    _, _, h, w = content.shape
    if init_image is not None:
        x = im.to_tensor(init_image.resize((w, h), Image.Resampling.LANCZOS)).to(content.device)
    elif settings.init == "content":
        x = content.clone()
    elif settings.init == "style" and style is not None:
        x = F.interpolate(style, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    else:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        x = (0.5 + NOISE_STD * torch.randn((1, 3, h, w), generator=gen)).to(content.device)
    if settings.preserve_colors:
        x = im.luminance(x)
    return x


@torch.no_grad()
def pixels(x: torch.Tensor, content: torch.Tensor, settings: Preset) -> torch.Tensor:
    """The image being optimised as an RGB picture in [0, 1] on the CPU (the content's colours if preserved)."""
    out = x.detach().clamp(0, 1)
    if settings.preserve_colors:
        out = im.with_chroma_of(out, content)
    return out.contiguous().cpu()


class FourierImage:
    """The image as its Fourier coefficients, each scaled by 1/f^decay (Olah, Mordvintsev & Schubert 2017).

    Departure from the paper, which optimises pixels: a gradient step on these coefficients moves an image
    frequency f by 1/f^(2·decay) as much as a pixel step would, so the optimiser builds the picture coarse
    structure first and cannot buy the style's Gram statistics with a period-2/4 stipple cheaper than with
    strokes. With the HED VGG-16 that stipple (a lattice over every flat region, strongest in the sky) and
    the dotted border strip were what set gatys's renders apart from the classic ones (benchmarks/README.md).
    """

    def __init__(self, x: torch.Tensor, decay: float = FOURIER_DECAY):
        h, w = x.shape[-2:]
        fy = torch.fft.fftfreq(h, device=x.device)[:, None]
        fx = torch.fft.rfftfreq(w, device=x.device)[None, :]
        f = torch.sqrt(fx * fx + fy * fy).clamp(min=1.0 / max(h, w))  # the DC term as the lowest frequency
        self.scale = f.pow(-decay) / f.pow(-decay).max()  # 1 at the lowest frequencies, smaller above
        self.shape = (h, w)
        with torch.no_grad():
            z = torch.fft.rfft2(x.detach().float()) / self.scale
        self.z = torch.view_as_real(z).contiguous().requires_grad_(True)

    @property
    def leaves(self) -> list[torch.Tensor]:
        return [self.z]

    def image(self) -> torch.Tensor:
        return torch.fft.irfft2(torch.view_as_complex(self.z) * self.scale, s=self.shape)


class PixelImage:
    """The image as its pixels, the paper's parameterisation: the optimiser moves ``x`` itself."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    @property
    def leaves(self) -> list[torch.Tensor]:
        return [self.x]

    def image(self) -> torch.Tensor:
        return self.x


class Evaluation:
    """The objective as the optimisers call it: loss and gradient, then the bookkeeping of one step."""

    def __init__(
        self,
        model: VGGFeatures,
        image: Callable[[], torch.Tensor],
        targets: Targets,
        precision: str,
        budget: int,
        report: Report,
    ):
        self.model, self.image, self.targets, self.precision = model, image, targets, precision
        self.budget, self.report, self.count = budget, report, 0
        self.best_loss, self.best_x = math.inf, image().detach().clone()

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """The objective at ``x`` and the values reported for it (total, content, style, tv); subclasses add
        terms here (gatys.video's temporal loss)."""
        loss, parts = objective(self.model, x, self.targets, self.precision)
        return loss, parts.tolist()

    def __call__(self) -> torch.Tensor:
        x = self.image()
        loss, values = self.loss(x)
        loss.backward()
        if not math.isfinite(values[0]):
            raise GatysError("the loss became NaN or infinite; lower the learning rate or use the lbfgs optimizer")
        if values[0] < self.best_loss:
            self.best_loss = values[0]
            self.best_x.copy_(x.detach())
        self.report(x.detach(), values)
        self.count += 1
        if self.count >= self.budget:
            raise ScaleDone
        return loss


def run_lbfgs(params: list[torch.Tensor], f: Evaluation, steps: int) -> None:
    """L-BFGS on ``params`` until ``f``'s budget is spent."""
    opt = lbfgs(params, steps)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        return f()

    try:
        while True:  # LBFGS.step returns early when it deems itself converged; go on to the budget
            opt.step(closure)
    except ScaleDone:
        pass


def run_adam(params: list[torch.Tensor], f: Evaluation, learning_rate: float, box: bool) -> None:
    """Adam on ``params`` until ``f``'s budget is spent; ``box``: keep them in [0, 1] (pixels)."""
    opt = torch.optim.Adam(params, lr=learning_rate)
    try:
        while True:
            opt.zero_grad(set_to_none=False)
            f()
            opt.step()
            if box:
                with torch.no_grad():
                    for p in params:
                        p.clamp_(0, 1)  # Adam works in the box [0, 1], as in crowsonkb/style-transfer-pytorch
    except ScaleDone:
        pass


def optimize_scale(
    model: VGGFeatures,
    x: torch.Tensor,
    settings: Preset,
    scale: Scale,
    blend: Sequence[float],
    precision: str,
    report: Report,
) -> None:
    """One scale: its targets, then ``scale.steps`` steps of the chosen optimiser on ``x`` (a leaf, in place).

    After L-BFGS ``x`` is the best image evaluated (the budget may end inside a line search, on a trial
    point); after Adam, its last iterate.
    """
    targets = build_targets(model, settings, scale.net_content, scale.styles, blend, scale.content_scale)
    if settings.style_balance == "gradient" and targets.grams:
        targets.style_weights = balance_style_weights(model, x, targets)
    optimize_targets(model, x, settings, targets, scale.steps, precision, report)


def optimize_targets(
    model: VGGFeatures, x: torch.Tensor, settings: Preset, targets: Targets, steps: int, precision: str, report: Report
) -> None:
    """``steps`` steps of the chosen optimiser on ``x`` (a leaf, in place) against ready ``targets``.

    What :func:`optimize_scale` runs once its targets are built; :mod:`gatys.tiling` runs it per tile.
    """
    param = FourierImage(x) if settings.parameterization == "fourier" else PixelImage(x)
    f = Evaluation(model, param.image, targets, precision, steps, report)
    if settings.optimizer == "lbfgs":
        run_lbfgs(param.leaves, f, steps)
        final = f.best_x
    else:
        run_adam(param.leaves, f, settings.learning_rate, box=isinstance(param, PixelImage))
        final = param.image().detach()
    with torch.no_grad():
        x.copy_(final)

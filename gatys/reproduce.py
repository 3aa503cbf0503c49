"""Reproduce Figures 1-3 of Gatys, Ecker & Bethge (2015) and measure what the paper claims about them.

    python -m gatys.reproduce {fig1,fig2,fig3,all} --out DIR [--size N] [--steps N] [--weights W] [--images DIR]

- Fig. 1: content reconstructions from conv1_1 … conv5_1 of the Tübingen photo, and style reconstructions
  from the growing layer sets {conv1_1}, …, {conv1_1 … conv5_1} of The Starry Night and of the photo, all
  from white noise. Measured: PSNR and SSIM of each content reconstruction against the photo; the style loss
  E_l of each style reconstruction at every layer conv1_1 … conv5_1.
- Fig. 2: the photo in the style of each painting available, with the paper's α/β (1e-3 for B-D, 1e-4 for
  E-F). Measured: content and style loss of each panel.
- Fig. 3: the 5 x 4 grid, style layer sets A-E x α/β 1e-5 … 1e-2, for one painting. Measured: the content
  loss (conv4_2) and style loss (conv1_1 … conv5_1, w_l = 1/5) of every cell, re-evaluated with the same
  fixed weights so cells compare, and whether the trade-off is monotone in α/β along each row.

Every run writes PNGs, one labelled contact sheet per figure, ``report.md`` and ``report.json`` (the same
numbers, for tests and tools). Before computing, a few calibration steps give a time estimate; progress
is shown per run. Seeds are fixed, so a rerun on the same machine gives the same pictures.

This is a command, like :mod:`gatys.cli`: it prints. The library it drives does not.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import shlex
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from . import image as im
from .errors import GatysError
from .losses import content_loss, gram_matrix, style_layer_loss
from .presets import FIG3_LAYER_SETS, FIG3_RATIOS, PAPER_CONTENT_LAYER, PAPER_STYLE_LAYERS, PRESETS, fig3_preset_name

FIGURES = ("fig1", "fig2", "fig3")
#: Sized so that ``all`` finishes in well under an hour on a 2-core CPU; ``--size 512`` for the paper's look.
DEFAULT_SIZE = {"fig1": 128, "fig2": 256, "fig3": 128}
DEFAULT_STEPS = {"fig1": 300, "fig2": 300, "fig3": 300}
DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"

PHOTO = "tubingen.jpg"
FIG1_STYLE_IMAGES = ("starry_night.jpg", PHOTO)  # the paper's Fig. 1 shows the painting; the photo for contrast
FIG3_DEFAULT_STYLE = "starry_night.jpg"
#: Fig. 1 a-e: the layers of the content reconstructions, and the last layer of each style layer set.
FIG1_LAYERS = PAPER_STYLE_LAYERS
#: "near-perfect" for a content reconstruction (8-bit RGB): both thresholds must hold. With the HED VGG-16 the
#: conv2_1 reconstruction by Adam (the library's default for content) levels off at 27-28 dB, SSIM 0.94 (measured:
#: 27.2 dB after 300 steps, 28.0 after 1000), indistinguishable from the photo on the contact sheet.
NEAR_PERFECT_PSNR = 25.0
NEAR_PERFECT_SSIM = 0.9


@dataclasses.dataclass(frozen=True)
class Painting:
    """A panel of Fig. 2: which painting, where the paper puts it, and the α/β its caption gives."""

    panel: str
    title: str
    artist: str
    files: tuple[str, ...]  # file names looked for in the images folder, first found wins
    preset: str
    in_paper: bool = True


# Fig. 2 caption: B-D use α/β = 1e-3, E-F α/β = 1e-4.
FIG2_PAINTINGS = (
    Painting("B", "The Shipwreck of the Minotaur", "J. M. W. Turner, 1805", ("shipwreck.jpg",), "paper"),
    Painting("C", "The Starry Night", "Vincent van Gogh, 1889", ("starry_night.jpg",), "paper"),
    Painting("D", "Der Schrei", "Edvard Munch, 1893", ("the_scream.jpg", "scream.jpg", "der_schrei.jpg"), "paper"),
    Painting("E", "Femme nue assise", "Pablo Picasso, 1910", ("seated-nude.jpg", "femme_nue_assise.jpg"), "paper-1e-4"),
    Painting(
        "F",
        "Composition VII",
        "Wassily Kandinsky, 1913",
        ("composition_vii.jpg", "composition-vii.jpg", "kandinsky.jpg"),
        "paper-1e-4",
    ),
    # Not in the paper; rendered with the B-D setting because it is there.
    Painting("+", "Self-portrait", "Pablo Picasso, 1907", ("picasso_selfport1907.jpg",), "paper", in_paper=False),
)

ImageLike = Union[Image.Image, np.ndarray]


# -- measures ------------------------------------------------------------------------------------------------


def _rgb_array(img: ImageLike) -> np.ndarray:
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.float64)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")


def psnr(a: ImageLike, b: ImageLike, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over the RGB channels (``inf`` for identical images)."""
    x, y = _rgb_array(a), _rgb_array(b)
    _same_shape(x, y)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def luma(img: ImageLike) -> np.ndarray:
    """Luma Y' = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as MATLAB's rgb2gray), float64 (H, W)."""
    return _rgb_array(img) @ np.array([0.299, 0.587, 0.114])


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The normalised 2-D Gaussian window of SSIM (Wang et al. 2004: 11 x 11, σ = 1.5)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    *,
    data_range: float = 255.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """The SSIM index map of two grey images (H, W), over every full window position ('valid', no padding)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _same_shape(x, y)
    if x.ndim != 2 or min(x.shape) < window:
        raise ValueError(f"SSIM needs grey images of at least {window}x{window} px, got shape {x.shape}")
    kernel = torch.from_numpy(gaussian_window(window, sigma))[None, None]

    def filt(a: np.ndarray) -> torch.Tensor:
        return F.conv2d(torch.from_numpy(a)[None, None], kernel)[0, 0]

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).numpy()


def ssim(a: ImageLike, b: ImageLike, *, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) of the luma of two RGB images.

    The standard setting: 11 x 11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over
    the valid window positions as in the authors' ``ssim_index.m`` (without its optional downsampling).
    """
    return float(ssim_map(luma(a), luma(b), data_range=data_range).mean())


@torch.no_grad()
def _features(model: torch.nn.Module, img: Image.Image, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    return model(im.to_tensor(img).to(device), list(layers))


@torch.no_grad()
def style_losses(
    model: torch.nn.Module, image: Image.Image, style: Image.Image, layers: Sequence[str] = PAPER_STYLE_LAYERS
) -> dict[str, float]:
    """E_l (Eq. 4) of ``image`` against ``style`` at each layer, measured the way :meth:`stylize` does.

    The style image is resized to the image's longest side and its Gram matrix scaled by M_image / M_style,
    as the library does when the two differ in shape.
    """
    style = im.resize_longest(style, max(image.size), "style image")
    f = _features(model, image, layers)
    s = _features(model, style, layers)
    out = {}
    for name in layers:
        m_img = f[name].shape[2] * f[name].shape[3]
        m_style = s[name].shape[2] * s[name].shape[3]
        out[name] = float(style_layer_loss(f[name], gram_matrix(s[name]) * (m_img / m_style)))
    return out


def weighted_style_loss(per_layer: Mapping[str, float], layers: Sequence[str] = PAPER_STYLE_LAYERS) -> float:
    """L_style = Σ w_l E_l (Eq. 5) with w_l = 1/len(layers) over ``layers``."""
    return sum(per_layer[name] for name in layers) / len(layers)


@torch.no_grad()
def content_loss_at(
    model: torch.nn.Module, image: Image.Image, photo: Image.Image, layer: str = PAPER_CONTENT_LAYER
) -> float:
    """L_content (Eq. 1) of ``image`` against ``photo`` (resized to the same size) at ``layer``."""
    photo = photo if photo.size == image.size else photo.resize(image.size, Image.Resampling.LANCZOS)
    return float(content_loss(_features(model, image, [layer])[layer], _features(model, photo, [layer])[layer]))


def is_monotone(values: Sequence[float], *, increasing: bool) -> bool:
    """Strictly increasing (or decreasing) along the sequence."""
    return all((b > a) if increasing else (b < a) for a, b in zip(values, values[1:]))


# -- contact sheets ------------------------------------------------------------------------------------------

#: A cell of a contact sheet: an image, a string (drawn as a grey placeholder box with that text) or None (empty).
Cell = Union[Image.Image, str, None]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


# Pillow's default font (Aileron) covers ASCII only; everything else would print as boxes.
_ASCII = str.maketrans({"α": "alpha", "β": "beta", "×": "x", "–": "-", "—": "-", "σ": "sigma", "…": "..."})


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return text.encode("ascii", "ignore").decode("ascii")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` px: at spaces, and inside words too long for a line."""
    lines: list[str] = []
    for para in _ascii(text).split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and draw.textlength(line, font=font) > width:
                cut = next(
                    i for i in range(len(line), 0, -1) if i == 1 or draw.textlength(line[:i], font=font) <= width
                )
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _text_block(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    lines: Sequence[str],
    font: Any,
    line_h: int,
    width: int | None = None,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> None:
    x, y = xy
    for i, line in enumerate(lines):
        dx = 0 if width is None else max(0, (width - draw.textlength(line, font=font)) / 2)
        draw.text((x + dx, y + i * line_h), line, font=font, fill=fill)


def contact_sheet(
    grid: Sequence[Sequence[Cell]],
    *,
    title: str = "",
    col_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    captions: Sequence[Sequence[str]] | None = None,
    tile: int | None = None,
    font_size: int | None = None,
) -> Image.Image:
    """Lay images out in a labelled grid.

    Args:
        grid: rows of cells: an image, a string (a grey placeholder box showing it) or None (left empty).
        title: a line (or lines) above everything.
        col_labels, row_labels: text above each column and left of each row ("\\n" breaks lines).
        captions: text under each cell, same shape as ``grid``.
        tile: width of every cell in px (images are scaled to it); default: the widest image, at least 128.
        font_size: default: about a tenth of the tile, at least 11 px.

    Returns:
        An RGB image.

    Example:
        >>> sheet = contact_sheet([[a, b], [c, "missing"]], col_labels=["x", "y"], title="demo")
    """
    rows = [list(r) for r in grid]
    if not rows or not any(rows):
        raise ValueError("contact_sheet needs at least one cell")
    n_cols = max(len(r) for r in rows)
    rows = [r + [None] * (n_cols - len(r)) for r in rows]
    images = [c for r in rows for c in r if isinstance(c, Image.Image)]
    tile = tile or max([128, *(c.width for c in images)])
    fs = font_size or max(11, min(18, tile // 11))
    font, small = _font(fs), _font(max(10, fs - 2))
    line_h, small_h = round(fs * 1.25), round(max(10, fs - 2) * 1.25)
    pad = max(4, fs // 2)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def scaled(c: Image.Image) -> Image.Image:
        h = max(1, round(c.height * tile / c.width))
        return c if c.size == (tile, h) else c.resize((tile, h), Image.Resampling.LANCZOS)

    cells = [[scaled(c) if isinstance(c, Image.Image) else c for c in r] for r in rows]
    default_h = max((c.height for c in images), default=round(tile * 0.75))
    default_h = round(default_h * tile / max((c.width for c in images), default=tile))
    row_h = [max((c.height for c in r if isinstance(c, Image.Image)), default=default_h) for r in cells]
    cap_lines = [
        [
            _wrap(probe, captions[i][j] if captions and i < len(captions) and j < len(captions[i]) else "", small, tile)
            for j in range(n_cols)
        ]
        for i in range(len(rows))
    ]
    cap_h = [max((len(ls) for ls in r if ls != [""]), default=0) * small_h for r in cap_lines]
    label_w = 0
    row_lines = [_wrap(probe, lbl, font, 10 * tile) for lbl in row_labels]
    if row_lines:
        label_w = round(max(probe.textlength(line, font=font) for ls in row_lines for line in ls)) + 2 * pad
    col_lines = [_wrap(probe, lbl, font, tile) for lbl in col_labels]
    col_h = max((len(ls) for ls in col_lines), default=0) * line_h + (pad if col_lines else 0)
    title_lines = _wrap(probe, title, font, label_w + n_cols * (tile + pad)) if title else []
    title_h = len(title_lines) * line_h + (pad if title_lines else 0)

    width = pad + label_w + n_cols * (tile + pad)
    height = pad + title_h + col_h + sum(h + c + pad for h, c in zip(row_h, cap_h))
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    _text_block(draw, (pad, pad), title_lines, font, line_h)
    x0, y = pad + label_w, pad + title_h
    for j, ls in enumerate(col_lines):
        _text_block(draw, (x0 + j * (tile + pad), y + col_h - pad - len(ls) * line_h), ls, font, line_h, tile)
    y += col_h
    for i, r in enumerate(cells):
        if i < len(row_lines):
            ls = row_lines[i]
            _text_block(draw, (pad, y + (row_h[i] - len(ls) * line_h) // 2), ls, font, line_h)
        for j, c in enumerate(r):
            x = x0 + j * (tile + pad)
            if isinstance(c, Image.Image):
                sheet.paste(c, (x, y))
            elif isinstance(c, str):
                draw.rectangle((x, y, x + tile - 1, y + row_h[i] - 1), fill=(225, 225, 225), outline=(170, 170, 170))
                ls = _wrap(draw, c, small, tile - 2 * pad)
                _text_block(
                    draw,
                    (x + pad, y + (row_h[i] - len(ls) * small_h) // 2),
                    ls,
                    small,
                    small_h,
                    tile - 2 * pad,
                    fill=(80, 80, 80),
                )
            if cap_lines[i][j] != [""]:
                _text_block(draw, (x, y + row_h[i] + 2), cap_lines[i][j], small, small_h, tile, fill=(40, 40, 40))
        y += row_h[i] + cap_h[i] + pad
    return sheet


def with_inset(panel: Image.Image, painting: Image.Image, fraction: float = 0.3) -> Image.Image:
    """The panel with a small copy of the painting in its lower left corner, as the paper's Fig. 2 shows it."""
    out = panel.copy()
    w = max(8, round(panel.width * fraction))
    thumb = painting.resize((w, max(1, round(painting.height * w / painting.width))), Image.Resampling.LANCZOS)
    border = max(1, panel.width // 128)
    framed = Image.new("RGB", (thumb.width + 2 * border, thumb.height + 2 * border), (255, 255, 255))
    framed.paste(thumb, (border, border))
    out.paste(framed, (0, max(0, panel.height - framed.height)))
    return out


# -- planning, timing and progress ---------------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    """One optimisation run: what it is, its size, and how to run it."""

    figure: str
    key: str
    label: str
    size: int
    steps: int
    deepest: str  # deepest layer the run needs, for the time estimate
    run: Callable[..., Any]  # called with callback=
    file: str  # where its image goes, relative to the output folder
    estimate: float = 0.0


@dataclasses.dataclass
class Finished:
    """What the report needs of one run; read back from its files when ``--resume`` reuses it."""

    image: Image.Image
    seconds: float
    final_losses: dict[str, float]
    reused: bool = False


@dataclasses.dataclass
class Check:
    figure: str
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class Settings:
    figures: tuple[str, ...]
    out: Path
    images: Path
    size: dict[str, int]
    steps: dict[str, int]
    seed: int
    fig3_style: Path
    sheet_format: str
    init: str
    resume: bool
    quiet: bool


def depth_fraction(model: torch.nn.Module, layer: str) -> float:
    """Share of a forward pass to conv5_1 spent up to ``layer`` (conv FLOPs: each pooling quarters the area)."""
    cost, total, at = 0.0, 0.0, 0.0
    in_ch = 3
    for b, block in enumerate(model.config.channels):
        for i, out_ch in enumerate(block):
            name = f"conv{b + 1}_{i + 1}"
            cost += in_ch * out_ch / 4**b
            in_ch = out_ch
            if name == layer:
                at = cost
            if name == "conv5_1":
                total = cost
    return at / total if total else 1.0


def calibrate(st: Any, photo: Image.Image, painting: Image.Image, size: int, steps: int = 6, warmup: int = 2) -> float:
    """Seconds per full-depth L-BFGS step at ``size`` px, from a short run, not counting its first steps.

    The first steps at a new size pay for allocations and kernel selection, so they are left out.
    """
    out = st.stylize(photo, painting, preset="paper", size=size, steps=warmup + steps, seed=0)
    t = [s.elapsed for s in out.losses]
    return (t[-1] - t[warmup - 1]) / steps


def _fmt_time(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Per-run lines with elapsed time and a running ETA, plus an overall tqdm bar on a terminal."""

    def __init__(self, jobs: Sequence[Job], quiet: bool):
        self.jobs, self.quiet = jobs, quiet
        self.start = time.perf_counter()
        self.done_est = 0.0
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=sum(j.steps for j in jobs),
                unit="step",
                dynamic_ncols=True,
                disable=None,
                file=sys.stderr,
                leave=False,
            )

    def write(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def callback(self, info: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def callback_many(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def finished(self, i: int, job: Job, seconds: float, reused: bool = False) -> None:
        elapsed = time.perf_counter() - self.start
        if reused:
            self.write(f"[{i + 1:>2}/{len(self.jobs)}] {job.figure} {job.label}: reused from {job.file}")
            return
        self.done_est += job.estimate
        left_est = sum(j.estimate for j in self.jobs[i + 1 :])
        # Scale the estimate by how fast the runs so far actually went (the machine may be busier than at
        # calibration).
        rate = elapsed / self.done_est if self.done_est > 0 else 1.0
        self.write(
            f"[{i + 1:>2}/{len(self.jobs)}] {job.figure} {job.label} ({job.size} px, {job.steps} steps): "
            f"{seconds:.1f} s; elapsed {_fmt_time(elapsed)}, about {_fmt_time(left_est * rate)} left"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the figures ---------------------------------------------------------------------------------------------


def white_noise(size: tuple[int, int], seed: int) -> Image.Image:
    """Full-range uniform white noise (each pixel and channel uniform in [0, 1]), seeded."""
    w, h = size
    return im.to_pil(torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed)))


def _layer_set_name(layers: Sequence[str]) -> str:
    return layers[0] if len(layers) == 1 else f"{layers[0]}..{layers[-1]}"


def _ratio(r: float) -> str:
    return f"{r:.0e}".replace("e-0", "e-")


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if math.isinf(v):
        return "inf"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


class Reproduction:
    """Plans the runs of the requested figures, runs them, measures, and writes pictures and the report."""

    def __init__(self, st: Any, settings: Settings, argv: Sequence[str]):
        self.st, self.s, self.argv = st, settings, list(argv)
        self.model = st.model
        self.photo = im.load_image(settings.images / PHOTO, name="photo")
        self.results: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.checks: list[Check] = []
        self.markdown: dict[str, str] = {}
        self.figure_seconds: dict[str, float] = {}
        self.skipped: list[str] = []
        self.fig2_paths: dict[str, Path] = {}
        self.files: dict[str, str] = {}

    # -- planning

    def _img(self, name: str) -> Image.Image:
        return im.load_image(self.s.images / name, max_side=2 * max(self.s.size.values()), name=name)

    def plan(self) -> list[Job]:
        jobs: list[Job] = []
        st, seed = self.st, self.s.seed
        if "fig1" in self.s.figures:
            size, steps = self.s.size["fig1"], self.s.steps["fig1"]
            for layer in FIG1_LAYERS:
                run = functools.partial(st.reconstruct_content, self.photo, layer, size=size, steps=steps, seed=seed)
                jobs.append(
                    Job(
                        "fig1",
                        f"content/{layer}",
                        f"content reconstruction from {layer}",
                        size,
                        steps,
                        layer,
                        run,
                        f"fig1/content_{layer}.png",
                    )
                )
            for name in FIG1_STYLE_IMAGES:
                img = self._img(name)
                for k in range(1, len(FIG1_LAYERS) + 1):
                    layers = FIG1_LAYERS[:k]
                    run = functools.partial(st.reconstruct_style, img, layers, size=size, steps=steps, seed=seed)
                    stem = Path(name).stem
                    jobs.append(
                        Job(
                            "fig1",
                            f"style/{stem}/{k}",
                            f"style reconstruction of {stem} from {_layer_set_name(layers)}",
                            size,
                            steps,
                            layers[-1],
                            run,
                            f"fig1/style_{stem}_{_layer_set_name(layers).replace('..', '-')}.png",
                        )
                    )
        if "fig2" in self.s.figures:
            size, steps = self.s.size["fig2"], self.s.steps["fig2"]
            for p in FIG2_PAINTINGS:
                path = next((self.s.images / f for f in p.files if (self.s.images / f).is_file()), None)
                if path is None:
                    self.skipped.append(
                        f"Fig. 2 {p.panel} ({p.title}, {p.artist}): none of "
                        f"{', '.join(p.files)} in {self.s.images}; skipped"
                    )
                    continue
                self.fig2_paths[p.panel] = path
                run = functools.partial(
                    st.stylize,
                    self.photo,
                    self._img(path.name),
                    preset=p.preset,
                    size=size,
                    steps=steps,
                    seed=seed,
                    **self._init_kwargs(size),
                )
                jobs.append(
                    Job(
                        "fig2",
                        f"panel/{p.panel}",
                        f"{p.panel} {p.title}",
                        size,
                        steps,
                        "conv5_1",
                        run,
                        f"fig2/{p.panel if p.in_paper else 'extra'}_{path.stem}.png",
                    )
                )
            # The same panels started from the photo (the CLI's `recommended` start): with the HED VGG-16, conv4_2
            # keeps too little of the photo for the houses to come out of white noise sharply (see README).
            for p in FIG2_PAINTINGS:
                path = self.fig2_paths.get(p.panel)
                if path is None:
                    continue
                run = functools.partial(
                    st.stylize,
                    self.photo,
                    self._img(path.name),
                    preset=p.preset,
                    size=size,
                    steps=steps,
                    seed=seed,
                    init="content",
                )
                jobs.append(
                    Job(
                        "fig2",
                        f"from-photo/{p.panel}",
                        f"{p.panel} {p.title}, from the photo",
                        size,
                        steps,
                        "conv5_1",
                        run,
                        f"fig2/from_photo_{p.panel if p.in_paper else 'extra'}_{path.stem}.png",
                    )
                )
        if "fig3" in self.s.figures:
            size, steps = self.s.size["fig3"], self.s.steps["fig3"]
            style = self._fig3_style()
            for letter, layers in FIG3_LAYER_SETS.items():
                for ratio in FIG3_RATIOS:
                    run = functools.partial(
                        st.stylize,
                        self.photo,
                        style,
                        preset=fig3_preset_name(letter, ratio),
                        size=size,
                        steps=steps,
                        seed=seed,
                        **self._init_kwargs(size),
                    )
                    deepest = max(layers[-1], PAPER_CONTENT_LAYER, key=lambda n: depth_fraction(self.model, n))
                    jobs.append(
                        Job(
                            "fig3",
                            f"cell/{letter}/{_ratio(ratio)}",
                            f"row {letter} ({_layer_set_name(layers)}), α/β {_ratio(ratio)}",
                            size,
                            steps,
                            deepest,
                            run,
                            f"fig3/{letter}_{_ratio(ratio)}.png",
                        )
                    )
        return jobs

    def _init_kwargs(self, size: int) -> dict[str, Any]:
        """How stylize() starts: the paper's full-range white noise (default), or the preset's own init."""
        if self.s.init == "preset":
            return {}
        # The library's default start, noise of σ = 0.001 around grey, stalls L-BFGS in Fig. 3 row A (and row B
        # at small α/β) with these weights: its first full step overshoots and the curvature pair it leaves makes
        # every later step vanish (measured: the image stays grey). Full-range noise, the paper's "white noise
        # image", does not stall.
        return {"init_image": white_noise(im.resize_longest(self.photo, size, "photo").size, self.s.seed)}

    def _fig3_style(self) -> Image.Image:
        return im.load_image(self.s.fig3_style, max_side=2 * self.s.size["fig3"], name="Fig. 3 painting")

    def estimate(self, jobs: Sequence[Job], painting: Image.Image) -> dict[int, float]:
        """Calibrate seconds per full step at each size used, then price every job."""
        todo = [j for j in jobs if self._reuse(j) is None]
        per_step = {size: calibrate(self.st, self.photo, painting, size) for size in sorted({j.size for j in todo})}
        for j in todo:
            # A step's cost is mostly the forward and backward pass to the deepest layer; 15 % is overhead.
            j.estimate = j.steps * per_step[j.size] * (0.15 + 0.85 * depth_fraction(self.model, j.deepest))
        return per_step

    # -- running

    def run(self, jobs: Sequence[Job], progress: Progress) -> None:
        fig_start: dict[str, float] = {}
        for i, job in enumerate(jobs):
            fig_start.setdefault(job.figure, time.perf_counter())
            t = time.perf_counter()
            done = self._reuse(job)
            if done is None:
                out = job.run(callback=progress.callback)
                done = Finished(out.image, out.seconds, out.final_losses)
                self._save(done.image, job.file)
                self._sidecar(job).write_text(
                    json.dumps({**self._identity(job), "seconds": done.seconds, "final_losses": done.final_losses})
                    + "\n"
                )
            else:
                progress.callback_many(job.steps)
            self.results[job.key] = done
            self.files[job.key] = job.file
            progress.finished(i, job, time.perf_counter() - t, reused=done.reused)
            last_of_figure = i + 1 == len(jobs) or jobs[i + 1].figure != job.figure
            if last_of_figure:
                self.figure_seconds[job.figure] = time.perf_counter() - fig_start[job.figure]
                getattr(self, f"finish_{job.figure}")()
                self.write_report(partial=i + 1 < len(jobs))
        for fig in self.s.figures:  # Fig. 2 with every painting absent has no runs but still gets its section
            if fig not in self.markdown:
                self.figure_seconds[fig] = 0.0
                getattr(self, f"finish_{fig}")()

    def _identity(self, job: Job) -> dict[str, Any]:
        """What must match for a finished run to be reused by --resume."""
        return {
            "key": job.key,
            "size": job.size,
            "steps": job.steps,
            "seed": self.s.seed,
            "init": self.s.init,
            "weights": self.st.weights_name,
            "alpha_beta_scale": self.model.config.alpha_beta_scale,
            "fig3_style": self.s.fig3_style.name if job.figure == "fig3" else None,
        }

    def _sidecar(self, job: Job) -> Path:
        return self.s.out / f"{job.file}.json"

    def _reuse(self, job: Job) -> Finished | None:
        if not self.s.resume:
            return None
        try:
            meta = json.loads(self._sidecar(job).read_text())
            if {k: meta.get(k) for k in self._identity(job)} != self._identity(job):
                return None
            image = im.load_image(self.s.out / job.file, name=job.file)
        except (OSError, ValueError, GatysError):
            return None
        return Finished(image, float(meta["seconds"]), dict(meta["final_losses"]), reused=True)

    def _save(self, img: Image.Image, rel: str) -> str:
        path = self.s.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save_image(img, path)
        return rel

    def _save_sheet(self, sheet: Image.Image, fig: str) -> str:
        return self._save(sheet, f"{fig}.{self.s.sheet_format}")

    def _check(self, figure: str, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(figure, name, bool(passed), detail))

    # -- Fig. 1

    def finish_fig1(self) -> None:
        size, steps = self.s.size["fig1"], self.s.steps["fig1"]
        photo = im.resize_longest(self.photo, size, "photo")
        content_rows = []
        row_imgs: list[Cell] = [photo]
        row_caps = ["photo"]
        for layer in FIG1_LAYERS:
            out = self.results[f"content/{layer}"]
            rel = self.files[f"content/{layer}"]
            p, s = psnr(out.image, photo), ssim(out.image, photo)
            content_rows.append(
                {
                    "layer": layer,
                    "psnr_db": p,
                    "ssim": s,
                    "content_loss": out.final_losses["content"],
                    "seconds": out.seconds,
                    "file": rel,
                }
            )
            row_imgs.append(out.image)
            row_caps.append(f"{layer}: {p:.1f} dB, SSIM {s:.2f}")
        grid: list[list[Cell]] = [row_imgs]
        captions = [row_caps]
        row_labels = ["Content\nreconstructions\n(Tübingen)"]
        style_data: dict[str, Any] = {}
        for name in FIG1_STYLE_IMAGES:
            stem = Path(name).stem
            original = im.resize_longest(self._img(name), size, name)
            entries = []
            imgs: list[Cell] = [original]
            caps = [stem]
            for k in range(1, len(FIG1_LAYERS) + 1):
                layers = FIG1_LAYERS[:k]
                out = self.results[f"style/{stem}/{k}"]
                rel = self.files[f"style/{stem}/{k}"]
                per = style_losses(self.model, out.image, original)
                entries.append(
                    {
                        "layers": list(layers),
                        "style_loss": per,
                        "style_loss_w5": weighted_style_loss(per),
                        "seconds": out.seconds,
                        "file": rel,
                    }
                )
                imgs.append(out.image)
                caps.append(_layer_set_name(layers))
            style_data[stem] = {"reconstructions": entries}
            grid.append(imgs)
            captions.append(caps)
            row_labels.append(f"Style\nreconstructions\n({stem.replace('_', ' ')})")
        self.data["fig1"] = {
            "size": size,
            "steps": steps,
            "seconds": self.figure_seconds["fig1"],
            "content": content_rows,
            "style": style_data,
        }
        sheet = contact_sheet(
            grid,
            captions=captions,
            row_labels=row_labels,
            col_labels=["input", "a  conv1_1", "b  conv2_1", "c  conv3_1", "d  conv4_1", "e  conv5_1"],
            title=f"Fig. 1 - reconstructions from white noise, {size} px, {steps} steps (content: Adam, style: L-BFGS), "
            f"{self.st.weights_name} (the paper: VGG-19). Style columns: layers conv1_1 up to the named one.",
        )
        sheet_rel = self._save_sheet(sheet, "fig1")

        # Checks
        ps = [r["psnr_db"] for r in content_rows]
        self._check(
            "fig1",
            "content PSNR falls monotonically with depth",
            is_monotone(ps, increasing=False),
            " > ".join(f"{r['layer']} {r['psnr_db']:.2f}" for r in content_rows) + " dB",
        )
        near = [r for r in content_rows[:2]]
        self._check(
            "fig1",
            f"conv1_1 and conv2_1 near-perfect (PSNR >= {NEAR_PERFECT_PSNR:g} dB, SSIM >= {NEAR_PERFECT_SSIM:g})",
            all(r["psnr_db"] >= NEAR_PERFECT_PSNR and r["ssim"] >= NEAR_PERFECT_SSIM for r in near),
            "; ".join(f"{r['layer']} {r['psnr_db']:.2f} dB, SSIM {r['ssim']:.3f}" for r in near),
        )
        ss = [r["ssim"] for r in content_rows]
        self._check(
            "fig1",
            "content SSIM falls monotonically with depth",
            is_monotone(ss, increasing=False),
            " > ".join(f"{r['layer']} {r['ssim']:.3f}" for r in content_rows),
        )
        for stem, d in style_data.items():
            recs = d["reconstructions"]
            for k in range(1, len(FIG1_LAYERS)):  # conv1_1 is matched by every set: nothing to compare
                layer = FIG1_LAYERS[k]
                matched = [e["style_loss"][layer] for e in recs[k:]]
                unmatched = [e["style_loss"][layer] for e in recs[:k]]
                self._check(
                    "fig1",
                    f"style reconstructions of {stem} at {layer}: every set matching {layer} has a "
                    "lower loss there than every set that does not",
                    max(matched) < min(unmatched),
                    f"highest matched {_num(max(matched))} vs lowest unmatched {_num(min(unmatched))}",
                )
            # Why deep layers can fail here: each E_l enters L_style with w_l = 1/5, and with these weights the
            # E_l differ by orders of magnitude (the paper's VGG-19 was normalised to mean activation 1 per filter).
            last = recs[-1]["style_loss"]
            d["share_of_loss"] = {layer: last[layer] / sum(last.values()) for layer in FIG1_LAYERS}

        lines = [
            f"Reconstructions from white noise (Fig. 1), {size} px, {steps} steps each (content: Adam, lr 0.02, as "
            f"the paper's 'gradient descent'; style: L-BFGS), seed {self.s.seed}. "
            f"Wall time {_fmt_time(self.figure_seconds['fig1'])}.",
            "",
            f"![Fig. 1 contact sheet]({sheet_rel})",
            "",
            "### Content reconstructions of the Tübingen photo",
            "",
            "Each image minimises the content loss at one layer only. PSNR (RGB) and SSIM (luma, 11x11 Gaussian "
            "window, σ = 1.5) against the photo at the same size:",
            "",
            _table(
                ["layer", "PSNR (dB)", "SSIM", "final content loss", "time (s)"],
                [
                    [
                        r["layer"],
                        f"{r['psnr_db']:.2f}",
                        f"{r['ssim']:.4f}",
                        _num(r["content_loss"]),
                        f"{r['seconds']:.1f}",
                    ]
                    for r in content_rows
                ],
            ),
        ]
        for stem, d in style_data.items():
            header = ["layers matched"] + [f"E at {layer}" for layer in FIG1_LAYERS] + ["L_style (w=1/5)", "time (s)"]
            rows = []
            for e in d["reconstructions"]:
                rows.append(
                    [_layer_set_name(e["layers"])]
                    + [
                        ("**" if layer in e["layers"] else "")
                        + _num(e["style_loss"][layer])
                        + ("**" if layer in e["layers"] else "")
                        for layer in FIG1_LAYERS
                    ]
                    + [_num(e["style_loss_w5"]), f"{e['seconds']:.1f}"]
                )
            share = ", ".join(f"{layer} {100 * v:.2g} %" for layer, v in d["share_of_loss"].items())
            lines += [
                "",
                f"### Style reconstructions of {stem}",
                "",
                "Each image minimises the style loss on the layers in the first column. Every column is the "
                "style loss E_l (Eq. 4) of that image measured at one layer against the original; bold: the "
                "layer was matched.",
                "",
                _table(header, rows),
                "",
                f"Share of each layer in L_style of the last row (w_l = 1/5 each): {share}. With these "
                "weights the deep layers carry almost none of the loss, so matching them moves their E_l "
                "little; the paper's VGG-19 was rescaled so that every filter's mean activation is 1, "
                "which evens the layers out.",
            ]
        self.markdown["fig1"] = "\n".join(lines)

    # -- Fig. 2

    def finish_fig2(self) -> None:
        size, steps = self.s.size["fig2"], self.s.steps["fig2"]
        photo = im.resize_longest(self.photo, size, "photo")
        panels, cells, caps = [], {}, {}
        for p in FIG2_PAINTINGS:
            key = f"panel/{p.panel}" if f"panel/{p.panel}" in self.results else None
            ratio = PRESETS[p.preset].alpha_beta
            if key is None:
                panels.append(
                    {
                        "panel": p.panel,
                        "title": p.title,
                        "artist": p.artist,
                        "alpha_beta": ratio,
                        "in_paper": p.in_paper,
                        "status": "absent",
                    }
                )
                cells[p.panel] = f"{p.panel}: {p.title} ({p.artist}) is not in the images folder; skipped"
                caps[p.panel] = ""
                continue
            out = self.results[key]
            path = self.fig2_paths[p.panel]
            painting = self._img(path.name)
            rel = self.files[key]
            per = style_losses(self.model, out.image, painting)
            panels.append(
                {
                    "panel": p.panel,
                    "title": p.title,
                    "artist": p.artist,
                    "alpha_beta": ratio,
                    "in_paper": p.in_paper,
                    "status": "done",
                    "file": rel,
                    "content_loss": content_loss_at(self.model, out.image, photo),
                    "style_loss": weighted_style_loss(per),
                    "seconds": out.seconds,
                }
            )
            cells[p.panel] = with_inset(out.image, painting)
            caps[p.panel] = f"{p.panel if p.in_paper else 'extra'}  {p.title} ({p.artist}), α/β {_ratio(ratio)}"
        extra = [
            p.panel
            for p in FIG2_PAINTINGS
            if not p.in_paper and p.panel in cells and not isinstance(cells[p.panel], str)
        ]
        grid: list[list[Cell]] = [[photo, cells["B"], cells["C"]], [cells["D"], cells["E"], cells["F"]]]
        captions = [
            ["A  Tübingen, photo: Andreas Praefcke (CC BY 3.0)", caps["B"], caps["C"]],
            [caps["D"], caps["E"], caps["F"]],
        ]
        if extra:
            grid.append([cells[e] for e in extra])
            captions.append([caps[e] for e in extra])
        self.data["fig2"] = {
            "size": size,
            "steps": steps,
            "seconds": self.figure_seconds.get("fig2", 0.0),
            "panels": panels,
        }
        sheet = contact_sheet(
            grid,
            captions=captions,
            title=f"Fig. 2 - {size} px, {steps} L-BFGS steps from white noise, content conv4_2, "
            f"style conv1_1..conv5_1, {self.st.weights_name} (the paper: VGG-19)",
        )
        sheet_rel = self._save_sheet(sheet, "fig2")
        done = [p for p in panels if p["status"] == "done"]
        self._check(
            "fig2",
            "every available painting rendered",
            bool(done) and all((self.s.out / p["file"]).is_file() for p in done),
            f"{len(done)} rendered; absent: "
            + (", ".join(f"{p['panel']} {p['title']}" for p in panels if p["status"] == "absent") or "none"),
        )
        rows = []
        for p in panels:
            if p["status"] == "absent":
                rows.append(
                    [p["panel"], f"{p['title']} ({p['artist']})", _ratio(p["alpha_beta"]), "absent: skipped", "", ""]
                )
            else:
                rows.append(
                    [
                        p["panel"] if p["in_paper"] else "extra (not in the paper)",
                        f"{p['title']} ({p['artist']})",
                        _ratio(p["alpha_beta"]),
                        _num(p["content_loss"]),
                        _num(p["style_loss"]),
                        f"{p['seconds']:.1f}",
                    ]
                )
        self.markdown["fig2"] = "\n".join(
            [
                f"The photo in the style of each painting available (Fig. 2), {size} px, {steps} L-BFGS steps, "
                f"seed {self.s.seed}, α/β as the paper's caption assigns. "
                f"Wall time {_fmt_time(self.data['fig2']['seconds'])}.",
                "",
                f"![Fig. 2 contact sheet]({sheet_rel})",
                "",
                "Content loss at conv4_2 against the photo and style loss over conv1_1..conv5_1 (w_l = 1/5) against "
                "the painting, re-evaluated on the saved image:",
                "",
                _table(["panel", "painting", "α/β", "content loss", "style loss", "time (s)"], rows),
                *self._fig2_from_photo(size, steps, photo),
            ]
        )

    def _fig2_from_photo(self, size: int, steps: int, photo: Image.Image) -> list[str]:
        """The same panels started from the photo instead of white noise: a second sheet, table and check."""
        runs = [
            (p, self.results[f"from-photo/{p.panel}"])
            for p in FIG2_PAINTINGS
            if f"from-photo/{p.panel}" in self.results
        ]
        if not runs:
            return []
        noise = {d["panel"]: d for d in self.data["fig2"]["panels"] if d["status"] == "done"}
        entries, tiles, caps = [], [photo], ["A  Tübingen, photo: Andreas Praefcke (CC BY 3.0)"]
        for p, out in runs:
            painting = self._img(self.fig2_paths[p.panel].name)
            per = style_losses(self.model, out.image, painting)
            entries.append(
                {
                    "panel": p.panel,
                    "title": p.title,
                    "alpha_beta": PRESETS[p.preset].alpha_beta,
                    "file": self.files[f"from-photo/{p.panel}"],
                    "content_loss": content_loss_at(self.model, out.image, photo),
                    "style_loss": weighted_style_loss(per),
                    "seconds": out.seconds,
                }
            )
            tiles.append(with_inset(out.image, painting))
            caps.append(f"{p.panel if p.in_paper else 'extra'}  {p.title}, α/β {_ratio(PRESETS[p.preset].alpha_beta)}")
        self.data["fig2"]["from_photo"] = entries
        grid = [tiles[i : i + 3] for i in range(0, len(tiles), 3)]
        captions = [caps[i : i + 3] for i in range(0, len(caps), 3)]
        sheet = contact_sheet(
            grid,
            captions=captions,
            title=f"Fig. 2, started from the photo (not the paper's white noise) - {size} px, "
            f"{steps} L-BFGS steps, {self.st.weights_name} (the paper: VGG-19)",
        )
        rel = self._save_sheet(sheet, "fig2_from_photo")
        # At α/β = 1e-4 (panels E, F) style outweighs content so far that the start hardly matters (measured:
        # Femme nue assise 9.4e5 from the photo vs 9.2e5 from noise); at 1e-3 the photo start keeps more of it.
        pairs = [e for e in entries if e["panel"] in noise and e["alpha_beta"] >= 1e-3]
        self._check(
            "fig2",
            "at α/β 1e-3, started from the photo, every panel keeps more of the photo (lower "
            "content loss) than from white noise",
            bool(pairs) and all(e["content_loss"] < noise[e["panel"]]["content_loss"] for e in pairs),
            "; ".join(
                f"{e['panel']} {_num(e['content_loss'])} vs {_num(noise[e['panel']]['content_loss'])}" for e in pairs
            ),
        )
        rows = [
            [
                e["panel"],
                e["title"],
                _ratio(e["alpha_beta"]),
                _num(e["content_loss"]),
                _num(e["style_loss"]),
                f"{e['seconds']:.1f}",
            ]
            for e in entries
        ]
        return [
            "",
            "### Started from the photo",
            "",
            "The same panels and α/β, started from the photo instead of white noise (the command line's "
            "`recommended` start). With the HED VGG-16 the houses come out of white noise only faintly; "
            "from the photo they stay sharp while the style's colours and strokes take over.",
            "",
            f"![Fig. 2 started from the photo]({rel})",
            "",
            _table(["panel", "painting", "α/β", "content loss", "style loss", "time (s)"], rows),
        ]

    # -- Fig. 3

    def finish_fig3(self) -> None:
        size, steps = self.s.size["fig3"], self.s.steps["fig3"]
        style = self._fig3_style()
        photo = im.resize_longest(self.photo, size, "photo")
        cells, grid = [], []
        for letter, layers in FIG3_LAYER_SETS.items():
            row: list[Cell] = []
            for ratio in FIG3_RATIOS:
                out = self.results[f"cell/{letter}/{_ratio(ratio)}"]
                rel = self.files[f"cell/{letter}/{_ratio(ratio)}"]
                per = style_losses(self.model, out.image, style)
                cells.append(
                    {
                        "row": letter,
                        "layers": list(layers),
                        "alpha_beta": ratio,
                        "file": rel,
                        "content_loss": content_loss_at(self.model, out.image, photo),
                        "style_loss": weighted_style_loss(per),
                        "style_loss_own_layers": weighted_style_loss(per, layers),
                        "style_loss_per_layer": per,
                        "seconds": out.seconds,
                    }
                )
                row.append(out.image)
            grid.append(row)
        self.data["fig3"] = {
            "size": size,
            "steps": steps,
            "seconds": self.figure_seconds["fig3"],
            "painting": self.s.fig3_style.name,
            "cells": cells,
        }
        sheet = contact_sheet(
            grid,
            col_labels=[f"α/β = {_ratio(r)}" for r in FIG3_RATIOS],
            row_labels=[f"{letter}\n{_layer_set_name(layers)}" for letter, layers in FIG3_LAYER_SETS.items()],
            title=f"Fig. 3 - {self.s.fig3_style.stem.replace('_', ' ')}: style layers (rows) x α/β (columns), "
            f"{size} px, {steps} L-BFGS steps, {self.st.weights_name} (the paper: VGG-19)",
        )
        sheet_rel = self._save_sheet(sheet, "fig3")

        def cell(letter: str, ratio: float) -> dict[str, Any]:
            return next(c for c in cells if c["row"] == letter and c["alpha_beta"] == ratio)

        descending = sorted(FIG3_RATIOS, reverse=True)  # 1e-2 -> 1e-5: weight moves from content to style
        for letter in FIG3_LAYER_SETS:
            cs = [cell(letter, r)["content_loss"] for r in descending]
            ss = [cell(letter, r)["style_loss"] for r in descending]
            self._check(
                "fig3",
                f"row {letter}: content loss rises as α/β goes 1e-2 -> 1e-5",
                is_monotone(cs, increasing=True),
                " < ".join(_num(v) for v in cs),
            )
            self._check(
                "fig3",
                f"row {letter}: style loss (conv1_1..conv5_1, w=1/5) falls as α/β goes 1e-2 -> 1e-5",
                is_monotone(ss, increasing=False),
                " > ".join(_num(v) for v in ss),
            )

        def grid_table(field: str) -> str:
            return _table(
                ["row (style layers)"] + [f"α/β {_ratio(r)}" for r in FIG3_RATIOS],
                [
                    [f"{letter} ({_layer_set_name(layers)})"] + [_num(cell(letter, r)[field]) for r in FIG3_RATIOS]
                    for letter, layers in FIG3_LAYER_SETS.items()
                ],
            )

        self.markdown["fig3"] = "\n".join(
            [
                f"Style layers A-E (rows) x α/β (columns) for {self.s.fig3_style.name} (Fig. 3), {size} px, {steps} "
                f"L-BFGS steps, seed {self.s.seed}. Wall time {_fmt_time(self.figure_seconds['fig3'])}.",
                "",
                f"![Fig. 3 contact sheet]({sheet_rel})",
                "",
                "Every cell re-evaluated with the same fixed weights, so cells compare. Content loss at conv4_2 "
                "against the photo:",
                "",
                grid_table("content_loss"),
                "",
                "Style loss over conv1_1..conv5_1 with w_l = 1/5 against the painting:",
                "",
                grid_table("style_loss"),
                "",
                "Style loss over each row's own layers (w_l = 1/|set|), the term each run traded against content:",
                "",
                grid_table("style_loss_own_layers"),
            ]
        )

    # -- report

    def write_report(self, *, partial: bool = False) -> Path:
        st = self.st
        cfg = self.model.config
        header = {
            "command": "python -m gatys.reproduce " + " ".join(shlex.quote(a) for a in self.argv),
            "figures": list(self.s.figures),
            "weights": st.weights_name,
            "architecture": cfg.architecture,
            "alpha_beta_scale": cfg.alpha_beta_scale,
            "device": st.description,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "seed": self.s.seed,
            "estimate_s": self.data.get("estimate_s"),
            "calibration_s_per_step": self.data.get("calibration"),
            "wall_s": self.data.get("wall_s"),
            "runs_s": sum(r.seconds for r in self.results.values()),
            "runs": len(self.results),
            "reused_runs": sum(r.reused for r in self.results.values()),
            "partial": partial,
            "skipped": self.skipped,
        }
        report = {
            **header,
            **{f: self.data[f] for f in FIGURES if f in self.data},
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }
        (self.s.out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")

        passed = sum(c.passed for c in self.checks)
        wall = self.data.get("wall_s")
        cal = self.data.get("calibration") or {}
        md = [
            "# Reproducing Gatys, Ecker & Bethge (2015), Figures 1-3",
            "",
            "(partial: the run is still going or was interrupted)" if partial else "",
            f"- Command: `{header['command']}`",
            f"- Weights: {st.weights_name} ({cfg.architecture}). **The paper used VGG-19** (with filters rescaled "
            f"to mean activation 1); these weights differ, so pictures and loss magnitudes differ too.",
            f"- α/β: the paper's values x alpha_beta_scale = {cfg.alpha_beta_scale:g} from the weights' config.json.",
            "- Method: L-BFGS (Fig. 1 content reconstructions: Adam), average pooling, content layer conv4_2, style weights w_l = 1/(number of style "
            f"layers); seed {self.s.seed} for every run. Start: Fig. 1 the library's reconstruct_content / "
            "reconstruct_style defaults; Figs. 2-3 "
            + (
                "full-range uniform white noise (the paper's)"
                if self.s.init == "noise"
                else "the preset's init (noise of σ 0.001 around grey)"
            )
            + ".",
            f"- Device: {st.description}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} CPUs.",
            "- Estimated time before starting: "
            + (
                f"{_fmt_time(self.data['estimate_s'])} (calibrated "
                + ", ".join(f"{v:.3f} s per full step at {k} px" for k, v in cal.items())
                + ")"
                if self.data.get("estimate_s") is not None
                else "n/a"
            ),
            "- Wall time: "
            + (_fmt_time(wall) if wall is not None else "(not finished)")
            + "".join(f"; {f} {_fmt_time(s)}" for f, s in self.figure_seconds.items())
            + f". The {header['runs']} optimisation runs took {_fmt_time(header['runs_s'])} together.",
        ]
        if header["reused_runs"]:
            md.append(
                f"- Resumed: {header['reused_runs']} of {header['runs']} runs were reused from an earlier, "
                "interrupted invocation (--resume); the wall times above count this invocation only, the "
                "run times in the tables are each run's own."
            )
        md += [f"- Skipped: {s}" for s in self.skipped]
        md += [
            "- Image size matters for α/β: L_content sums over the M_l positions of a layer while E_l divides by "
            "M_l², so at a given α/β the content term weighs (size / 512)² as much as in a 512 px run: at 128 px, 16x "
            "less. Small runs look more stylised than the paper's figures at the same α/β.",
        ]
        md += [
            "",
            "## Checks",
            "",
            f"{passed} of {len(self.checks)} passed.",
            "",
            _table(
                ["figure", "check", "result", "measured"],
                [[c.figure, c.name, "pass" if c.passed else "**FAIL**", c.detail] for c in self.checks],
            ),
        ]
        titles = {"fig1": "Figure 1: reconstructions", "fig2": "Figure 2: styles", "fig3": "Figure 3: layers x α/β"}
        for f in FIGURES:
            if f in self.markdown:
                md += ["", f"## {titles[f]}", "", self.markdown[f]]
        path = self.s.out / "report.md"
        path.write_text("\n".join(md) + "\n")
        return path


# -- the command ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gatys.reproduce",
        description="Reproduce Figures 1-3 of Gatys, Ecker & Bethge (2015) with measured numbers.",
        epilog="Defaults: "
        + ", ".join(f"{f} {DEFAULT_SIZE[f]} px x {DEFAULT_STEPS[f]} steps" for f in FIGURES)
        + ". Use --size 512 on a GPU for the paper's look.",
    )
    parser.add_argument("figure", choices=[*FIGURES, "all"], help="which figure(s) to render")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="longest side in px for every figure [" + ", ".join(f"{f} {v}" for f, v in DEFAULT_SIZE.items()) + "]",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimisation steps of every run [" + ", ".join(f"{f} {v}" for f, v in DEFAULT_STEPS.items()) + "]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the white-noise init of every run [0]")
    parser.add_argument("--weights", default=None, help="weights folder or Hub repo id [the default weights]")
    parser.add_argument(
        "--images",
        type=Path,
        default=DEFAULT_IMAGES,
        help=f"folder with {PHOTO}, starry_night.jpg and the paintings [{DEFAULT_IMAGES}]",
    )
    parser.add_argument(
        "--fig3-style",
        default=FIG3_DEFAULT_STYLE,
        help=f"painting of Fig. 3: a file name in --images or a path [{FIG3_DEFAULT_STYLE}]",
    )
    parser.add_argument(
        "--sheet-format",
        choices=["png", "jpg"],
        default="png",
        help="format of the contact sheets (jpg: small files for docs) [png]",
    )
    parser.add_argument(
        "--init",
        choices=["noise", "preset"],
        default="noise",
        help="start of the Fig. 2 and 3 runs: full-range uniform white noise as in the paper, or the "
        "preset's own init (noise of σ 0.001 around grey) [noise]",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse runs already in --out with the same settings (their image and .json) instead of "
        "running them again; for long runs that were interrupted",
    )
    parser.add_argument("--device", default=None, help="force a device (cpu, cuda); default: accelerate's pick")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return parser


def _err(message: str) -> int:
    print(f"gatys.reproduce: error: {message}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace) -> Settings:
    figures = FIGURES if args.figure == "all" else (args.figure,)
    for name, value, minimum in (("--size", args.size, 32), ("--steps", args.steps, 2)):
        if value is not None and value < minimum:
            raise GatysError(f"{name} must be at least {minimum}, got {value}")
    images = args.images
    if not images.is_dir():
        raise GatysError(
            f"images folder {images} not found; pass --images DIR holding {PHOTO}, starry_night.jpg "
            "and the paintings (see ../shared/README.md)"
        )
    needed = [PHOTO]
    if "fig1" in figures:
        needed += list(FIG1_STYLE_IMAGES)
    for name in dict.fromkeys(needed):
        if not (images / name).is_file():
            raise GatysError(f"{name} not found in {images}; the figures need it")
    fig3_style = Path(args.fig3_style)
    if "fig3" in figures:
        fig3_style = fig3_style if fig3_style.is_file() else images / args.fig3_style
        if not fig3_style.is_file():
            raise GatysError(f"Fig. 3 painting {args.fig3_style} not found (looked in {images} too)")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GatysError(f"cannot create output folder {args.out}: {e.strerror}") from e
    if not os.access(args.out, os.W_OK):
        raise GatysError(f"output folder {args.out} is not writable")
    return Settings(
        figures=figures,
        out=args.out,
        images=images,
        size={f: args.size or DEFAULT_SIZE[f] for f in FIGURES},
        steps={f: args.steps or DEFAULT_STEPS[f] for f in FIGURES},
        seed=args.seed,
        fig3_style=fig3_style,
        sheet_format=args.sheet_format,
        init=args.init,
        resume=args.resume,
        quiet=args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .transfer import StyleTransfer

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    try:
        settings = _settings(args)
        st = StyleTransfer.from_pretrained(args.weights, device=args.device)
        repro = Reproduction(st, settings, argv)
        jobs = repro.plan()
        say(
            f"gatys.reproduce: {', '.join(settings.figures)} with {st.description}; {len(jobs)} runs, "
            f"{sum(j.steps for j in jobs)} steps; writing to {settings.out}"
        )
        for s in repro.skipped:
            say(f"gatys.reproduce: {s}")
        if not jobs and "fig2" not in settings.figures:
            raise GatysError("nothing to run")
        say("gatys.reproduce: calibrating (a few steps at each size) ...")
        painting = (
            im.load_image(settings.images / "starry_night.jpg", max_side=1024, name="starry_night.jpg")
            if (settings.images / "starry_night.jpg").is_file()
            else repro.photo
        )
        per_step = repro.estimate(jobs, painting) if jobs else {}
        est = sum(j.estimate for j in jobs)
        repro.data["calibration"] = per_step
        repro.data["estimate_s"] = est
        say(
            "gatys.reproduce: "
            + (
                "".join(f"{v:.3f} s per step at {k} px, " for k, v in per_step.items())
                or "every run reused from --out, "
            )
            + f"estimated total {_fmt_time(est)} (the measured losses and checks follow in report.md)"
        )
        start = time.perf_counter()
        progress = Progress(jobs, args.quiet)
        try:
            repro.run(jobs, progress)
        finally:
            progress.close()
        repro.data["wall_s"] = time.perf_counter() - start
        report = repro.write_report()
    except GatysError as e:
        return _err(str(e))
    except KeyboardInterrupt:
        print("gatys.reproduce: interrupted; the report holds the figures finished so far", file=sys.stderr)
        return 130
    failed = [c for c in repro.checks if not c.passed]
    say(
        f"gatys.reproduce: done in {_fmt_time(repro.data['wall_s'])} (estimated {_fmt_time(est)}); "
        f"{len(repro.checks) - len(failed)} of {len(repro.checks)} checks passed; report: {report}"
    )
    for c in failed:
        say(f"gatys.reproduce: check failed: [{c.figure}] {c.name}: {c.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

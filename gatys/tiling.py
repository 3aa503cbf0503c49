"""Outputs bigger than memory, for both methods: tiles, feathered blending, a memory model, tiled runs.

Optimisation (:func:`run_tiled`, used by :meth:`gatys.StyleTransfer.stylize` when a run does not fit
``max_memory``) goes coarse to fine: whole-image scales up to the largest size that fits, then each finer
scale tile by tile, every tile starting from the upsampled previous scale. What was taken from where:

- Coarse to fine with the finest scales tiled, each started from the upsampled coarser result: crowsonkb's
  style-transfer-pytorch and jcjohnson's multires recipe run the coarse scales whole; ProGamerGov's
  neural-style-pt "multires + tiles" scripts (and Gatys's own high-resolution notes, Gatys et al. 2017
  "Controlling perceptual factors") stylise the big image only as a refinement of a coarse whole-image result.
- **Global** style targets, and the whole image's objective: each tile minimises the *whole image's* loss with
  only its own pixels free. L_content is a sum over positions, so the tile's part is its own crop's. E_l
  compares the whole image's Gram matrix G^l with the Gram matrix A^l of the *whole* style image at the
  scale's style size (summed block by block when it does not fit in memory; exact, since G = Σ_positions
  f fᵀ and each block keeps a margin wider than conv5_1's receptive field): the tile's target is A^l minus the
  Gram of every other position (:func:`tile_targets`). So statistics match the whole painting across the
  picture, without forcing each tile to hold all of it, as tiling tools that style each tile as its own
  picture (or against its own style crop) do, and without the style drifting from tile to tile. Tiles are
  visited in turn and each sees the others' changes (block-coordinate descent, a Gauss-Seidel sweep). The
  stroke size stays tied to the style size relative to the output (``style_scale``), so strokes do not
  shrink as the output grows; the older recipe of a style scale of √(number of tiles) is not needed.
- Seams: overlapping tiles blended with feathered weights that sum to one (the overlap-and-feather of
  neural-style-pt's tiling scripts and of image stitching), and the grid shifted by half its spacing on the
  second pass over a scale, so no tile border stays in one place (the per-iteration random tile offsets of
  MultiDiffusion / Tiled Diffusion, made deterministic and per pass).
- A run started from the photo gets the photo's detail above the coarse scale's resolution back when a tiled
  scale starts (a Laplacian-pyramid band), which a few steps per tile would not paint back.

Feed-forward (:func:`feedforward_tiled`, used by :meth:`gatys.FastStyle.stylize`): overlapping tiles, each run
with a halo of context (cropped away) and feather-blended; every instance-norm layer normalises with the
mean and variance of a downscaled whole-image pass instead of the tile's own (the tile's own statistics change
the look from tile to tile; ``benchmarks/tiling.py`` measures how much).

The memory model counts the network's activations per pixel from its layout (:func:`activation_elements`)
and multiplies by constants measured here as peak RSS (:data:`BYTES_PER_ACTIVATION`, ...).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import _optimize, allocator
from . import image as im
from .errors import ConfigError
from .losses import gram_matrix
from .presets import Preset
from .vgg import VGGFeatures, walk

if TYPE_CHECKING:
    from .transfer import Plan, StyleTransfer, StylizeOutput, _Recorder

__all__ = [
    "Schedule",
    "Tile",
    "TilingReport",
    "blend_weights",
    "feedforward_tiled",
    "layout",
    "parse_memory",
    "plan_schedule",
    "seam_ratio",
]

#: Peak bytes per activation element of one optimisation step (forward, backward, loss terms), fitted to peak
#: RSS measured here (2-core CPU, HED VGG-16, ``recommended``: Fourier, blur pooling, gradient balance, 25 L-BFGS
#: steps): 5186 B/px over the loaded process at 768x576 (3974 at 384x288) = 18 B x 266 activation elements per
#: pixel up to conv5_1 + the L-BFGS images below. The 1024 px runs of benchmarks/tiling.py check it.
BYTES_PER_ACTIVATION = 18.0
#: Image-sized float32 RGB tensors one step holds besides the network: the image, its gradient, the Fourier
#: coefficients, the best image, 2 x 20 L-BFGS curvature pairs and the search direction (Adam: 6).
LBFGS_IMAGES = 48
ADAM_IMAGES = 8
#: Image-sized float32 RGB tensors a tiled scale holds for the whole image (content, start, blended result,
#: the upsampling's temporary) plus the blend weights' sum (one channel).
WHOLE_IMAGES = 4.5
#: Feed-forward: peak bytes per pixel per channel of the network's first layer (inference, fp32), measured as
#: peak RSS over the loaded process with starry-night (16 channels): 567 B/px at 512 px, 530 at 1024 px.
FEEDFORWARD_BYTES = 36.0
#: Share of the budget (less what the process holds) that the optimisation plans to use.
HEADROOM = 0.75
#: Smallest tile side the optimisation accepts; below it the borders would be most of the tile.
MIN_TILE = 64
#: Passes over each tiled scale, each with its grid offset by another fraction of the stride.
PASSES = 2
#: Side of the downscaled whole-image pass that gives the feed-forward instance-norm statistics.
STATS_SIDE = 1024
#: Context around a feed-forward tile, cropped away after the pass (about the network's receptive radius).
FEEDFORWARD_HALO = 64

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(value: str | int | float) -> int:
    """Bytes from ``"2GB"``, ``"512MB"``, ``"1.5 GiB"``, ``"800M"`` or a number of bytes.

    Units are binary (1 GB = 1 GiB = 2³⁰ bytes), as memory is sold and reported.

    Example:
        >>> parse_memory("2GB")
        2147483648
    """
    if isinstance(value, bool):
        raise ConfigError(f"max_memory must be a size such as 2GB or 512MB, got {value!r}")
    if isinstance(value, (int, float)):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(value))
        if not m:
            raise ConfigError(f"max_memory must be a size such as 2GB or 512MB, got {value!r}")
        n = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if not math.isfinite(n) or n <= 0:
        raise ConfigError(f"max_memory must be a positive size such as 2GB or 512MB, got {value!r}")
    return int(n)


def format_bytes(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GB"
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


# -- layout and blending ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tile:
    """A rectangle of the image: rows ``top .. top + height``, columns ``left .. left + width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        rows, cols = self.slices
        return t[..., rows, cols]


def axis_segments(length: int, tile: int, overlap: int, shift: float = 0.0) -> list[tuple[int, int]]:
    """(start, size) of segments of at most ``tile`` px covering ``0 .. length``, neighbours sharing at least
    ``overlap`` px.

    The fewest segments that fit, all of one size and evenly spaced (so the overlap is no larger than it need
    be); ``shift`` (a fraction of the spacing, 0 <= shift < 1) moves the grid, cutting the segments at the ends
    short, so each pass over a scale can put its borders elsewhere at the cost of one more overlap.
    """
    if tile >= length:
        return [(0, length)]
    if tile <= overlap:
        raise ConfigError(f"tile overlap {overlap} must be smaller than the tile side {tile}")
    n = max(2, -(-(length - overlap) // (tile - overlap)))
    side = min(tile, -(-(length + (n - 1) * overlap) // n))
    stride = (length - side) / (n - 1)
    shift %= 1.0
    ks = range(n) if shift == 0 else range(-1, n)
    segments = []
    for k in ks:
        start = math.floor((k + shift) * stride)  # floors: neighbours never get closer than the stride allows
        lo, hi = max(0, start), min(length, start + side)
        if hi > lo:
            segments.append((lo, hi - lo))
    # A sliver at an end grows inwards to the overlap plus 16 px (it only overlaps its neighbour more).
    least = min(side, overlap + 16)
    if segments[0][1] < least:
        segments[0] = (0, least)
    if segments[-1][1] < least:
        segments[-1] = (length - least, least)
    return segments


def layout(height: int, width: int, tile: int, overlap: int, shift: float = 0.0) -> list[Tile]:
    """Tiles of about ``tile`` x ``tile`` px covering the image exactly, neighbours sharing ``overlap`` px or more;
    ``shift`` moves the grid by that fraction of its spacing (see :func:`axis_segments`)."""
    return [
        Tile(y, x, th, tw)
        for y, th in axis_segments(height, tile, overlap, shift)
        for x, tw in axis_segments(width, tile, overlap, shift)
    ]


def _ramp(n: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    r = torch.ones(n)
    if overlap <= 0:
        return r
    pos = torch.arange(n, dtype=torch.float32) + 0.5
    if ramp_start:
        r = torch.minimum(r, pos / overlap)
    if ramp_end:
        r = torch.minimum(r, (n - pos) / overlap)
    return r


def window(t: Tile, height: int, width: int, overlap: int) -> torch.Tensor:
    """The feather of one tile, (h, w): 1 inside, falling linearly over ``overlap`` px towards each side that
    lies inside the image (not towards the image's own borders)."""
    wy = _ramp(t.height, overlap, t.top > 0, t.top + t.height < height)
    wx = _ramp(t.width, overlap, t.left > 0, t.left + t.width < width)
    return wy[:, None] * wx[None, :]


def blend_weights(tiles: Sequence[Tile], height: int, width: int, overlap: int) -> list[torch.Tensor]:
    """Each tile's blending weights, (h, w) per tile: its feather divided by the sum of all feathers there,
    so the weights of the tiles over any pixel sum to one."""
    total = torch.zeros(height, width)
    windows = [window(t, height, width, overlap) for t in tiles]
    for t, w in zip(tiles, windows):
        t.crop(total).add_(w)
    return [w / t.crop(total) for t, w in zip(tiles, windows)]


def border_mask(tiles: Sequence[Tile], height: int, width: int, band: int = 1, shift: int = 0) -> torch.Tensor:
    """True within ``band`` px of the tile edges that lie inside the image (moved by ``shift`` px across them)."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for t in tiles:
        for y in (t.top, t.top + t.height):
            if 0 < y < height and 0 < y + shift < height:
                mask[max(0, y + shift - band) : y + shift + band, t.left : t.left + t.width] = True
        for x in (t.left, t.left + t.width):
            if 0 < x < width and 0 < x + shift < width:
                mask[t.top : t.top + t.height, max(0, x + shift - band) : x + shift + band] = True
    return mask


#: Where :func:`seam_ratio` compares: lines parallel to the borders, 16 and 32 px away on either side, so at the
#: same phase of VGG's 16 px pooling lattice and the TransformNet's 4 px one (both leave periodic texture).
CONTROL_SHIFTS = (-32, -16, 16, 32)
COARSE_CONTROL_SHIFTS = (-128, -96, -64, 64, 96, 128)


def seam_ratio(
    image: torch.Tensor | Image.Image,
    tiles: Sequence[Tile],
    band: int = 1,
    control: Sequence[int] | None = CONTROL_SHIFTS,
    scale: int = 1,
) -> float:
    """Mean gradient magnitude on the tiles' inner borders over the mean on control lines (1: no seam there).

    ``control``: the borders moved by these many px (the default compares like with like: the same phase of the
    networks' lattices, nearby content); None compares with every other pixel. A visible seam is far above 1.1.
    ``scale``: measure on ``scale`` x ``scale`` block means, against lines 64 to 128 px away (the default
    ``control`` then), so that a change of tone from tile to tile, which the feathering spreads over the
    overlap and a 1 px gradient does not see, becomes a step (``scale=32`` in ``benchmarks/tiling.py``).
    """
    x = im.to_tensor(image) if isinstance(image, Image.Image) else image.detach().float().cpu()
    x = x[0] if x.ndim == 4 else x
    if scale > 1:
        x = F.avg_pool2d(x[None], scale, scale, ceil_mode=True)[0]
        tiles = [
            Tile(
                round(t.top / scale),
                round(t.left / scale),
                max(1, round(t.height / scale)),
                max(1, round(t.width / scale)),
            )
            for t in tiles
        ]
        if control is not None:
            control = COARSE_CONTROL_SHIFTS if control is CONTROL_SHIFTS else control
            control = sorted({round(c / scale) for c in control} - {0})
    dy = F.pad(x[:, 1:] - x[:, :-1], (0, 0, 0, 1))
    dx = F.pad(x[:, :, 1:] - x[:, :, :-1], (0, 1, 0, 0))
    mag = (dx * dx + dy * dy).sum(0).sqrt()
    h, w = mag.shape
    mask = border_mask(tiles, h, w, band)
    if control is None:
        other = ~mask
    else:
        other = torch.zeros_like(mask)
        for s in control:
            other |= border_mask(tiles, h, w, band, s)
        other &= ~mask
    if not mask.any() or not other.any():
        return 1.0
    return float(mag[mask].mean() / mag[other].mean().clamp_min(1e-12))


# -- the memory model ---------------------------------------------------------------------------------------


def process_memory(device: torch.device | str = "cpu") -> int:
    """What the process holds now: resident set size on the CPU, allocated memory on a GPU.

    On the CPU, free heap memory is first given back to the system (``malloc_trim``), so memory a finished
    computation freed (say, the time estimate's steps) is not counted as held.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    from .allocator import _libc

    libc = _libc()
    if libc is not None:
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim(0)
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux kB; an upper bound


def default_budget(device: torch.device | str = "cpu") -> int:
    """``max_memory`` when none is given: what the process holds plus 80 % of what the device has free."""
    device = torch.device(device)
    if device.type == "cuda":
        gpu_free, _ = torch.cuda.mem_get_info(device)
        return process_memory(device) + int(0.8 * gpu_free)
    free: int | None = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    if free is None:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return process_memory(device) + int(0.8 * free)


def activation_elements(model: VGGFeatures, layers: Sequence[str]) -> float:
    """Activation elements per input pixel of a forward pass up to the deepest of ``layers``."""
    order = model.available_layers
    if not layers:
        return 0.0
    deepest = max(order.index(n) for n in model.check_layers(layers))
    total = 0.0
    for layer in walk(model.config.channels):
        if order.index(layer.name) > deepest:
            break
        total += layer.out_channels / 4 ** (layer.block - 1)
    return total


#: Peak bytes per pixel per first-layer channel of a Gram pass (a no-grad forward up to conv5_1 that keeps the
#: style layers' features, then their Gram matrices), measured as peak RSS over the process here: 2250 B/px
#: (style image) and 2500 B/px (the image being optimised, with the scale's whole-image tensors) in 736 px
#: crops with HED VGG-16 and blur pooling = 35-40 x 64 channels. The earlier guess, 16, put the 2 GB runs'
#: peaks 0.7-0.9 GB above the plan (benchmarks/README.md "Large outputs").
NOGRAD_BYTES = 40.0


def nograd_bytes(model: VGGFeatures, pixels: int) -> int:
    """Peak bytes of a Gram pass (forward without autograd, the style layers' features kept) over ``pixels``."""
    return int(NOGRAD_BYTES * model.config.channels[0][0] * pixels)


def step_bytes(model: VGGFeatures, settings: Preset, pixels: int) -> int:
    """Peak bytes one optimisation step of an image of ``pixels`` px adds (network, loss, optimiser state)."""
    layers = [*settings.content_layers, *settings.style_layers]
    images = LBFGS_IMAGES if settings.optimizer == "lbfgs" else ADAM_IMAGES
    per_pixel = BYTES_PER_ACTIVATION * activation_elements(model, layers) + images * 12
    return int(per_pixel * pixels)


# -- the schedule -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScalePlan:
    """One scale of a run under a budget: whole (``tile`` 0) or tiled with square tiles of side ``tile``."""

    size: int  # longest side
    shape: tuple[int, int]  # (width, height)
    steps: int  # steps per tile (tiled) or of the whole image, over all passes
    tile: int = 0
    overlap: int = 0
    passes: int = 1
    gram_tile: int = 0  # side of the no-grad passes that sum the whole image's Gram matrices

    def pass_steps(self) -> list[int]:
        n = max(1, min(self.passes, self.steps // 2))  # at least 2 evaluations a pass: L-BFGS moves on the 2nd
        return [self.steps // n + (1 if k < self.steps % n else 0) for k in range(n)]

    def shift(self, k: int) -> float:
        """Grid shift of pass ``k``: a different fraction of the spacing each pass (0, 1/2 for two passes)."""
        return k / max(1, len(self.pass_steps()))

    def tiles(self, k: int) -> list[Tile]:
        w, h = self.shape
        return layout(h, w, self.tile, self.overlap, self.shift(k)) if self.tile else [Tile(0, 0, h, w)]

    @property
    def total_steps(self) -> int:
        return sum(n * len(self.tiles(k)) for k, n in enumerate(self.pass_steps()))

    @property
    def pixel_steps(self) -> int:
        """Σ over steps of the pixels each step processes (what the time estimate scales with)."""
        return sum(n * sum(t.height * t.width for t in self.tiles(k)) for k, n in enumerate(self.pass_steps()))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a run fits its budget: the scales, each whole or tiled, and the memory figures behind them."""

    scales: tuple[ScalePlan, ...]
    budget: int
    base: int  # bytes the process held when planned

    @property
    def tiled(self) -> bool:
        return any(s.tile for s in self.scales)

    @property
    def total_steps(self) -> int:
        return sum(s.total_steps for s in self.scales)

    def describe(self) -> str:
        parts = []
        for s in self.scales:
            w, h = s.shape
            if s.tile:
                n = [len(s.tiles(k)) for k in range(len(s.pass_steps()))]
                parts.append(f"{w}x{h} in {'+'.join(map(str, n))} tiles of {s.tile} px x {s.steps} steps")
            else:
                parts.append(f"{w}x{h} whole x {s.steps} steps")
        return f"{'; '.join(parts)} (budget {format_bytes(self.budget)})"


def _fits_whole(model: VGGFeatures, settings: Preset, shape: tuple[int, int], room: int) -> bool:
    w, h = shape
    return step_bytes(model, settings, w * h) + int(12 * w * h) <= room


def _tile_side(model: VGGFeatures, settings: Preset, room: int, limit: int) -> int:
    """The largest multiple of 16 (at most ``limit``) whose square tile's step fits in ``room``; 0 if none."""
    per_pixel = step_bytes(model, settings, 1_000_000) / 1_000_000
    side = int(math.sqrt(max(room, 0) / per_pixel)) // 16 * 16
    return min(side, limit)


def plan_schedule(
    model: VGGFeatures, settings: Preset, content_size: tuple[int, int], budget: int, base: int
) -> Schedule:
    """Fit a run into ``budget`` bytes (the process holding ``base`` already).

    The preset's scales that fit whole stay whole; if none does, a first whole scale at the largest size that
    fits is added; the scales above are tiled, with intermediate scales (factor 2) so that no tiled scale
    starts from one more than 2.5x smaller. Raises a one-line ConfigError when not even one tile fits.
    """
    sizes, steps = settings.scale_sizes(), settings.scale_steps()
    # Plan to 3/4 of what is left: the heap fragments between phases of different sizes (measured: the 2048 px
    # run of benchmarks/tiling.py peaked at 1.4x its 2 GB budget when planned to the full budget).
    room = int((budget - base) * HEADROOM)
    shape = {s: im.longest_side_shape(content_size, s) for s in sizes}
    if all(_fits_whole(model, settings, shape[s], room) for s in sizes):
        return Schedule(tuple(ScalePlan(s, shape[s], n) for s, n in zip(sizes, steps)), budget, base)
    whole = [(s, n) for s, n in zip(sizes, steps) if _fits_whole(model, settings, shape[s], room)]
    if not whole:
        lo, hi = 0, sizes[-1]  # the largest longest side that fits whole
        while hi - lo > 1:
            mid = (lo + hi) // 2
            fits = _fits_whole(model, settings, im.longest_side_shape(content_size, mid), room)
            lo, hi = (mid, hi) if fits else (lo, mid)
        coarse = settings.coarse_steps if settings.coarse_steps is not None else settings.steps
        if lo >= im.MIN_SIDE * 4:
            whole = [(lo, coarse)]
    tiled = [(s, n) for s, n in zip(sizes, steps) if not whole or s > whole[-1][0]]
    if whole:
        coarse = settings.coarse_steps if settings.coarse_steps is not None else settings.steps
        extra = []
        s = tiled[0][0]
        while s / 2 > whole[-1][0] * 1.25:
            s = round(s / 2)
            extra.append((s, coarse))
        tiled = list(reversed(extra)) + tiled
    plans = [ScalePlan(s, im.longest_side_shape(content_size, s), n) for s, n in whole]
    for s, n in tiled:
        w, h = im.longest_side_shape(content_size, s)
        tile_room = room - int(WHOLE_IMAGES * 12 * w * h)
        side = _tile_side(model, settings, tile_room, max(w, h))
        if side < min(MIN_TILE, w, h) or (side < MIN_TILE and side < max(w, h)):
            need = base + int(WHOLE_IMAGES * 12 * w * h) + step_bytes(model, settings, MIN_TILE * MIN_TILE)
            raise ConfigError(
                f"max_memory {format_bytes(budget)} is too small for even one {MIN_TILE} px tile of a {w}x{h} output "
                f"(the process already holds {format_bytes(base)}); give at least {format_bytes(need * 1.05)}"
            )
        overlap = max(8, min(64, side // 4)) // 8 * 8
        # The Gram sums run without autograd in larger tiles, but no larger than the memory a tile's steps
        # left in the heap can serve (glibc keeps it: gatys.allocator); larger ones pushed the 1024 px
        # benchmark's peak RSS from 1.21 to 1.87 GB under a 1.5 GB budget.
        heap_side = math.sqrt(step_bytes(model, settings, side * side) / 2 / nograd_bytes(model, 1))
        gram_tile = max(side, int(heap_side) // 16 * 16)
        plans.append(ScalePlan(s, (w, h), n, tile=side, overlap=overlap, passes=PASSES, gram_tile=gram_tile))
    return Schedule(tuple(plans), budget, base)


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(a, b) of t = a + b x pixels through two (pixels, seconds) points; b at least a quarter of the larger's
    per-pixel time (timing noise on a busy machine must not make big images free)."""
    (p1, t1), (p2, t2) = points
    b = max((t2 - t1) / (p2 - p1), t2 / p2 / 4)
    return max(0.0, t1 - b * p1), b


def _step_seconds(st: StyleTransfer, plan: Plan) -> tuple[tuple[float, float], tuple[float, float]]:
    """((a, b) of a step, (a, b) of a forward pass without autograd): each one's time a + b x pixels here,
    fitted to timings of 128 and 256 px images (the best of two)."""
    settings = plan.settings
    layers = [*settings.content_layers, *settings.style_layers]
    steps, forwards = [], []
    for side in (128, 256):
        x = torch.rand(1, 3, side, side, device=st.device)
        styles = [x] if plan.styles else []
        targets = _optimize.build_targets(st.model, settings, x, styles, [1.0] * len(styles))
        times, ftimes = [], []
        for _ in range(2):
            xs = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss, _ = _optimize.objective(st.model, xs, targets, plan.precision)
            loss.backward()
            if st.device.type == "cuda":
                torch.cuda.synchronize(st.device)
            t1 = time.perf_counter()
            with torch.no_grad():
                st.model(x, layers, settings.pooling)
            if st.device.type == "cuda":
                torch.cuda.synchronize(st.device)
            times.append(t1 - t0)
            ftimes.append(time.perf_counter() - t1)
        steps.append((side * side, min(times)))
        forwards.append((side * side, min(ftimes)))
    return _fit(steps), _fit(forwards)


def gram_pixels(h: int, w: int, tile: int, margin: int = 96) -> int:
    """Pixels :func:`global_grams` runs through the network for an (h, w) image: its cores with their margins."""
    if max(h, w) <= tile:
        return h * w
    core = max(ALIGN, (tile - 2 * margin) // ALIGN * ALIGN)

    def spans(n: int) -> int:
        return sum(min(n, y + core + margin) - max(0, y - margin) for y in range(0, n, core))

    return spans(h) * spans(w)


def estimate_seconds(st: StyleTransfer, plan: Plan, schedule: Schedule) -> float:
    """Seconds the run will take here, from a step's and a forward pass's times fitted as a + b x pixels (timed
    at 128 and 256 px): every step of every tile; per tile, three forward passes (its Gram before and after,
    its content features); per pass, the whole image's Gram (a forward pass over its cores and margins); per
    tiled scale, the style image's Gram the same way and the style balance (a step per style layer).

    The forward passes are what a tiled run adds to the steps: measured by cProfile on a 1536 px run under
    1.5 GB (4 steps per tile), 99 s of steps against 107 s of Gram and target passes.
    """
    (a, b), (fa, fb) = _step_seconds(st, plan)
    settings = plan.settings
    layers = len(settings.style_layers) if settings.style_balance == "gradient" else 0
    total = 0.0
    for sp in schedule.scales:
        w, h = sp.shape
        if not sp.tile:
            total += sp.steps * (a + b * w * h) + layers * (a + b * w * h)
            continue
        total += layers * (a + b * sp.tile * sp.tile)
        style_side = max(im.MIN_SIDE, round(sp.size * settings.style_scale))
        for img in plan.styles:
            sw, sh = im.longest_side_shape(img.size, style_side)
            total += fa + fb * gram_pixels(sh, sw, sp.gram_tile or sp.tile)
        for k, n in enumerate(sp.pass_steps()):
            for t in sp.tiles(k):
                total += n * (a + b * t.height * t.width) + 3 * (fa + fb * t.height * t.width)
            if plan.styles:
                total += fa + fb * gram_pixels(h, w, sp.gram_tile or sp.tile)
    return total


# -- tiled optimisation -------------------------------------------------------------------------------------


@dataclasses.dataclass
class TilingReport:
    """What a tiled run did: its schedule, the last pass's tiles (for seam measures) and its time estimate."""

    schedule: Schedule
    last_tiles: list[Tile]
    overlap: int


def _stride(name: str) -> int:
    """Pixels per feature cell of ``convX_Y`` (2^(X-1)) or ``poolX`` (2^X)."""
    block = int(name[4] if name.startswith("pool") else name[4 : name.index("_")])
    return 2 ** (block if name.startswith("pool") else block - 1)


ALIGN = 16  # pixels per feature cell at conv5_*: regions on this grid cover whole cells at every layer


@torch.no_grad()
def global_grams(
    model: VGGFeatures,
    image: torch.Tensor,
    layers: Sequence[str],
    pooling: str,
    tile: int,
    margin: int = 96,
    region: Tile | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """The Gram matrices of ``image`` (1, 3, H, W) over all positions (or those of ``region``), and each M_l.

    G = Σ over positions of f fᵀ, so the Gram of the whole image is the sum of the Grams of disjoint core
    regions; each core is computed with ``margin`` px of context, which covers conv5_1's receptive field, so
    its features are the whole image's (``tests/test_tiling.py`` checks the sum is exact). Cores lie on a grid
    of :data:`ALIGN` px, so a region's positions are exactly a subset of the whole image's. One core when the
    image fits in ``tile``: then this is build_targets' Gram.
    """
    _, _, h, w = image.shape
    top, left, bottom, right = 0, 0, h, w
    if region is not None:
        top, left = region.top // ALIGN * ALIGN, region.left // ALIGN * ALIGN
        bottom = min(h, -(-(region.top + region.height) // ALIGN) * ALIGN)
        right = min(w, -(-(region.left + region.width) // ALIGN) * ALIGN)
    grams: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    whole = region is None and max(h, w) <= tile
    core = max(h, w) if whole else max(ALIGN, (tile - 2 * margin) // ALIGN * ALIGN)
    for y0 in range(top, bottom, core):
        for x0 in range(left, right, core):
            y1, x1 = min(bottom, y0 + core), min(right, x0 + core)
            cy, cx = max(0, y0 - margin), max(0, x0 - margin)
            crop = image[..., cy : min(h, y1 + margin), cx : min(w, x1 + margin)]
            feats = model(crop, list(layers), pooling)
            for name in layers:
                f, s = feats[name], _stride(name)
                r1 = f.shape[-2] if y1 == h else (y1 - cy) // s
                c1 = f.shape[-1] if x1 == w else (x1 - cx) // s
                part = f[..., (y0 - cy) // s : r1, (x0 - cx) // s : c1]
                if part.numel() == 0:
                    continue
                g = gram_matrix(part)
                grams[name] = g if name not in grams else grams[name] + g
                counts[name] = counts.get(name, 0) + part.shape[-2] * part.shape[-1]
    return grams, counts


def _scale_grams(
    st: StyleTransfer, plan: Plan, size: int, content_y: torch.Tensor | None, tile: int
) -> dict[str, torch.Tensor]:
    """The blended A^l of the style images at this scale's style size, per position (divided by M_l)."""
    settings = plan.settings
    style_size = max(im.MIN_SIDE, round(size * settings.style_scale))
    layers = list(settings.layer_weights)
    total: dict[str, torch.Tensor] = {}
    for img, b in zip(plan.styles, plan.blend):
        if b == 0:
            continue
        s = st._prepare(img, style_size, "style image")
        if settings.preserve_colors and content_y is not None:
            s = im.match_luminance(im.luminance(s), content_y)
        grams, n = global_grams(st.model, s, layers, settings.pooling, tile)
        del s
        for name in layers:
            g = grams[name] * (b / n[name])
            total[name] = g if name not in total else total[name] + g
    return total


@dataclasses.dataclass
class _Global:
    """A tiled scale's whole-image state: A^l at the whole image's M_l, and G^l of the image as it is now."""

    targets: dict[str, torch.Tensor]  # A^l x M_l (the generated image's positions), as build_targets scales it
    grams: dict[str, torch.Tensor]  # G^l of the current whole image
    counts: dict[str, int]  # M_l of the whole image
    layers: list[str]
    pooling: str


@torch.no_grad()
def tile_targets(
    st: StyleTransfer,
    settings: Preset,
    net_crop: torch.Tensor,
    own: dict[str, tuple[torch.Tensor, int]],
    state: _Global,
    content_scale: float,
    style_weights: dict[str, float],
) -> _optimize.Targets:
    """One tile's targets, so that its objective is the whole image's with only this tile's pixels free.

    L_content is a sum over positions: the tile's part is its own crop's. E_l compares the whole image's
    G^l with A^l: with G^l = G_rest + G_tile(x), G_rest (every other position, fixed during the tile) is moved
    into the target (A' = A - G_rest) and the M_l² normalisation corrected by a layer weight (M_tile / M)².
    A tile step is thus a step on the whole image's objective (up to the features within the receptive field
    of the tile's border), a block-coordinate descent; the style targets stay the global ones.
    """
    model = st.model
    c_layers = list(settings.content_layers)
    cfeats = model(net_crop, c_layers, settings.pooling) if c_layers else {}
    grams, weights = {}, {}
    for name in state.layers:
        g, m_tile = own[name]
        grams[name] = state.targets[name] - (state.grams[name] - g)
        weights[name] = style_weights[name] * (m_tile / state.counts[name]) ** 2
    alpha = settings.alpha_beta * model.config.alpha_beta_scale * content_scale if state.layers else 1.0
    return _optimize.Targets(
        content={n: cfeats[n].detach().clone() for n in c_layers},
        content_weights={n: 1.0 / len(c_layers) for n in c_layers},
        grams=grams,
        style_weights=weights,
        alpha=alpha,
        tv_weight=settings.tv_weight * content_scale if state.layers else 0.0,
        pooling=settings.pooling,
    )


def _balance(st: StyleTransfer, settings: Preset, xt: torch.Tensor, plain: _optimize.Targets) -> dict[str, float]:
    """The style layers' weights: the gradient balance (settings.style_balance) at a scale's first tile.

    Measured on the tile's own E_l (normalised by its M_l², which differs from the whole image's by nearly
    the same factor for every layer, so the split between layers is the whole image's).
    """
    if settings.style_balance != "gradient" or not plain.grams:
        return dict(settings.layer_weights)
    unweighted = dataclasses.replace(plain, style_weights=dict(settings.layer_weights))
    return _optimize.balance_style_weights(st.model, xt, unweighted)


@torch.no_grad()
def _crop_grams(model: VGGFeatures, x: torch.Tensor, state: _Global) -> dict[str, tuple[torch.Tensor, int]]:
    """G^l and M_l of a tile's crop as the tile's objective computes them (the crop alone)."""
    feats = model(x, state.layers, state.pooling) if state.layers else {}
    return {n: (gram_matrix(f), f.shape[2] * f.shape[3]) for n, f in feats.items()}


def _tiled_scale(
    st: StyleTransfer, plan: Plan, index: int, sp: ScalePlan, previous: torch.Tensor, recorder: _Recorder, final_px: int
) -> tuple[torch.Tensor, list[Tile]]:
    """One scale tile by tile, in passes; returns the blended image and the last pass's tiles.

    Tiles are visited in order and each sees the others' updates (Gauss-Seidel): after a tile is blended in,
    the whole image's G^l is updated by the change of the tile's crop Gram (the change the tile's own objective
    saw); each pass starts from the whole image's G^l computed afresh, so the approximation does not drift.
    """
    settings = plan.settings
    w, h = sp.shape
    content = st._prepare(plan.content, sp.size, "content image")
    content_y = im.luminance(content) if settings.preserve_colors else None
    per_position = _scale_grams(st, plan, sp.size, content_y, sp.gram_tile or sp.tile) if plan.styles else {}
    del content_y
    x = F.interpolate(previous, size=(h, w), mode="bicubic", align_corners=False)
    if settings.init == "content" and plan.init_image is None:
        # Departure (a run that started from the photo): the upsampled coarse result has lost the photo's detail
        # above the coarse scale's resolution, which a few steps per tile do not paint back (measured in
        # benchmarks/tiling.py); add back the photo's own band that the round trip through that size removes.
        net = im.luminance(content) if settings.preserve_colors else content
        low = F.interpolate(F.interpolate(net, size=previous.shape[-2:], mode="area"), size=(h, w), mode="bicubic")
        x.add_(net).sub_(low)
        del low, net
    x.clamp_(0, 1)
    del previous
    content_scale = final_px / (h * w)  # as a whole-image scale: see StyleTransfer._run
    layers = list(per_position)
    state = _Global({}, {}, {}, layers, settings.pooling)
    style_weights: dict[str, float] | None = None
    tiles: list[Tile] = []
    for k, n in enumerate(sp.pass_steps()):
        tiles = sp.tiles(k)
        if layers:
            state.grams, state.counts = global_grams(st.model, x, layers, settings.pooling, sp.gram_tile or sp.tile)
            state.targets = {name: per_position[name] * state.counts[name] for name in layers}
        for t, wt in zip(tiles, blend_weights(tiles, h, w, sp.overlap)):
            crop = t.crop(content)
            net_crop = im.luminance(crop) if settings.preserve_colors else crop
            x0 = t.crop(x).clone().contiguous()
            own = _crop_grams(st.model, x0, state)
            xt = x0.clone().requires_grad_(True)
            if style_weights is None:  # the style layers' balance, once per scale at its first tile
                plain = tile_targets(st, settings, net_crop, own, state, content_scale, dict(settings.layer_weights))
                style_weights = _balance(st, settings, xt, plain)
            targets = tile_targets(st, settings, net_crop, own, state, content_scale, style_weights)
            scale = _optimize.Scale(index, n, crop, net_crop, [], content_scale)
            report = recorder.reporter(scale, settings)
            try:
                _optimize.optimize_targets(st.model, xt, settings, targets, n, plan.precision, report)
            except _optimize.Stop:
                recorder.stopped = True  # this tile is left out
                return x, tiles
            with torch.no_grad():
                # Feathered blend (the weights of the tiles over a pixel sum to one): each pixel moves by the
                # weighted mean of its tiles' updates.
                t.crop(x).add_(wt.to(xt) * (xt.detach() - x0))
            for name, (g, _) in _crop_grams(st.model, t.crop(x), state).items():
                state.grams[name] += g - own[name][0]
            del xt, x0, targets, own
            allocator.release_memory()  # see run_tiled
    return x, tiles


def run_tiled(
    st: StyleTransfer, plan: Plan, schedule: Schedule, recorder: _Recorder
) -> tuple[torch.Tensor, torch.Tensor, TilingReport]:
    """Optimise ``plan`` as ``schedule`` says; returns the image, the final content and the report."""
    settings = plan.settings
    final_w, final_h = schedule.scales[-1].shape
    x: torch.Tensor | None = None
    last: list[Tile] = []
    overlap = 0
    content = None
    for index, sp in enumerate(schedule.scales):
        if not sp.tile:
            scale = st._scale(plan, index, sp.size, sp.steps, final_w * final_h)
            x = st._start(plan, x, scale)
            report = recorder.reporter(scale, settings)
            content = scale.content
            try:
                _optimize.optimize_scale(st.model, x, settings, scale, plan.blend, plan.precision, report)
            except _optimize.Stop:
                recorder.stopped = True
                break
            # Tuned malloc keeps freed memory for the next step (gatys.allocator); between scales and tiles the
            # sizes change, the kept memory no longer fits them and the heap grows past the memory model
            # (measured: 3.05 GB peak RSS under a 2 GB budget at 2048 px). Give it back at each change.
            allocator.release_memory()
            continue
        if x is None:  # no whole scale fits: start from the run's initial image at a small size
            scale = st._scale(plan, index, im.MIN_SIDE * 4, 0, final_w * final_h)
            x = st._start(plan, None, scale)
        x, last = _tiled_scale(st, plan, index, sp, x.detach(), recorder, final_w * final_h)
        overlap = sp.overlap
        content = None
        if recorder.stopped:
            break
    if content is None:
        content = st._prepare(plan.content, max(x.shape[-2:]) if x is not None else 16, "content image")
    assert x is not None
    return x.detach(), content, TilingReport(schedule, last, overlap)


# -- tiled feed-forward -------------------------------------------------------------------------------------


def feedforward_bytes(net: nn.Module, pixels: int) -> int:
    """Peak bytes an inference pass of ``pixels`` px adds (fp32), from the width of the network's first layer."""
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    return int(FEEDFORWARD_BYTES * first.out_channels * pixels)


@contextlib.contextmanager
def _norm_stats(net: nn.Module, mode: str, stats: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
    """``record``: store each InstanceNorm's per-channel mean and variance; ``apply``: normalise with them."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    handles = []
    for i, m in enumerate(norms):

        def hook(mod: nn.InstanceNorm2d, args: tuple[torch.Tensor, ...], out: torch.Tensor, i: int = i) -> Any:
            x = args[0]
            if mode == "record":
                stats.append((x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True, unbiased=False)))
                return None
            mean, var = stats[i]
            y = (x - mean) * torch.rsqrt(var + mod.eps)
            if mod.affine:
                y = y * mod.weight.view(1, -1, 1, 1) + mod.bias.view(1, -1, 1, 1)
            return y

        handles.append(m.register_forward_hook(hook))
    try:
        yield
    finally:
        for hd in handles:
            hd.remove()


def feedforward_tiled(
    net: nn.Module,
    x: torch.Tensor,
    tile: int,
    *,
    overlap: int = 32,
    halo: int = FEEDFORWARD_HALO,
    global_stats: bool = True,
    stats_side: int = STATS_SIDE,
) -> tuple[torch.Tensor, list[Tile]]:
    """Run a TransformNet over ``x`` (1, 3, H, W) in overlapping tiles, blended with feathered weights.

    Each tile runs with ``halo`` px of context on each side (cropped away after). With ``global_stats`` every
    instance norm uses the mean and variance of one pass over ``x`` downscaled to ``stats_side`` px (its own
    size if smaller), so all tiles are normalised alike; without, each tile uses its own statistics.

    Returns:
        The output (1, 3, H, W) and the tiles.
    """
    _, _, h, w = x.shape
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    if global_stats:
        small = x
        if max(h, w) > stats_side:
            sw, sh = im.longest_side_shape((w, h), stats_side)
            small = F.interpolate(x, size=(sh, sw), mode="area")
        with _norm_stats(net, "record", stats):
            net(small)
        del small
    out = torch.empty_like(x)
    tiles = layout(h, w, tile, overlap)
    weights = blend_weights(tiles, h, w, overlap)
    with _norm_stats(net, "apply", stats) if global_stats else contextlib.nullcontext():
        for t, wt in zip(tiles, weights):
            # Crops start on the network's stride-4 lattice, so each tile samples the pixels as the whole pass does.
            top, left = max(0, t.top - halo) // 4 * 4, max(0, t.left - halo) // 4 * 4
            bottom, right = min(h, t.top + t.height + halo), min(w, t.left + t.width + halo)
            y = net(x[..., top:bottom, left:right])
            y = y[..., t.top - top : t.top - top + t.height, t.left - left : t.left - left + t.width]
            part = y.float() * wt.to(y)
            if t is tiles[0]:
                out.zero_()
            t.crop(out).add_(part)
    return out, tiles


def feedforward_tile_side(net: nn.Module, shape: tuple[int, int], budget: int, base: int) -> int:
    """The tile side (multiple of 16) for a feed-forward pass of a (width, height) image; 0 when it runs whole."""
    w, h = shape
    room = budget - base - int(3.5 * 12 * w * h)  # input, output, one tile's weights, the upsampling's copy
    if feedforward_bytes(net, w * h) <= room:
        return 0
    per_pixel = feedforward_bytes(net, 1_000_000) / 1_000_000
    side = int(math.sqrt(max(room, 0) / per_pixel)) - 2 * FEEDFORWARD_HALO
    side = side // 16 * 16
    if side < MIN_TILE:
        need = base + int(3.5 * 12 * w * h) + feedforward_bytes(net, (MIN_TILE + 2 * FEEDFORWARD_HALO) ** 2)
        raise ConfigError(
            f"max_memory {format_bytes(budget)} is too small for even one {MIN_TILE} px tile of a {w}x{h} output "
            f"(the process already holds {format_bytes(base)}); give at least {format_bytes(need * 1.05)}"
        )
    return side


def run_stylize(st: StyleTransfer, plan: Plan, schedule: Schedule, recorder: _Recorder) -> StylizeOutput:
    """A tiled :meth:`StyleTransfer.stylize` run, as the untiled path returns it plus its :class:`TilingReport`."""
    x, content, report = run_tiled(st, plan, schedule, recorder)
    final = _optimize.pixels(x, content, plan.settings)
    del x, content
    out = recorder.finish(final, plan.settings, st.weights_name, str(st.device))
    out.tiling = report
    return out

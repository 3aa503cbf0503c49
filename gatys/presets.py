"""Settings as data, each number with its source.

A ``Preset`` holds every optimisation setting. ``PRESETS`` names the paper's settings (Fig. 2, the
Fig. 3 grid) beside practical ones for CPU previews and for quality. Any field can be overridden per call:
``st.stylize(content, style, preset="paper", steps=200)``.

α/β here is the *paper's* ratio. The paper used a VGG-19 whose filters were normalised to a mean
activation of 1; other weights produce features on other scales, so each weights folder states an
``alpha_beta_scale`` in its config.json and the ratio actually used is ``alpha_beta * alpha_beta_scale``.

Beside them, ``RECIPES`` names the training recipes of the feed-forward networks (Johnson et al. 2016,
``gatys.train``): the paper's for a GPU and the one the project's own models were trained with on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

# Fig. 2 and 3: "the style representations matched … layers 'conv1_1', 'conv2_1', 'conv3_1', 'conv4_1'
# and 'conv5_1' (w_l = 1/5 in those layers, w_l = 0 in all other layers)"; content on 'conv4_2'.
PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
PAPER_CONTENT_LAYER = "conv4_2"

# Fig. 3 rows: style matched on the growing layer sets A = conv1_1 … E = conv1_1..conv5_1.
FIG3_LAYER_SETS: dict[str, tuple[str, ...]] = {letter: PAPER_STYLE_LAYERS[: i + 1] for i, letter in enumerate("ABCDE")}
# Fig. 3 columns: α/β = 1e-5, 1e-4, 1e-3, 1e-2 (left to right).
FIG3_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)

INITS = ("noise", "content", "style")
OPTIMIZERS = ("lbfgs", "adam")
BALANCES = ("none", "gradient")
PARAMETERIZATIONS = ("pixels", "fourier")
POOLINGS = ("avg", "max", "blur")

# Which preset runs when none is named. Each front end has its own job, so each has its own default:
# - the library reproduces the paper unless asked otherwise (StyleTransfer.stylize's preset=);
# - the command line makes a good picture: the paper's losses and α/β, but started from the photo, which keeps
#   it recognisable with every weights we ship (from white noise the HED VGG-16 loses the photo's detail);
# - the app shows a first picture in under a minute on a CPU: the same, at 256 px and 150 steps.
LIBRARY_DEFAULT_PRESET = "paper"
CLI_DEFAULT_PRESET = "recommended"
APP_DEFAULT_PRESET = "preview"
#: The command line's default under its first name (gatys.cli imports it).
DEFAULT_PRESET = CLI_DEFAULT_PRESET

#: Preset fields that describe a preset and set nothing: they never change a result.
DESCRIPTIVE_FIELDS = frozenset({"name", "description", "source", "label"})


@dataclasses.dataclass(frozen=True)
class Preset:
    """Every setting of one stylization. Frozen; use ``dataclasses.replace`` or ``with_overrides``."""

    name: str = "custom"
    description: str = ""
    source: str = ""
    #: a short human label for menus, e.g. "Quick preview · from the photo (256 px, 150 steps)".
    label: str = ""
    content_layers: tuple[str, ...] = (PAPER_CONTENT_LAYER,)
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    #: w_l per style layer; None means equal weights 1/len(style_layers) (the paper's w_l = 1/5).
    style_layer_weights: tuple[float, ...] | None = None
    #: "none" (the paper: E_l weighted by w_l as they come) or "gradient": at the start of each scale, rescale
    #: each w_l so that layer's share of the style loss's gradient norm is its share of the w_l, keeping the
    #: total (what jcjohnson's -normalize_gradients and neural-style-pt's -normalize_weights aim at).
    style_balance: str = "none"
    #: "pixels" (the paper: the optimiser moves pixel values) or "fourier": it moves the image's Fourier
    #: coefficients scaled by 1/f (Olah et al. 2017, "Feature Visualization"), coarse structure first.
    parameterization: str = "pixels"
    #: the paper's α/β; multiplied by the weights' alpha_beta_scale before use.
    alpha_beta: float = 1e-3
    #: "avg" is the paper's choice: "replacing the max-pooling operation by average pooling improves the gradient flow".
    #: "blur": average pooling low-passed before subsampling (Zhang 2019), so the pooling lattice aliases less.
    pooling: str = "avg"
    #: "noise" (the paper: "starting from a white noise image"), "content" or "style".
    init: str = "noise"
    #: "lbfgs" (the paper: "we found L-BFGS to work best") or "adam".
    optimizer: str = "lbfgs"
    #: optimisation steps (function evaluations) at the final scale.
    steps: int = 500
    #: longest side of the output in px.
    size: int = 512
    #: coarse-to-fine: number of scales asked for, each ``scale_factor`` times the previous (1 = single scale, as in
    #: the paper). Those that run are :meth:`scale_sizes` (:attr:`scales_run` of them): coarse scales under
    #: ``min_scale_size`` are left out.
    num_scales: int = 1
    scale_factor: float = 2.0
    #: steps at every scale but the last (None: same as ``steps``).
    coarse_steps: int | None = None
    #: coarse scales whose longest side would be under this many px are left out (the final scale never is).
    min_scale_size: int = 16
    #: style image resized to style_scale x the content's longest side.
    style_scale: float = 1.0
    #: weight of the total-variation smoothness term, relative to the style loss (not in the paper).
    tv_weight: float = 0.0
    #: Adam's step size in pixel units (image in [0, 1]); L-BFGS uses 1.
    learning_rate: float = 0.02
    #: transfer luminance only and keep the content's colours (Gatys et al. 2016, "Preserving color").
    preserve_colors: bool = False

    def with_overrides(self, **overrides: Any) -> Preset:
        """A validated copy with some fields changed; ``None`` values are ignored."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        for key in ("content_layers", "style_layers", "style_layer_weights"):
            if key in changes:
                val = changes[key]
                changes[key] = (val,) if isinstance(val, (str, int, float)) else tuple(val)
        if changes.keys() - DESCRIPTIVE_FIELDS:
            changes.setdefault("name", f"{self.name}+custom" if not self.name.endswith("+custom") else self.name)
        out = dataclasses.replace(self, **changes)
        out.validate()
        return out

    def validate(self) -> None:
        """Check every field; messages name the valid values."""

        def positive(name: str, value: float, allow_zero: bool = False) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if allow_zero else value > 0)
            if not ok:
                raise ConfigError(
                    f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
                )

        def integer(name: str, value: Any, minimum: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")

        if not self.content_layers and not self.style_layers:
            raise ConfigError("need at least one content or style layer")
        if not self.style_layers:
            raise ConfigError("style_layers is empty; give at least one, e.g. conv1_1,conv2_1,conv3_1,conv4_1,conv5_1")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise ConfigError(
                    f"style_layer_weights has {len(self.style_layer_weights)} values for "
                    f"{len(self.style_layers)} style layers; give one per layer"
                )
            for w in self.style_layer_weights:
                positive("each style layer weight", w, allow_zero=True)
            if sum(self.style_layer_weights) <= 0:
                raise ConfigError("style_layer_weights are all zero; give at least one positive weight")
        if self.style_balance not in BALANCES:
            raise ConfigError(f"style_balance must be one of {', '.join(BALANCES)}, got {self.style_balance!r}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ConfigError(
                f"parameterization must be one of {', '.join(PARAMETERIZATIONS)}, got {self.parameterization!r}"
            )
        positive("alpha_beta", self.alpha_beta, allow_zero=True)
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)} (or pass an init image), got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        integer("steps", self.steps, 1)
        integer("size", self.size, 16)
        if self.size > 8192:
            raise ConfigError(f"size {self.size} px is too large; use at most 8192")
        integer("num_scales", self.num_scales, 1)
        positive("scale_factor", self.scale_factor)
        if self.num_scales > 1 and self.scale_factor <= 1:
            raise ConfigError(f"scale_factor must be > 1 for multi-scale runs, got {self.scale_factor!r}")
        if self.coarse_steps is not None:
            integer("coarse_steps", self.coarse_steps, 1)
        integer("min_scale_size", self.min_scale_size, 16)
        positive("style_scale", self.style_scale)
        if not 0.05 <= self.style_scale <= 8:
            raise ConfigError(f"style_scale must be between 0.05 and 8, got {self.style_scale!r}")
        positive("tv_weight", self.tv_weight, allow_zero=True)
        positive("learning_rate", self.learning_rate)

    @property
    def layer_weights(self) -> dict[str, float]:
        """Style layer -> w_l, normalised to sum to 1 (the paper's w_l = 1/5 for five layers)."""
        ws = self.style_layer_weights or (1.0,) * len(self.style_layers)
        total = float(sum(ws))
        return {name: float(w) / total for name, w in zip(self.style_layers, ws)}

    def scale_sizes(self) -> list[int]:
        """Longest side at each scale, coarse to fine, without coarse scales under ``min_scale_size``."""
        coarse = [round(self.size / self.scale_factor**k) for k in reversed(range(1, self.num_scales))]
        return [max(16, s) for s in coarse if s >= self.min_scale_size] + [self.size]

    @property
    def scales_run(self) -> int:
        """How many scales run (``num_scales`` less the coarse scales under ``min_scale_size``)."""
        return len(self.scale_sizes())

    def scale_steps(self) -> list[int]:
        """Steps at each scale of :meth:`scale_sizes`."""
        coarse = self.coarse_steps if self.coarse_steps is not None else self.steps
        return [coarse] * (self.scales_run - 1) + [self.steps]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio(ratio: float) -> str:
    """1e-3 as the paper writes it (not 1e-03)."""
    return f"{ratio:.0e}".replace("e-0", "e-")


#: What the practical presets add to the paper's losses (issue 12, measured in benchmarks/README.md "Picture
#: quality"): each style layer gets an equal share of the style gradient at the start (with the HED VGG-16,
#: plain w_l = 1/5 leave ~96 % of it to conv1_1 and conv2_1), the image is optimised through its 1/f-scaled
#: Fourier coefficients (no period-2/4 lattice, no dotted border strip), and average pooling is low-passed
#: before subsampling (less pooling lattice). The paper's presets keep the paper's raw settings.
PRACTICAL: dict[str, Any] = dict(style_balance="gradient", parameterization="fourier", pooling="blur")
PRACTICAL_SOURCE = (
    "; and, departing from the paper to remove the HED VGG-16's grid and border artefacts: style layers balanced "
    "by their gradients, the image optimised through its Fourier coefficients, and blurred pooling"
)


#: The practical presets' smallest coarse scale (longest side, px): under it the deep layers lose the photo's
#: objects, so below a 512 px output they run at one scale (measured, benchmarks/README.md "Picture quality").
MIN_COARSE_SIDE = 256
NO_SMALL_SCALES = (
    "No coarse scale under 256 px (under about 512 px output, one scale): a 128 px scale lost the houses, "
    "as 128 -> 256 (grid 2.7x at 256 px; one 256 px scale 0.6x) and 128 -> 256 -> 512 did"
)


def _fig3_name(letter: str, ratio: float) -> str:
    return f"fig3-{letter}-{_ratio(ratio)}"


def _build() -> dict[str, Preset]:
    presets = {
        "paper": Preset(
            name="paper",
            label="Fig. 2 B–D · α/β = 1e-3 (the paper; 512 px, 500 steps)",
            description="The paper's Fig. 2 B-D: conv4_2 content, conv1_1..conv5_1 style, α/β = 1e-3",
            source="Gatys et al. 2015, Fig. 2 B-D caption: α/β = 1×10⁻³; Methods: avg pooling, white noise, L-BFGS",
            alpha_beta=1e-3,
        ),
        "paper-1e-4": Preset(
            name="paper-1e-4",
            label="Fig. 2 E–F · α/β = 1e-4, more style (512 px, 500 steps)",
            description="The paper's Fig. 2 E-F: as 'paper' with α/β = 1e-4 (more style)",
            source="Gatys et al. 2015, Fig. 2 E-F caption: α/β = 1×10⁻⁴",
            alpha_beta=1e-4,
        ),
        "recommended": Preset(
            name="recommended",
            label="Recommended · from the photo, coarse to fine 256 → 512 px",
            description="The paper's losses, balanced, from the photo: 150 steps at 256 px, where the deep layers "
            "see the painting's large strokes, then 150 at 512 px; α/β = 5e-5",
            source="Fig. 2 losses; init from the content image as in Gatys's own PyTorch code "
            "(leongatys/PytorchNeuralStyleTransfer): from white noise the HED VGG-16's conv4_2 keeps too little of "
            "the photo. Coarse to fine as jcjohnson's multires recipe: from the photo at 512 px alone the sky keeps "
            "the photo's flat colour at every α/β tried (1e-3 to 3e-5); a 256 px scale first repaints it. "
            "α/β = 5e-5 measured for the balanced layers (1e-3 leaves the photo's look, 1e-5 loses the houses; "
            'benchmarks/README.md "Picture quality"). ' + NO_SMALL_SCALES + PRACTICAL_SOURCE,
            **PRACTICAL,
            alpha_beta=5e-5,
            init="content",
            steps=150,
            coarse_steps=150,
            num_scales=2,
            min_scale_size=MIN_COARSE_SIDE,
            size=512,
        ),
        "preview": Preset(
            name="preview",
            label="Quick preview · from the photo (256 px, 150 steps)",
            description="Quick CPU preview: 256 px, starts from the content photo, 150 L-BFGS steps, α/β = 5e-5",
            source=(
                "practical: content init converges in far fewer steps than noise (jcjohnson/neural-style -init image); "
                "α/β = 5e-5 as 'recommended', which at 256 px it equals (1e-3 left the sky a flat beige under a fine "
                'texture with the balanced layers: grid 3.5x; 5e-5: 0.5x, benchmarks/README.md "Picture quality")'
                + PRACTICAL_SOURCE
            ),
            **PRACTICAL,
            alpha_beta=5e-5,
            init="content",
            steps=150,
            size=256,
        ),
        "quality": Preset(
            name="quality",
            label="Quality · from the photo, coarse to fine 256 → 512 px, more steps",
            description="Quality: as 'recommended' with 300 steps at 256 px and 200 at 512 px: more of the "
            "painting's strokes and palette",
            source="practical: multi-scale as in crowsonkb/style-transfer-pytorch and jcjohnson's multires recipe; "
            "content init and α/β as 'recommended'. Two scales, not three: a 128 px scale first (300 + 300 + 200 "
            "steps) lost the houses and brought the border strip back (1.36x); measured in benchmarks/README.md "
            '"Picture quality". ' + NO_SMALL_SCALES + PRACTICAL_SOURCE,
            **PRACTICAL,
            alpha_beta=5e-5,
            init="content",
            steps=200,
            coarse_steps=300,
            size=512,
            num_scales=2,
            min_scale_size=MIN_COARSE_SIDE,
        ),
    }
    for letter, layers in FIG3_LAYER_SETS.items():
        for ratio in FIG3_RATIOS:
            name = _fig3_name(letter, ratio)
            span = layers[0] if len(layers) == 1 else f"{layers[0]}…{layers[-1]}"
            presets[name] = Preset(
                name=name,
                label=f"Fig. 3 row {letter} ({span}) · α/β = {_ratio(ratio)} ({Preset.size} px, {Preset.steps} steps)",
                description=f"Fig. 3 row {letter} ({', '.join(layers)}), column α/β = {_ratio(ratio)}",
                source=f"Gatys et al. 2015, Fig. 3: style layers {layers[0]}..{layers[-1]}, α/β = {_ratio(ratio)}",
                style_layers=layers,
                alpha_beta=ratio,
            )
    for p in presets.values():
        p.validate()
    return presets


#: Every named preset: ``paper``, ``paper-1e-4``, ``recommended``, ``preview``, ``quality`` and
#: ``fig3-{A..E}-{1e-5..1e-2}``.
PRESETS: Mapping[str, Preset] = _build()


def get_preset(preset: str | Preset) -> Preset:
    """Look a preset up by name (or pass a Preset through)."""
    if isinstance(preset, Preset):
        preset.validate()
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}") from None


def fig3_preset_name(letter: str, ratio: float) -> str:
    """Name of a Fig. 3 grid cell, e.g. ``fig3_preset_name('E', 1e-3) == 'fig3-E-1e-3'``."""
    name = _fig3_name(letter, ratio)
    get_preset(name)
    return name


# --- training recipes (Johnson, Alahi & Fei-Fei 2016; gatys.train) -----------------------------------------

#: Precision values accepted by ``--precision`` (accelerate's ``mixed_precision``).
PRECISIONS = ("no", "bf16", "fp16")
#: Values of Recipe.style_balance: "start" (each style layer an equal share on the first batch), "none".
STYLE_BALANCES = ("start", "none")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe: what the network learns from and how long; each number with its source.

    Args:
        size: side of the square training crops, px.
        batch_size: crops per process per step.
        steps: optimiser steps.
        lr: Adam learning rate.
        content_weight, style_weight, tv_weight: loss weights (content and style as means, see PerceptualLoss).
        style_size: longest side of the style image when its Gram matrices are taken, px.
        width, residual_blocks: the network's shape (see gatys.feedforward.NetConfig).
        precision: accelerate's mixed precision, ``no``, ``bf16`` or ``fp16`` (fp16 needs a GPU).
        checkpoint_every, sample_every: steps between checkpoints and between sample renders.
    """

    name: str
    size: int
    batch_size: int
    steps: int
    lr: float
    content_weight: float
    style_weight: float
    tv_weight: float
    style_size: int
    width: float
    residual_blocks: int
    precision: str
    checkpoint_every: int
    sample_every: int
    content_layer: str = "conv3_3"  # the paper: relu3_3 (gatys names the rectified response convX_Y)
    style_layers: tuple[str, ...] = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")  # the paper: relu1_2 … relu4_3
    # Departure from the paper (the loss network is handled as gatys' presets handle it): "start" weights each
    # style layer by 1 / its Gram loss on the first batch, so every layer starts with an equal share. With the
    # offline VGG-16 (HED) conv1_2's Gram loss is ~1e9x conv4_3's, and unbalanced training learns a stripe
    # texture in place of the photo. "none" is the paper's (equal weights on the raw Gram losses).
    style_balance: str = "start"


RECIPES: dict[str, Recipe] = {
    "johnson2016": Recipe(
        name="johnson2016",
        size=256,  # paper Sec. 4.1: COCO images resized to 256x256
        batch_size=4,  # paper Sec. 4.1: batch size 4
        steps=40_000,  # paper Sec. 4.1: 40,000 iterations (about two epochs of COCO)
        lr=1e-3,  # paper Sec. 4.1: Adam, learning rate 1e-3
        content_weight=1.0,  # jcjohnson/fast-neural-style train.lua default -content_weights 1.0 (paper: none)
        style_weight=5.0,  # train.lua default -style_weights 5.0 (per layer, on the Gram MSE)
        # train.lua -tv_strength 1e-6 acts on 0-255 images as 1e-6 * 0.5 * sum of squared differences, summed
        # over its batch of 4; per image in [0, 1] units that is 1e-6 * 0.5 * 255**2 * 4 = 0.13.
        tv_weight=0.13,
        style_size=256,  # train.lua default -style_image_size 256
        width=1.0,  # paper, supplementary Table 1: 32/64/128 channels
        residual_blocks=5,  # paper, supplementary Table 1: five residual blocks
        precision="no",  # the paper trained in fp32; pass --precision bf16 on a recent GPU
        checkpoint_every=1000,  # train.lua default -checkpoint_every 1000
        sample_every=1000,
    ),
    "cpu-small": Recipe(
        name="cpu-small",
        # Measured on the idle 2-core CPU (one thread, the other core busy): 0.58 s/step at 128 px, batch 2,
        # width 0.5, bf16, against several s/step for the paper's 256 px, batch 4, full-width recipe. 128 px
        # crops still carry the painting's brush strokes at the scale the network sees them.
        size=128,
        batch_size=2,  # s/step scales about linearly with the batch
        steps=5000,  # 0.47 s/step measured with two trainings side by side: ~40 min, inside the 60-minute budget
        lr=1e-3,  # paper Sec. 4.1
        content_weight=1.0,  # as johnson2016 (train.lua)
        # With the style layers balanced ("start": each starts at 1) and Gatys's layers (below), 60 against 20
        # (Starry Night, 600 steps, benchmarks/README.md "Instant styles"): 20 gave a dark blue photo, 60 the
        # painting's blue and yellow with strokes. (On Johnson's layers 20 had been best of 5, 20 and 60.)
        style_weight=60.0,
        tv_weight=0.065,  # johnson2016's per-image value at batch 2 (train.lua sums TV over its batch)
        style_size=256,  # as johnson2016: the style's strokes at the scale the network sees them
        width=0.5,  # 16/32/64 channels: the transformation net costs ~1/4 of the paper's
        residual_blocks=3,  # fewer blocks: the bottleneck is cheap at 32x32, but each block adds two convs
        precision="bf16",  # this CPU has AVX512-BF16: bf16 autocast measured 3.6 s vs 9.0 s fp32 (128 px, batch 4)
        checkpoint_every=100,
        sample_every=100,
        # Departure from johnson2016 (the loss network is used as `recommended` uses it): Gatys et al.'s layers.
        # With Johnson's (relu3_3 content, relu1_2..relu4_3 style) the offline VGG-16 (HED) trained networks
        # that tinted the photo olive: darkening it lowered conv3_3's and conv4_3's Gram losses 2.6x and 4.3x,
        # recolouring it barely changed them (benchmarks/README.md "Instant styles"). With Gatys's layers the
        # same 600 steps gave the painting's blue and yellow.
        content_layer="conv4_2",  # Gatys et al. 2015
        style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),  # Gatys et al. 2015
    ),
}

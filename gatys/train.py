"""Training a FastStyle network (Johnson, Alahi & Fei-Fei 2016) through accelerate.

One command runs on a CPU, one GPU, or data-parallel on many: ``accelerate launch --num_processes N -m
gatys.train ...`` needs no code change. ``--batch-size`` is per process (accelerate's convention); each
process takes its slice of the global batch, so N processes of batch b train like one process of batch N*b.

The output folder is a model folder (``model.safetensors``, ``config.json``, ``README.md``, ``style.jpg``,
``sample.jpg``), refreshed at every checkpoint, plus ``training/``: ``checkpoint.pt`` (resumable with
``--resume``), ``loss.csv``, ``loss.png`` and ``samples/step_NNNNNN.jpg``.

Example:
    python -m gatys.train starry_night.jpg --data ~/.cache/gatys/photos --out models/starry --recipe cpu-small
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, GatysError
from .weights import natural_key

#: Precision values accepted by ``--precision`` (accelerate's ``mixed_precision``).
PRECISIONS = ("no", "bf16", "fp16")


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
        steps=4000,  # ~40 min on one core: the 60-minute budget with room for a busy machine
        lr=1e-3,  # paper Sec. 4.1
        content_weight=1.0,  # as johnson2016 (train.lua)
        style_weight=5.0,  # as johnson2016 (train.lua)
        tv_weight=0.065,  # johnson2016's per-image value at batch 2 (train.lua sums TV over its batch)
        style_size=256,  # as johnson2016: the style's strokes at the scale the network sees them
        width=0.5,  # 16/32/64 channels: the transformation net costs ~1/4 of the paper's
        residual_blocks=3,  # fewer blocks: the bottleneck is cheap at 32x32, but each block adds two convs
        precision="bf16",  # this CPU has AVX512-BF16: bf16 autocast measured 3.6 s vs 9.0 s fp32 (128 px, batch 4)
        checkpoint_every=100,
        sample_every=100,
    ),
}


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One training run, validated: what to learn from, where to write, with which recipe and seed."""

    style: Path
    data: Path
    out: Path
    recipe: Recipe
    seed: int = 0
    resume: bool = False
    samples: tuple[Path, ...] = ()
    loss_network: str | None = None
    license: str = "other"
    command: str = ""


def make_job(
    style: str | os.PathLike,
    *,
    data: str | os.PathLike,
    out: str | os.PathLike,
    recipe: str = "cpu-small",
    steps: int | None = None,
    batch_size: int | None = None,
    size: int | None = None,
    precision: str | None = None,
    checkpoint_every: int | None = None,
    sample_every: int | None = None,
    width: float | None = None,
    residual_blocks: int | None = None,
    seed: int = 0,
    resume: bool = False,
    samples: tuple[str | os.PathLike, ...] = (),
    loss_network: str | None = None,
    license: str = "other",
    command: str = "",
) -> TrainJob:
    """Check every argument before any compute and build a :class:`TrainJob` (None keeps the recipe's value).

    Example:
        >>> job = make_job("starry.jpg", data="photos", out="models/starry", steps=300)  # doctest: +SKIP
    """
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    overrides: dict[str, Any] = {
        "steps": steps,
        "batch_size": batch_size,
        "size": size,
        "precision": precision,
        "checkpoint_every": checkpoint_every,
        "sample_every": sample_every,
        "width": width,
        "residual_blocks": residual_blocks,
    }
    r = dataclasses.replace(RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None})
    for field in ("steps", "batch_size", "checkpoint_every", "sample_every"):
        if getattr(r, field) < 1:
            raise ConfigError(f"--{field.replace('_', '-')} must be at least 1, got {getattr(r, field)}")
    from .feedforward import NetConfig

    NetConfig(width=r.width, residual_blocks=r.residual_blocks)  # raises ConfigError naming the bad value
    if r.size < 16:
        raise ConfigError(f"--size must be at least 16 px, got {r.size}")
    if r.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {r.precision!r}; valid: {', '.join(PRECISIONS)}")
    style_path = Path(style).expanduser()
    if not style_path.is_file():
        raise ConfigError(f"style image {style_path} not found; check the path")
    sample_paths = tuple(Path(s).expanduser() for s in samples)
    for s in sample_paths:
        if not s.is_file():
            raise ConfigError(f"sample photo {s} not found; check the path")
    return TrainJob(
        style=style_path,
        data=Path(data).expanduser(),
        out=Path(out).expanduser(),
        recipe=r,
        seed=int(seed),
        resume=resume,
        samples=sample_paths,
        loss_network=loss_network,
        license=license,
        command=command,
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def held_out(data: Path, samples: tuple[Path, ...], count: int = 3) -> tuple[Path, ...]:
    """The fixed photos rendered during training: ``samples`` if given, else ``count`` spread over the folder.

    Photos taken from the folder are left out of training (the caller excludes them), so the renders show
    how the network does on photos it never trained on.
    """
    if samples:
        return samples
    from ._photos import image_files

    files = image_files(data) if data.is_dir() else []
    if len(files) <= count:  # too few to spare any: render training photos rather than starve training
        return ()
    return tuple(files[(2 * i + 1) * len(files) // (2 * count)] for i in range(count))


def _parser(prog: str = "python -m gatys.train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a FastStyle network (Johnson et al. 2016) for one style image, through accelerate.",
    )
    p.add_argument("style", metavar="STYLE_IMAGE", help="the style image (a painting)")
    p.add_argument("--data", required=True, metavar="PHOTO_DIR", help="folder of training photos (recursive)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write (and resume from)")
    p.add_argument(
        "--recipe", default="cpu-small", choices=sorted(RECIPES), help="training recipe (default %(default)s)"
    )
    p.add_argument("--steps", type=int, help="optimiser steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="crops per process per step (default: the recipe's)")
    p.add_argument("--size", type=int, help="training crop side in px (default: the recipe's)")
    p.add_argument("--precision", choices=PRECISIONS, help="mixed precision (default: the recipe's)")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/training/checkpoint.pt")
    p.add_argument("--seed", type=int, default=0, help="seed for the network's initialisation and the data order")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: the recipe's)")
    p.add_argument("--sample-every", type=int, help="steps between sample renders (default: the recipe's)")
    p.add_argument("--width", type=float, help="network width multiplier (default: the recipe's)")
    p.add_argument("--residual-blocks", type=int, help="residual blocks (default: the recipe's)")
    p.add_argument("--samples", nargs="+", default=(), metavar="PHOTO", help="held-out photos to render")
    p.add_argument("--loss-network", metavar="WEIGHTS", help="gatys VGG weights folder or Hub repo (default: gatys')")
    p.add_argument("--license", default="other", help="Hub licence id for the model card (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def job_from_args(args: argparse.Namespace, command: str = "") -> TrainJob:
    """The job that the parsed command line ``args`` asks for (``command`` is recorded in the model card).

    The parser's destinations are :func:`make_job`'s parameter names, so every option reaches it by name.
    """
    options = {k: v for k, v in vars(args).items() if k not in ("style", "no_progress")}
    return make_job(args.style, **{**options, "samples": tuple(args.samples)}, command=command)


def main(argv: list[str] | None = None, prog: str = "python -m gatys.train") -> int:
    """The command line (``python -m gatys.train`` or ``gatys train``): one-line errors with exit status 2,
    130 after a Ctrl-C checkpoint."""
    from ._trainloop import train

    args = _parser(prog).parse_args(argv)
    command = f"{prog} " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        job = job_from_args(args, command)
        result = train(job, progress=not args.no_progress)
    except GatysError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.is_main:
        state = "interrupted at" if result.interrupted else "finished"
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        print(f"{state} step {result.step} in {result.wall_time_s:.0f} s ({losses}); model in {job.out}")
        if result.unreadable:
            names = ", ".join(sorted((p.name for p in result.unreadable), key=natural_key)[:5])
            print(f"skipped {len(result.unreadable)} unreadable photo(s): {names}", file=sys.stderr)
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

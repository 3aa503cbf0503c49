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
from .presets import PRECISIONS, RECIPES, STYLE_BALANCES, Recipe
from .weights import natural_key


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
    lr: float | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    style_balance: str | None = None,
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
        "lr": lr,
        "content_weight": content_weight,
        "style_weight": style_weight,
        "tv_weight": tv_weight,
        "style_balance": style_balance,
    }
    r = dataclasses.replace(RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None})
    for field in ("steps", "batch_size", "checkpoint_every", "sample_every"):
        if getattr(r, field) < 1:
            raise ConfigError(f"--{field.replace('_', '-')} must be at least 1, got {getattr(r, field)}")
    if not r.lr > 0:
        raise ConfigError(f"--lr must be more than zero, got {r.lr}")
    for field in ("content_weight", "style_weight", "tv_weight"):
        if not getattr(r, field) >= 0:  # also rejects NaN
            raise ConfigError(f"--{field.replace('_', '-')} must be zero or more, got {getattr(r, field)}")
    from .feedforward import NetConfig

    NetConfig(width=r.width, residual_blocks=r.residual_blocks)  # raises ConfigError naming the bad value
    if r.size < 16:
        raise ConfigError(f"--size must be at least 16 px, got {r.size}")
    if r.style_balance not in STYLE_BALANCES:
        raise ConfigError(f"unknown style balance {r.style_balance!r}; valid: {', '.join(STYLE_BALANCES)}")
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
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the recipe's)")
    p.add_argument("--content-weight", type=float, help="content loss weight (default: the recipe's)")
    p.add_argument("--style-weight", type=float, help="style loss weight (default: the recipe's)")
    p.add_argument("--tv-weight", type=float, help="total variation weight (default: the recipe's)")
    p.add_argument(
        "--style-balance", choices=STYLE_BALANCES, help="'start': style layers equal on the first batch; 'none'"
    )
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

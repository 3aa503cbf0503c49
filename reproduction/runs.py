"""The runs of a reproduction: settings, jobs, what every figure shares, the --resume cache, and progress.

A :class:`Job` is one optimisation run. Each finished run leaves its image and a ``.json`` sidecar with the
settings it was made with; ``--resume`` reuses a run whose sidecar matches (:func:`reuse`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gatys import GatysError, StyleTransfer, StylizeOutput
from gatys import image as im
from gatys.vgg import VGGFeatures

from .fmt import fmt_time

FIGURES = ("fig1", "fig2", "fig3")
#: Sized so that ``all`` finishes in well under an hour on a 2-core CPU; ``--size 512`` for the paper's look.
DEFAULT_SIZE = {"fig1": 128, "fig2": 256, "fig3": 128}
DEFAULT_STEPS = {"fig1": 300, "fig2": 300, "fig3": 300}
PHOTO = "tubingen.jpg"


@dataclasses.dataclass
class Settings:
    """The command's options, checked."""

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


@dataclasses.dataclass
class Job:
    """One optimisation run: what it is, its size, and how to run it."""

    figure: str
    key: str
    label: str
    size: int
    steps: int
    deepest: str  # deepest layer the run needs, for the time estimate
    run: Callable[..., StylizeOutput]  # called with callback=
    file: str  # where its image goes, relative to the output folder
    estimate: float = 0.0
    #: (size, steps) of each scale of a coarse-to-fine run, coarse to fine; then ``size`` is the last scale's and
    #: ``steps`` their sum. Empty for a run at one scale.
    scales: tuple[tuple[int, int], ...] = ()

    @property
    def passes(self) -> tuple[tuple[int, int], ...]:
        """(size, steps) of each scale it runs, for the time estimate."""
        return self.scales or ((self.size, self.steps),)


@dataclasses.dataclass
class Finished:
    """What the report needs of one run; read back from its files when ``--resume`` reuses it."""

    image: Image.Image
    seconds: float
    final_losses: dict[str, float]
    file: str  # relative to the output folder
    reused: bool = False


def white_noise(size: tuple[int, int], seed: int) -> Image.Image:
    """Full-range uniform white noise (each pixel and channel uniform in [0, 1]), seeded."""
    w, h = size
    return im.to_pil(torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed)))


@dataclasses.dataclass
class Context:
    """What the figures share while they plan and finish: the model, the settings, the photo, the finished runs."""

    st: StyleTransfer
    settings: Settings
    photo: Image.Image
    runs: dict[str, Finished] = dataclasses.field(default_factory=dict)
    figure_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    skipped: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def create(cls, *, st: StyleTransfer, settings: Settings) -> Context:
        """Load the photo of ``settings.images``."""
        return cls(st=st, settings=settings, photo=im.load_image(settings.images / PHOTO, name="photo"))

    @property
    def model(self) -> VGGFeatures:
        return self.st.model

    def image(self, name: str) -> Image.Image:
        """An image of the images folder, decoded no larger than twice the largest size used."""
        return im.load_image(self.settings.images / name, max_side=2 * max(self.settings.size.values()), name=name)

    def init_kwargs(self, size: int) -> dict[str, Any]:
        """How stylize() starts: the paper's full-range white noise (default), or the preset's own init."""
        if self.settings.init == "preset":
            return {}
        # The library's default start, noise of σ = 0.001 around grey, stalls L-BFGS in Fig. 3 row A (and row B
        # at small α/β) with these weights: its first full step overshoots and the curvature pair it leaves makes
        # every later step vanish (measured: the image stays grey). Full-range noise, the paper's "white noise
        # image", does not stall.
        shape = im.resize_longest(self.photo, size, "photo").size
        return {"init_image": white_noise(shape, self.settings.seed)}

    def save(self, img: Image.Image, rel: str) -> str:
        """Write ``img`` to ``rel`` under the output folder; returns ``rel``."""
        path = self.settings.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save_image(img, path)
        return rel

    def save_sheet(self, sheet: Image.Image, name: str) -> str:
        """Write a contact sheet in the chosen format; returns its path relative to the output folder."""
        return self.save(sheet, f"{name}.{self.settings.sheet_format}")


# -- the --resume cache ----------------------------------------------------------------------------------------


def identity(ctx: Context, job: Job) -> dict[str, Any]:
    """What must match for a finished run to be reused by --resume."""
    s = ctx.settings
    return {
        "key": job.key,
        "size": job.size,
        "steps": job.steps,
        "seed": s.seed,
        "init": s.init,
        "weights": ctx.st.weights_name,
        "alpha_beta_scale": ctx.model.config.alpha_beta_scale,
        "fig3_style": s.fig3_style.name if job.figure == "fig3" else None,
        "scales": [list(scale) for scale in job.scales] or None,  # a coarse-to-fine run's (size, steps)
    }


def _sidecar(ctx: Context, job: Job) -> Path:
    return ctx.settings.out / f"{job.file}.json"


def reuse(ctx: Context, job: Job) -> Finished | None:
    """The run read back from the output folder, if ``--resume`` is on and it was made with the same settings."""
    if not ctx.settings.resume:
        return None
    try:
        meta = json.loads(_sidecar(ctx, job).read_text())
        if {k: meta.get(k) for k in identity(ctx, job)} != identity(ctx, job):
            return None
        image = im.load_image(ctx.settings.out / job.file, name=job.file)
    except (OSError, ValueError, GatysError):
        return None
    return Finished(image, float(meta["seconds"]), dict(meta["final_losses"]), job.file, reused=True)


def run_job(ctx: Context, job: Job, *, callback: Callable[[Any], None]) -> Finished:
    """Run ``job``, save its image and sidecar."""
    out = job.run(callback=callback)
    done = Finished(out.image, out.seconds, out.final_losses, job.file)
    ctx.save(done.image, job.file)
    meta = {**identity(ctx, job), "seconds": done.seconds, "final_losses": done.final_losses}
    _sidecar(ctx, job).write_text(json.dumps(meta) + "\n")
    return done


# -- progress --------------------------------------------------------------------------------------------------


class Progress:
    """Per-run lines with elapsed time and a running ETA, plus an overall tqdm bar on a terminal."""

    def __init__(self, jobs: Sequence[Job], *, quiet: bool):
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

    def finished(self, i: int, job: Job, seconds: float, *, reused: bool = False) -> None:
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
            f"{seconds:.1f} s; elapsed {fmt_time(elapsed)}, about {fmt_time(left_est * rate)} left"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

"""The reproduction command: ``python -m reproduction {fig1,fig2,fig3,all} --out DIR --images DIR``.

Parses the options, runs the figures (:mod:`reproduction.runner`) and prints the estimate, progress and outcome
on stderr. ``--images`` defaults to the environment variable ``GATYS_IMAGES``; without either it is an error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gatys import GatysError
from gatys import image as im

from . import fig1, fig3
from .fmt import fmt_time
from .runner import Reproduction
from .runs import DEFAULT_SIZE, DEFAULT_STEPS, FIGURES, PHOTO, Progress, Settings

PROG = "python -m reproduction"
#: The environment variable that names the images folder when --images is not given.
IMAGES_ENV = "GATYS_IMAGES"


def build_parser() -> argparse.ArgumentParser:
    """The command's options; ``--images`` defaults to ``$GATYS_IMAGES`` as it is when this is called."""
    parser = argparse.ArgumentParser(
        prog=PROG,
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
    env = os.environ.get(IMAGES_ENV)
    parser.add_argument(
        "--images",
        type=Path,
        default=Path(env) if env else None,
        help=f"folder with {PHOTO}, starry_night.jpg and the paintings (in a checkout: ../shared/images) "
        f"[${IMAGES_ENV}; required when that is not set" + (f", now {env}]" if env else "]"),
    )
    parser.add_argument(
        "--fig3-style",
        default=fig3.DEFAULT_STYLE,
        help=f"painting of Fig. 3: a file name in --images or a path [{fig3.DEFAULT_STYLE}]",
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


def _check_images(images: Path | None, figures: Sequence[str]) -> Path:
    if images is None:
        raise GatysError(
            f"no images folder: pass --images DIR (or set {IMAGES_ENV}) holding {PHOTO}, starry_night.jpg "
            "and the paintings"
        )
    if not images.is_dir():
        raise GatysError(
            f"images folder {images} not found; pass --images DIR (or set {IMAGES_ENV}) holding {PHOTO}, "
            "starry_night.jpg and the paintings"
        )
    needed = [PHOTO, *(fig1.STYLE_IMAGES if "fig1" in figures else ())]
    for name in dict.fromkeys(needed):
        if not (images / name).is_file():
            raise GatysError(f"{name} not found in {images}; the figures need it")
    return images


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GatysError(f"cannot create output folder {out}: {e.strerror}") from e
    if not os.access(out, os.W_OK):
        raise GatysError(f"output folder {out} is not writable")


def settings_from(args: argparse.Namespace) -> Settings:
    """Check the parsed options against the file system; raises GatysError saying what is wrong."""
    figures = FIGURES if args.figure == "all" else (args.figure,)
    for name, value, minimum in (("--size", args.size, 32), ("--steps", args.steps, 2)):
        if value is not None and value < minimum:
            raise GatysError(f"{name} must be at least {minimum}, got {value}")
    images = _check_images(args.images, figures)
    fig3_style = Path(args.fig3_style)
    if "fig3" in figures:
        fig3_style = fig3_style if fig3_style.is_file() else images / args.fig3_style
        if not fig3_style.is_file():
            raise GatysError(f"Fig. 3 painting {args.fig3_style} not found (looked in {images} too)")
    _check_out(args.out)
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


def _run(repro: Reproduction, say: Callable[[str], None], *, quiet: bool) -> None:
    """Plan, calibrate, announce the estimate, run everything and write the report."""
    settings = repro.ctx.settings
    jobs = repro.plan()
    say(
        f"{', '.join(settings.figures)} with {repro.ctx.st.description}; {len(jobs)} runs, "
        f"{sum(j.steps for j in jobs)} steps; writing to {settings.out}"
    )
    for s in repro.skipped:
        say(s)
    if not jobs and "fig2" not in settings.figures:
        raise GatysError("nothing to run")
    say("calibrating (a few steps at each size) ...")
    starry = settings.images / "starry_night.jpg"
    painting = im.load_image(starry, max_side=1024, name="starry_night.jpg") if starry.is_file() else repro.ctx.photo
    per_step = repro.estimate(jobs, painting)
    say(
        ("".join(f"{v:.3f} s per step at {k} px, " for k, v in per_step.items()) or "every run reused from --out, ")
        + f"estimated total {fmt_time(repro.timing.estimate_s or 0.0)} (the measured losses and checks follow in "
        "report.md)"
    )
    start = time.perf_counter()
    progress = Progress(jobs, quiet=quiet)
    try:
        repro.run(jobs, progress)
    finally:
        progress.close()
    repro.timing.wall_s = time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0, 2 on a usage or input error, 130 when interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from gatys import StyleTransfer

    def say(text: str) -> None:
        if not args.quiet:
            print(f"reproduction: {text}", file=sys.stderr, flush=True)

    try:
        settings = settings_from(args)
        st = StyleTransfer.from_pretrained(args.weights, device=args.device)
        repro = Reproduction(st=st, settings=settings, argv=argv)
        _run(repro, say, quiet=args.quiet)
        report = repro.write_report()
    except GatysError as e:
        print(f"reproduction: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reproduction: interrupted; the report holds the figures finished so far", file=sys.stderr)
        return 130
    failed = [c for c in repro.checks if not c.passed]
    say(
        f"done in {fmt_time(repro.timing.wall_s or 0.0)} (estimated {fmt_time(repro.timing.estimate_s or 0.0)}); "
        f"{len(repro.checks) - len(failed)} of {len(repro.checks)} checks passed; report: {report}"
    )
    for c in failed:
        say(f"check failed: [{c.figure}] {c.name}: {c.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Video and batch (issue 16): temporal consistency as Ruder, Dosovitskiy & Brox (2016) measure it, and throughput.

    python -m benchmarks.video --out DIR [--frames 24] [--width 128 --height 96] [--first-steps 100 --steps 50]
                               [--batch 16 --batch-size 256 --batch-steps 10] [--skip-video] [--skip-batch]

* **The test video**: a slow pan and zoom across ``../shared/images/tubingen.jpg`` (``DIR/pan_zoom.mp4``), made
  here with known motion, so the consistency measure uses the exact flow rather than the method's own estimate.
* **consistency**: the mean squared difference between stylised frame t and stylised frame t-1 warped to t by the
  exact flow, over the pixels that were inside frame t-1 (the pan and zoom of a flat photo has no occlusions),
  averaged over frames (images in [0, 1]); for per-frame optimisation from the photo (independent), the
  temporally consistent mode (warped init + temporal loss), and a trained feed-forward model without and with
  blending. The input video's own value is the floor (interpolation and encoding). A contact sheet of
  consecutive frames (one row per method) goes to ``DIR/contact_sheet.png``.
* **throughput**: ``gatys batch`` on ``--batch`` photos at ``--batch-size`` px, both methods, in one process
  (all cores) and under ``accelerate launch --multi_gpu --num_processes 2`` (one core each; accelerate 1.x's ``--cpu``
  starts a single process without mpirun, see :func:`gatys.batch.process_state`); photos per second from
  the wall time of the whole command (start-up and loading included), and whether the outputs equal the
  one-process run's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from gatys import FastStyle, StyleTransfer, _videoio
from gatys.video import TEMPORAL_WEIGHT, Motion, feedforward_method, optimization_method, stylize_video, temporal_error

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"


# -- the test video -----------------------------------------------------------------------------------------


def camera(t: int, n: int, src: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine map from output pixel (x, y, 1) to source pixel at frame t: a pan left to right across the
    photo's middle while zooming in by 15 %."""
    sw, sh = src
    w, h = out
    s = t / max(n - 1, 1)
    scale = 0.45 * sw / w / (1 + 0.15 * s)  # source px per output px: the window covers 45 % of the width, shrinking
    cx = sw * (0.35 + 0.3 * s)
    cy = sh * 0.5
    return np.array([[scale, 0, cx - scale * w / 2], [0, scale, cy - scale * h / 2]], np.float64)


def exact_motion(a_prev: np.ndarray, a_cur: np.ndarray, w: int, h: int) -> Motion:
    """Flows between two frames made by :func:`camera` and the mask of pixels of t that frame t-1 saw."""
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)

    def between(a_from: np.ndarray, a_to: np.ndarray) -> np.ndarray:
        # pixel p of frame "to" shows source point A_to p; where frame "from" shows it: A_from^-1 (A_to p)
        sx = a_to[0, 0] * gx + a_to[0, 2]
        sy = a_to[1, 1] * gy + a_to[1, 2]
        px = (sx - a_from[0, 2]) / a_from[0, 0]
        py = (sy - a_from[1, 2]) / a_from[1, 1]
        return np.stack([px - gx, py - gy], -1).astype(np.float32)

    bw = between(a_prev, a_cur)
    fw = between(a_cur, a_prev)
    sx, sy = gx + bw[..., 0], gy + bw[..., 1]
    mask = ((sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)).astype(np.float32)
    return Motion(fw, bw, mask)


def make_video(path: Path, n: int, w: int, h: int) -> list[np.ndarray]:
    """Write the pan-and-zoom video; returns the cameras' affine maps."""
    src = Image.open(SHARED_IMAGES / "tubingen.jpg").convert("RGB")
    # Down to about one source pixel per output pixel first: the affine resampling does not low-pass, and frames
    # sampled from a 4x larger photo alias differently at every position (a flicker of the input itself).
    src = src.resize((round(2.6 * w), round(2.6 * w * src.height / src.width)), Image.Resampling.LANCZOS)
    maps, frames = [], []
    for t in range(n):
        a = camera(t, n, src.size, (w, h))
        maps.append(a)
        frame = src.transform((w, h), Image.Transform.AFFINE, tuple(a.ravel()), resample=Image.Resampling.BICUBIC)
        frames.append(np.asarray(frame))
    _videoio.write_video(path, frames, Fraction(12))
    return maps


# -- consistency --------------------------------------------------------------------------------------------


def consistency(frames: list[np.ndarray], maps: list[np.ndarray]) -> float:
    h, w = frames[0].shape[:2]
    errs = [
        temporal_error(frames[t] / 255.0, frames[t - 1] / 255.0, exact_motion(maps[t - 1], maps[t], w, h))
        for t in range(1, len(frames))
    ]
    return float(np.mean(errs))


def run_method(name: str, video: Path, out: Path, method: Any, size: int) -> tuple[list[np.ndarray], float]:
    frames: list[np.ndarray] = []
    t0 = time.perf_counter()
    stylize_video(video, out / f"{name}.mp4", method, size=size, callback=lambda f: frames.append(np.asarray(f.image)))
    return frames, time.perf_counter() - t0


def contact_sheet(rows: dict[str, list[np.ndarray]], start: int, count: int, path: Path) -> None:
    h, w = next(iter(rows.values()))[0].shape[:2]
    label_w = 270
    sheet = Image.new("RGB", (label_w + count * (w + 2), len(rows) * (h + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (name, frames) in enumerate(rows.items()):
        draw.text((4, r * (h + 2) + h // 2 - 5), name, fill="black")
        for c in range(count):
            sheet.paste(Image.fromarray(frames[start + c]), (label_w + c * (w + 2), r * (h + 2)))
    sheet.save(path)


def section_video(args: argparse.Namespace, out: Path) -> tuple[list[str], dict[str, Any]]:
    video = out / "pan_zoom.mp4"
    maps = make_video(video, args.frames, args.width, args.height)
    content = [np.asarray(Image.fromarray(f)) for f in _read(video)]
    size = max(args.width, args.height)
    style = SHARED_IMAGES / "starry_night.jpg"
    st = StyleTransfer.from_pretrained()
    fs = FastStyle.from_pretrained(args.model)
    opt = dict(preset="recommended", steps=args.steps, first_steps=args.first_steps)
    methods = {
        "optimisation, independent": optimization_method(st, style, consistent=False, **opt),
        **{
            f"optimisation, consistent, temporal weight {w:g}": optimization_method(st, style, temporal_weight=w, **opt)
            for w in args.temporal_weights
        },
        "feed-forward": feedforward_method(fs, blend=0.0),
        f"feed-forward, blend {args.blend}": feedforward_method(fs, blend=args.blend),
    }
    rows: dict[str, list[np.ndarray]] = {"input": content}
    results: dict[str, Any] = {"input": {"error": consistency(content, maps)}}
    for name, method in methods.items():
        stem = "".join(ch if ch.isalnum() or ch == "." else "_" for ch in name)
        frames, seconds = run_method(stem, video, out, method, size)
        rows[name] = frames
        results[name] = {"error": consistency(frames, maps), "seconds": seconds, "fps": len(frames) / seconds}
        print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
    contact_sheet(rows, start=args.frames // 2 - 3, count=6, path=out / "contact_sheet.png")
    lines = [
        f"Temporal consistency, {args.frames} frames at {args.width}x{args.height} (pan + zoom across tubingen.jpg), "
        f"style starry_night.jpg; optimisation: preset recommended at one scale, {args.first_steps} L-BFGS steps for "
        f"frame 0 and {args.steps} for each later frame; feed-forward: {args.model}",
        "",
        "| method | mean sq. error vs warped previous (x1e-3) | relative to independent | s/frame |",
        "|---|---|---|---|",
    ]
    ref = results["optimisation, independent"]["error"]
    for name, r in results.items():
        per = f"{r['seconds'] / args.frames:.2f}" if "seconds" in r else "-"
        lines.append(f"| {name} | {r['error'] * 1e3:.3f} | {r['error'] / ref:.2f} | {per} |")
    return lines, results


def _read(video: Path) -> list[np.ndarray]:
    return list(_videoio.read_frames(video))


# -- throughput ---------------------------------------------------------------------------------------------


def make_photos(folder: Path, n: int, size: int) -> None:
    """``n`` different photos: crops of the shared images, each ``size`` px on its longest side."""
    folder.mkdir(parents=True, exist_ok=True)
    images = sorted(SHARED_IMAGES.glob("*.jpg"))
    for i in range(n):
        img = Image.open(images[i % len(images)]).convert("RGB")
        w, h = img.size
        k = i // len(images)
        box = (int(w * 0.1 * k), int(h * 0.05 * k), int(w * (0.7 + 0.1 * (k % 2))), int(h * 0.95))
        crop = img.crop(box)
        crop.thumbnail((size, size), Image.Resampling.LANCZOS)
        crop.save(folder / f"photo_{i:02d}.png")


def run_batch(cmd: list[str], processes: int, threads: int) -> float:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    if processes == 1:
        full = [sys.executable, "-m", "gatys.batch", *cmd]
    else:
        full = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            str(processes),
            "--multi_gpu",  # on a machine without a GPU: torchrun starts the processes, gatys joins them (gloo)
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--num_cpu_threads_per_process",
            "1",
            "-m",
            "gatys.batch",
            *cmd,
        ]
    t0 = time.perf_counter()
    done = subprocess.run(full, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"batch run failed ({done.returncode}): {' '.join(full)}\n{done.stderr[-3000:]}")
    print("  " + done.stderr.strip().splitlines()[-1], file=sys.stderr, flush=True)
    return seconds


def same_outputs(a: Path, b: Path) -> tuple[bool, int]:
    worst = 0
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    for rel in files:
        x = np.asarray(Image.open(a / rel), np.int16)
        y = np.asarray(Image.open(b / rel), np.int16)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst == 0, worst


def section_batch(args: argparse.Namespace, out: Path) -> tuple[list[str], dict[str, Any]]:
    photos = out / "batch_in"
    make_photos(photos, args.batch, args.batch_size)
    style = str(SHARED_IMAGES / "starry_night.jpg")
    kinds = {
        f"optimisation ({args.batch_steps} L-BFGS steps, preset recommended)": [
            "--style",
            style,
            "--steps",
            str(args.batch_steps),
        ],
        f"feed-forward ({args.model})": ["--model", args.model],
    }
    lines = [
        f"Throughput, gatys batch on {args.batch} photos at {args.batch_size} px, {os.cpu_count()} CPU cores; "
        "wall time of the whole command (start-up, loading, writing included)",
        "",
        "| method | processes x threads | wall s | photos/s | outputs identical |",
        "|---|---|---|---|---|",
    ]
    results: dict[str, Any] = {}
    cores = os.cpu_count() or 1
    for i, (name, opts) in enumerate(kinds.items()):
        dirs: dict[tuple[int, int], Path] = {}
        # One process on every core (the throughput to beat), one process on one core (the same arithmetic as each
        # of the two processes: reductions split over a different number of threads round differently, and
        # L-BFGS amplifies that), two processes on one core each.
        runs = [(1, cores), (1, 1), (2, 1)] if cores > 1 else [(1, 1), (2, 1)]
        for n, threads in runs:
            dirs[(n, threads)] = out / f"batch_out_{i}_{n}p_{threads}t"
            cmd = [str(photos), "-o", str(dirs[(n, threads)]), "--size", str(args.batch_size), "-q", *opts]
            s = run_batch(cmd, n, threads)
            row = {"seconds": s, "photos_per_s": args.batch / s}
            eq = "-"
            if (n, threads) != runs[0]:
                refs = [(1, cores), (1, 1)] if n == 2 else [(1, cores)]
                checks = {f"{k[0]}p x {k[1]}t": same_outputs(dirs[k], dirs[(n, threads)]) for k in refs if k in dirs}
                row["equal"] = checks
                eq = "; ".join(
                    f"vs {k}: " + ("yes" if ok else f"no (max |diff| {worst}/255)") for k, (ok, worst) in checks.items()
                )
            results[f"{name}/{n}p x {threads}t"] = row
            lines.append(f"| {name} | {n} x {threads} | {s:.1f} | {args.batch / s:.3f} | {eq} |")
    return lines, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.video", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--first-steps", type=int, default=100)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--blend", type=float, default=0.5)
    p.add_argument(
        "--temporal-weights",
        type=float,
        nargs="+",
        default=[TEMPORAL_WEIGHT],
        help="γ/α of the consistent mode, one run each [the default, %(default)s]",
    )
    p.add_argument("--model", default="starry-night")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batch-steps", type=int, default=10)
    p.add_argument("--skip-video", action="store_true")
    p.add_argument("--skip-batch", action="store_true")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report: list[str] = []
    results: dict[str, Any] = {}
    if not args.skip_video:
        lines, results["video"] = section_video(args, args.out)
        report += [*lines, ""]
        print("\n".join(lines), flush=True)
    if not args.skip_batch:
        lines, results["batch"] = section_batch(args, args.out)
        report += lines
        print("\n".join(lines), flush=True)
    (args.out / "results.md").write_text("\n".join(report) + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

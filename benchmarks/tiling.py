"""Tiled outputs bigger than memory (issue 15): memory, time, the whole image's objective and seams, measured.

    python -m benchmarks.tiling --out DIR [--threads 2] [--steps-1024 40] [--coarse-steps 20]
                                [--sizes 2048 4096] [--fine-steps 10 3] [--skip compare large ff]

Every run is a fresh process (``--child``) that reports its own peak RSS (``ru_maxrss``), so one run's
memory never counts against another's. Prints markdown tables and writes them (``results.md``,
``results.json``), the outputs and crops across a tile corner to ``--out``:

Seam ratios are printed as "against lines 16 and 32 px from the borders (against every other pixel)": the
first compares like with like (the same phase of VGG's 16 px pooling lattice and of the TransformNet's 4 px one,
nearby content); the second is the issue's literal "elsewhere"; the third is the first measured on 32 x 32
block means against lines 64-128 px away, where a change of tone from tile to tile (spread over the overlap by
the feathering, so invisible to a 1 px gradient) becomes a step.

* **compare** (1024 px, the size the untiled run still fits here): ``recommended`` untiled vs tiled under a
  budget that forces at least 4 tiles; peak RSS, wall time and the whole image's objective of both, evaluated
  in a separate process on the written 1024 px PNGs with the same network and targets (α L_content +
  Σ w_l E_l with the preset's plain w_l = 1/5; the runs themselves weigh the layers by gradient balance).
* **large**: 2048 and 4096 px under ``--budget`` (2GB): peak RSS against the budget, wall time, the time
  estimate made before starting, the seam ratio (mean gradient magnitude on the last pass's tile borders over
  the mean elsewhere; a visible seam is far above 1.1) and a crop across a tile corner.
* **ff**: a trained FastStyle model at ``--ff-size`` (4096) px under ``--ff-budget`` (1GB), tiled with and
  without the whole image's instance-norm statistics: time, peak RSS, seam ratio; and at 1024 px (where the
  untiled pass fits) both tiled variants against the untiled output (mean absolute difference, 0-255).

The content (Tübingen, 1024x768) and style (The Starry Night, 1024x640) are upscaled for outputs above 1024 px.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"
CROP = 160  # px around a tile corner, shown at 2x


def peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RssTimeline:
    """Samples the process's RSS every ``period`` s beside phase marks, to tell in which phase the peak falls."""

    def __init__(self, period: float = 0.05) -> None:
        import threading

        self.samples: list[tuple[float, int]] = []
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._period = period
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                self.samples.append((time.perf_counter(), int(f.read().split()[1]) * self._page))
            self._stop.wait(self._period)

    def mark(self, label: str) -> None:
        self.marks.append((time.perf_counter(), label))

    def peak_phase(self) -> dict[str, Any]:
        """The sampled peak, the phase it fell in and the highest RSS of each phase."""
        self._stop.set()
        self._thread.join()
        phases: dict[str, int] = {}
        peak = ("start", 0)
        at = 0
        for t, rss in self.samples:
            while at + 1 < len(self.marks) and self.marks[at + 1][0] <= t:
                at += 1
            label = self.marks[at][1] if self.marks and self.marks[0][0] <= t else "start"
            if rss > peak[1]:
                peak = (label, rss)
            scale = label.split(" after step")[0]
            phases[scale] = max(phases.get(scale, 0), rss)
        return {"sampled_peak": peak[1], "peak_phase": peak[0], "phases": phases}


def save_crops(image: Any, tiles: list[Any], path: Path) -> None:
    """The output around the interior tile corner nearest the centre: as is | with the tile borders in red."""
    from PIL import Image, ImageDraw

    w, h = image.size
    corners = [(t.left, t.top) for t in tiles if t.left > 0 and t.top > 0] or [(w // 2, h // 2)]
    cx, cy = min(corners, key=lambda p: (p[0] - w / 2) ** 2 + (p[1] - h / 2) ** 2)
    left, top = max(0, min(w - CROP, cx - CROP // 2)), max(0, min(h - CROP, cy - CROP // 2))
    crop = image.crop((left, top, left + CROP, top + CROP)).resize((2 * CROP, 2 * CROP), Image.Resampling.NEAREST)
    marked = crop.copy()
    draw = ImageDraw.Draw(marked)
    for t in tiles:
        for x in (t.left, t.left + t.width):
            if left <= x < left + CROP:
                draw.line([(2 * (x - left), 0), (2 * (x - left), 2 * CROP)], fill=(255, 0, 0))
        for y in (t.top, t.top + t.height):
            if top <= y < top + CROP:
                draw.line([(0, 2 * (y - top)), (2 * CROP, 2 * (y - top))], fill=(255, 0, 0))
    both = Image.new("RGB", (4 * CROP + 8, 2 * CROP), (255, 255, 255))
    both.paste(crop, (0, 0))
    both.paste(marked, (2 * CROP + 8, 0))
    both.save(path)


# -- the children: one run each ----------------------------------------------------------------------------


def child_opt(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    from gatys import StyleTransfer, tiling

    content, style = SHARED_IMAGES / "tubingen.jpg", SHARED_IMAGES / "starry_night.jpg"
    st = StyleTransfer.from_pretrained()
    kw = dict(
        preset="recommended",
        size=spec["size"],
        steps=spec["steps"],
        coarse_steps=spec["coarse_steps"],
        max_memory=spec["budget"],
    )
    timeline = RssTimeline()
    start: dict[str, Any] = {}
    if spec.get("start_steps"):  # a stylised start: the whole-image size that fits, optimised first (--start-steps)
        timeline.mark("stylised start")
        whole = st.schedule(st.check_inputs(content, style, **kw)).scales[0]
        t0 = time.perf_counter()
        first = st.stylize(content, style, preset="recommended", size=whole.size, steps=spec["start_steps"])
        start = {"start_size": whole.size, "start_steps": spec["start_steps"], "start_s": time.perf_counter() - t0}
        first.image.save(out / f"{spec['name']}_start.png")
        kw["init_image"] = first.image
    timeline.mark("plan and estimate")
    plan = st.check_inputs(content, style, **kw)
    schedule = st.schedule(plan)
    estimate = st.estimate_seconds(plan, schedule)

    def mark(info: Any) -> None:  # a phase runs from one step's end to the next (the next tile's setup included)
        timeline.mark(f"scale {info.scale} ({info.size[0]}x{info.size[1]}) after step {info.step}")

    timeline.mark("stylize: first scale's targets")
    t0 = time.perf_counter()
    result = st.run(plan, schedule, callback=mark)  # the schedule described and estimated above
    wall = time.perf_counter() - t0
    timeline.mark("after stylize")
    peak = peak_rss()
    result.image.save(out / f"{spec['name']}.png")
    row: dict[str, Any] = {
        "schedule": schedule.describe(),
        "tiled": schedule.tiled,
        "steps_total": len(result.losses),
        "estimate_s": estimate,
        "wall_s": wall,
        "peak_rss": peak,
        "base": schedule.base,
        "size": result.image.size,
        **start,
    }
    if result.tiling is not None:
        tiles = result.tiling.last_tiles
        row["tiles_last_pass"] = len(tiles)
        row["seam"] = tiling.seam_ratio(result.image, tiles)
        row["seam_all"] = tiling.seam_ratio(result.image, tiles, control=None)
        row["seam_coarse"] = tiling.seam_ratio(result.image, tiles, scale=32)
        row["last_tiles"] = [list(dataclasses.astuple(t)) for t in tiles]
        save_crops(result.image, tiles, out / f"crop_{spec['name']}.png")
    row.update(timeline.peak_phase())
    return row


def child_eval(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """The whole image's objective of written outputs, with one network and one set of targets."""
    import torch

    from gatys import StyleTransfer, _optimize
    from gatys.image import load_image, resize_longest, to_tensor
    from gatys.presets import get_preset

    st = StyleTransfer.from_pretrained()
    settings = get_preset("recommended").with_overrides(size=spec["size"])
    c = to_tensor(resize_longest(load_image(SHARED_IMAGES / "tubingen.jpg"), spec["size"]))
    s = to_tensor(resize_longest(load_image(SHARED_IMAGES / "starry_night.jpg"), spec["size"]))
    targets = _optimize.build_targets(st.model, settings, c, [s], [1.0])
    rows = {}
    with torch.no_grad():
        for name in spec["names"]:
            x = to_tensor(load_image(out / f"{name}.png"))
            _, parts = _optimize.objective(st.model, x, targets)
            loss, lc, ls, ltv = parts.tolist()
            rows[name] = {"objective": loss, "content": targets.alpha * lc, "style": ls, "tv": targets.tv_weight * ltv}
    return rows


def child_ff(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    import torch

    from gatys import FastStyle, tiling
    from gatys.image import load_image, resize_longest, to_pil, to_tensor

    fs = FastStyle.from_pretrained(spec["model"], device="cpu")
    x = to_tensor(resize_longest(load_image(SHARED_IMAGES / "tubingen.jpg"), spec["size"]))
    h, w = x.shape[-2:]
    if spec.get("compare"):  # 1024 px: the untiled pass fits; both tiled variants against it
        with torch.inference_mode():
            whole = fs.net(x)
            row = {}
            for gs in (True, False):
                y, _ = tiling.feedforward_tiled(fs.net, x, 256, global_stats=gs)
                row["global" if gs else "own"] = float((y - whole).abs().mean() * 255)
        return row
    base = tiling.process_memory()
    tile = tiling.feedforward_tile_side(fs.net, (w, h), tiling.parse_memory(spec["budget"]), base)
    t0 = time.perf_counter()
    with torch.inference_mode():
        y, tiles = tiling.feedforward_tiled(fs.net, x, tile, global_stats=spec["global_stats"])
    wall = time.perf_counter() - t0
    peak = peak_rss()
    img = to_pil(y)
    img.save(out / f"{spec['name']}.png")
    save_crops(img, tiles, out / f"crop_{spec['name']}.png")
    return {
        "wall_s": wall,
        "peak_rss": peak,
        "base": base,
        "tile": tile,
        "tiles": len(tiles),
        "seam": tiling.seam_ratio(y, tiles),
        "seam_all": tiling.seam_ratio(y, tiles, control=None),
        "seam_coarse": tiling.seam_ratio(y, tiles, scale=32),
    }


CHILDREN = {"opt": child_opt, "eval": child_eval, "ff": child_ff}


REUSE: set[str] = set()  # runs whose result from an earlier invocation in --out is reused (--reuse)


def run_child(spec: dict[str, Any], out: Path, threads: int) -> dict[str, Any]:
    done = out / f".result_{spec['name']}.json"
    if spec["name"] in REUSE and done.is_file():
        print(f"[tiling] {spec['name']}: reusing {done}", file=sys.stderr, flush=True)
        return json.loads(done.read_text())
    spec_path = out / f".spec_{spec['name']}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"[tiling] {spec['name']}: {json.dumps(spec)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.tiling", "--child", str(spec_path), "--out", str(out)],
        check=True,
        cwd=ROOT,
        env=env,
    )
    result = json.loads((out / f".result_{spec['name']}.json").read_text())
    print(f"[tiling] {spec['name']} done in {time.perf_counter() - t0:.0f} s: {result}", file=sys.stderr, flush=True)
    return result


# -- the tables ---------------------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def opt_row(name: str, r: dict[str, Any], budget: str | None, extra: str = "") -> str:
    seam = f"{r['seam']:.3f} ({r['seam_all']:.3f}; {r.get('seam_coarse', float('nan')):.3f})" if "seam" in r else "—"
    w, h = r["size"]
    return (
        f"| {name} | {w}x{h} | {budget or '—'} | {r['schedule']} | {r['steps_total']} | {r['estimate_s']:.0f} | "
        f"{r['wall_s']:.0f} | {mib(r['peak_rss'])} | {extra}{seam} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tiling", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the outputs, crops and tables")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps-1024", type=int, default=20, help="L-BFGS steps of the untiled run and of each tile")
    p.add_argument("--coarse-steps", type=int, default=20, help="steps of each coarser scale of the tiled runs")
    p.add_argument("--budget-1024", default="1.5GB", help="budget of the tiled 1024 px run (forces >= 4 tiles)")
    p.add_argument("--sizes", type=int, nargs="*", default=[2048, 4096])
    p.add_argument("--fine-steps", type=int, nargs="*", default=[6, 4], help="steps per tile at each --sizes")
    p.add_argument("--large-coarse-steps", type=int, nargs="*", default=[10, 4], help="coarse steps per --sizes")
    p.add_argument("--budget", default="2GB")
    p.add_argument(
        "--start-steps",
        type=int,
        default=0,
        help="first optimise the largest whole size that fits for this many steps and start the large runs from it",
    )
    p.add_argument("--ff-model", default="starry-night")
    p.add_argument("--ff-size", type=int, default=4096)
    p.add_argument("--ff-budget", default="1GB")
    p.add_argument("--skip", nargs="*", default=[], choices=["compare", "large", "ff"])
    p.add_argument("--reuse", nargs="*", default=[], help="reuse these runs' results from an earlier invocation")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    REUSE.update(args.reuse)
    if args.child:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        spec = json.loads(Path(args.child).read_text())
        result = CHILDREN[spec["kind"]](spec, out)
        (out / f".result_{spec['name']}.json").write_text(json.dumps(result))
        return 0

    lines = [f"Threads: {args.threads}; every run in its own process; peak RSS is that process's ru_maxrss.", ""]
    results: dict[str, Any] = {"args": vars(args)}
    if "compare" not in args.skip:
        n, c = args.steps_1024, args.coarse_steps
        u = run_child(
            dict(kind="opt", name="untiled_1024", size=1024, steps=n, coarse_steps=c, budget="64GB"), out, args.threads
        )
        t = run_child(
            dict(kind="opt", name="tiled_1024", size=1024, steps=n, coarse_steps=c, budget=args.budget_1024),
            out,
            args.threads,
        )
        e = run_child(
            dict(kind="eval", name="eval_1024", size=1024, names=["untiled_1024", "tiled_1024"]), out, args.threads
        )
        results["compare"] = {"untiled": u, "tiled": t, "objective": e}
        lines += [
            f"### 1024 px: untiled vs tiled ({n} L-BFGS steps untiled and per tile; {c} per coarser scale)",
            "",
            "| run | output | budget | schedule | steps (tiles x steps) | est. s | wall s | peak RSS "
            "| objective (content + style) | seam ratio |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r, b in (("untiled", u, None), ("tiled", t, args.budget_1024)):
            o = e[f"{name}_1024"]
            lines.append(opt_row(name, r, b, f"{o['objective']:.4g} ({o['content']:.3g} + {o['style']:.3g}) | "))
        ratio = e["tiled_1024"]["objective"] / e["untiled_1024"]["objective"]
        lines += ["", f"Tiled / untiled objective: {ratio:.3f} (target <= 1.10).", ""]
    if "large" not in args.skip:
        lines += [
            f"### Large outputs under --max-memory {args.budget}",
            "",
            "| run | output | budget | schedule | steps (tiles x steps) | est. s | wall s | peak RSS | peak / budget "
            "| seam ratio |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        from gatys.tiling import parse_memory

        budget = parse_memory(args.budget)
        results["large"] = {}
        for size, fine, coarse in zip(args.sizes, args.fine_steps, args.large_coarse_steps):
            name = f"tiled_{size}"
            r = run_child(
                dict(
                    kind="opt",
                    name=name,
                    size=size,
                    steps=fine,
                    coarse_steps=coarse,
                    budget=args.budget,
                    start_steps=args.start_steps,
                ),
                out,
                args.threads,
            )
            results["large"][name] = r
            lines.append(
                opt_row(
                    f"{size} ({coarse} coarse, {fine} fine steps)", r, args.budget, f"{r['peak_rss'] / budget:.2f} | "
                )
            )
        lines += ["", "Targets: peak RSS <= budget x 1.2; seam ratio <= 1.1. Crops: crop_tiled_<size>.png.", ""]
        for name, r in results["large"].items():
            if "start_s" in r:
                lines += [
                    f"{name} started from a {r['start_size']} px whole-image run of {r['start_steps']} steps "
                    f"({r['start_s']:.0f} s, not in the wall time above; its peak is in the peak RSS).",
                    "",
                ]
            if "phases" in r:
                per_scale = "; ".join(f"{k}: {mib(v)}" for k, v in r["phases"].items())
                lines += [
                    f"{name}: RSS sampled every 50 ms peaked at {mib(r['sampled_peak'])} in "
                    f"'{r['peak_phase']}' (a phase runs from one step's end to the next step's end, so the "
                    f"next tile's or scale's setup counts in it); highest per phase: {per_scale}.",
                    "",
                ]
    if "ff" not in args.skip:
        rows = {}
        for gs in (True, False):
            name = f"ff_{args.ff_size}_{'global' if gs else 'own'}"
            rows[name] = run_child(
                dict(
                    kind="ff", name=name, model=args.ff_model, size=args.ff_size, budget=args.ff_budget, global_stats=gs
                ),
                out,
                args.threads,
            )
        cmp = run_child(
            dict(kind="ff", name="ff_1024_compare", model=args.ff_model, size=1024, compare=True), out, args.threads
        )
        results["ff"] = {**rows, "compare_1024": cmp}
        lines += [
            f"### Feed-forward ({args.ff_model}) at {args.ff_size} px under {args.ff_budget}",
            "",
            "| instance-norm statistics | tiles (side) | wall s | peak RSS | peak / budget | seam ratio |",
            "|---|---|---|---|---|---|",
        ]
        from gatys.tiling import parse_memory

        ffb = parse_memory(args.ff_budget)
        for name, r in rows.items():
            kind = "whole image, downscaled pass" if name.endswith("global") else "each tile's own"
            lines.append(
                f"| {kind} | {r['tiles']} ({r['tile']} px) | {r['wall_s']:.1f} | {mib(r['peak_rss'])} | "
                f"{r['peak_rss'] / ffb:.2f} | {r['seam']:.3f} ({r['seam_all']:.3f}; {r['seam_coarse']:.3f}) |"
            )
        lines += [
            "",
            f"At 1024 px, 256 px tiles against the untiled pass, mean |difference| (0-255): whole-image statistics "
            f"{cmp['global']:.2f}, each tile's own {cmp['own']:.2f}.",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

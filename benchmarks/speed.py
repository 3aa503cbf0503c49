"""Speed, memory and time-to-quality of gatys, against the bare network and the code people copy.

    python -m benchmarks.speed [--sizes 256 512] [--big] [--precision fp32 bf16] [--device cpu|cuda]
                               [--out DIR] [--sections steps,rss,bf16,quality] [--compile]

Prints markdown tables and writes them, with the raw numbers (``results.json``) and the bf16/fp32 images,
to ``--out``. Sections:

* ``steps``: seconds per optimisation step at each size, measured in one fresh process per size with the
  items interleaved (rotated order, ``--rounds`` rounds, median of per-round medians):
  the **reference** (the bare VGG forward + backward of the same network and layers, with respect to the
  image, gradients injected at the same layers, in both memory formats; the faster is reported),
  **gatys** (steps of the real ``StyleTransfer.stylize`` loop: losses, Gram matrices, L-BFGS, StepInfo)
  and the **peer** (``benchmarks/peer_tutorial.py``, the PyTorch tutorial's approach, fp32).
* ``rss``: peak RSS of a short gatys run and a short peer run, each in its own fresh process per size.
* ``bf16``: fp32 vs bf16 per step (from ``steps``) and a 256 px render in both precisions whose final
  content and style losses are re-evaluated in fp32; both images side by side in ``--out``.
* ``quality``: time-to-quality of the multi-scale ``quality`` preset against single-scale steps.
* ``compile`` (``--compile``): ``torch.compile`` of the network, compile time and per-step effect.
* ``gpu`` (automatic on CUDA): 512 px, 500-step renders in fp32, TF32 and bf16.

The same command runs on CUDA (``--device cuda``, or whatever ``accelerate`` picks); timings then
synchronise the device. See ``benchmarks/README.md`` for the protocol and the measured tables.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gatys.transfer import StylizeOutput
from gatys.weights import pick_device

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"
DEFAULT_STEPS = {256: 10, 512: 5, 1024: 2}  # 10 at 256 px: fewer steps left a ±10 % spread (measured)
SECTIONS = ("steps", "rss", "bf16", "quality")


# --- setup shared by the parent and the child processes -------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_image(w: int, h: int, seed: int) -> Image.Image:
    """A structured stand-in (gradients, waves, blocks) for when the shared images are absent."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arr = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / (7 + seed) + yy / 11.0)], -1)
    for _ in range(12):
        x0, y0 = rng.integers(0, w - w // 8), rng.integers(0, h - h // 8)
        arr[y0 : y0 + h // 8, x0 : x0 + w // 8] = rng.random(3)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB")


def load_images(content: str | None, style: str | None) -> tuple[Image.Image, Image.Image, str]:
    """Content and style images: the given paths, else ../shared/images, else synthetic (with a note)."""
    from gatys import image as im

    c_path = Path(content) if content else SHARED_IMAGES / "tubingen.jpg"
    s_path = Path(style) if style else SHARED_IMAGES / "starry_night.jpg"
    if c_path.is_file() and s_path.is_file():
        return im.load_image(c_path), im.load_image(s_path), f"{c_path.name} / {s_path.name}"
    return (
        synthetic_image(1024, 768, 1),
        synthetic_image(1024, 640, 2),
        f"synthetic images ({c_path} or {s_path} not found)",
    )


def precision_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """TF32 is a backend switch around an fp32 run (CUDA only); fp32 rows on CUDA switch it off."""
    if device.type != "cuda":
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def tf32(on: bool) -> Iterator[None]:
        old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old

    return tf32(precision == "tf32")


def lib_precision(precision: str) -> str:
    """gatys' own precision argument for a benchmark precision (TF32 is fp32 with the backend switch)."""
    return "bf16" if precision == "bf16" else "fp32"


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Bench:
    """What every measurement needs: the model, the images at one size, the paper's layers, the clock.

    ``clock="wall"`` times steps with ``time.perf_counter``; ``clock="cpu"`` with the thread's CPU time
    (``time.thread_time``, one thread only), which other processes on a busy machine barely disturb.
    """

    def __init__(
        self, device: str | None, weights: str | None, content: str | None, style: str | None, clock: str = "wall"
    ):
        from gatys import StyleTransfer
        from gatys.presets import get_preset

        if clock == "cpu" and torch.get_num_threads() != 1:
            raise SystemExit("--clock cpu measures one thread's CPU time; use it with --threads 1")
        self.clock = time.thread_time if clock == "cpu" else time.perf_counter
        self.device = pick_device(device)
        self.st = StyleTransfer.from_pretrained(weights, device=self.device)
        self.content, self.style, self.images_note = load_images(content, style)
        self.preset = get_preset("paper")
        self.layers = list(dict.fromkeys([*self.preset.content_layers, *self.preset.style_layers]))

    def tensors(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Content at ``size`` (longest side) and the style resized to the same shape (as the tutorial needs)."""
        from gatys import image as im

        c = im.resize_longest(self.content, size, "content image")
        s = self.style.resize(c.size, Image.Resampling.LANCZOS)
        return im.to_tensor(c).to(self.device), im.to_tensor(s).to(self.device)

    # -- the three things timed ----------------------------------------------------------------------------

    def reference(self, size: int, precision: str, memory_format: torch.memory_format) -> Callable[[], None]:
        """The bare step: raw conv/ReLU/pool ops of the same network up to the deepest layer, with the
        same input convention, and a backward pass to the image with gradients injected at the same layers.
        No losses, no optimiser, no Python objects per layer; weights pre-cast for bf16 (no autocast)."""
        net = self.st.model
        wanted = set(net.check_layers(self.layers))
        order = net.available_layers
        order = order[: max(order.index(n) for n in wanted) + 1]
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        params = {}
        for name in order:
            if name.startswith("conv"):
                conv = net._modules[name]
                params[name] = (
                    conv.weight.detach().to(self.device, dtype).contiguous(memory_format=memory_format),
                    conv.bias.detach().to(self.device, dtype),
                )
        scale, shift = net._scale.to(self.device), net._shift.to(self.device)
        bgr = net.config.color_order == "BGR"
        avg = self.preset.pooling == "avg"
        content, _ = self.tensors(size)
        x = torch.rand_like(content).requires_grad_(True)

        def step() -> None:
            x.grad = None
            y = x.flip(1) if bgr else x
            y = (y * scale + shift).to(dtype).contiguous(memory_format=memory_format)
            loss = None
            for name in order:
                if name.startswith("pool"):
                    y = F.avg_pool2d(y, 2, 2) if avg else F.max_pool2d(y, 2, 2)
                else:
                    y = F.relu(F.conv2d(y, *params[name], padding=1), inplace=True)
                if name in wanted:
                    s = y.sum(dtype=torch.float32)
                    loss = s if loss is None else loss + s
            assert loss is not None
            loss.backward()
            sync(self.device)

        return step

    def time_reference(self, size: int, precision: str, memory_format: torch.memory_format, steps: int) -> list[float]:
        step = self.reference(size, precision, memory_format)
        with precision_context(precision, self.device):
            step()  # warm-up: oneDNN/cuDNN pick and cache their kernels
            times = []
            for _ in range(steps):
                t0 = self.clock()
                step()
                times.append(self.clock() - t0)
        return times

    def stylize(self, size: int, steps: int, precision: str, **kwargs: Any) -> StylizeOutput:
        """The benchmark's photo and painting with its preset, under ``precision`` ("fp32", "tf32", "bf16")."""
        with precision_context(precision, self.device):
            return self.st.stylize(
                self.content,
                self.style,
                preset=self.preset,
                size=size,
                steps=steps,
                precision=lib_precision(precision),
                **kwargs,
            )

    def time_gatys(self, size: int, precision: str, steps: int) -> list[float]:
        """Per-step seconds of the real stylize loop: StepInfo.elapsed differences, after a warm-up step
        (step 1 holds the setup and targets; step 2 may still grow the heap)."""
        stamps: list[float] = []
        # On the wall clock StepInfo.elapsed is the record; the CPU clock needs a callback (which costs gatys a
        # little: the callback receives the current image).
        callback = (lambda info: stamps.append(self.clock())) if self.clock is not time.perf_counter else None
        out = self.stylize(size, steps + 2, precision, callback=callback)
        elapsed = stamps or [info.elapsed for info in out.losses]
        return [b - a for a, b in zip(elapsed, elapsed[1:])][1:]

    def time_peer(self, size: int, steps: int, precision: str = "fp32") -> list[float]:
        from benchmarks.peer_tutorial import time_steps

        content, style = self.tensors(size)
        with precision_context(precision, self.device):
            times = time_steps(
                self.st.model,
                content,
                style,
                self.preset.content_layers,
                self.preset.style_layers,
                steps + 2,
                pooling=self.preset.pooling,
                clock=self.clock,
            )
        return times[2:]  # as for gatys: the first holds the setup, the second warms up


# --- child processes: one fresh process per size, so timings and peak RSS are per size ----------------------


def child_steps(spec: dict[str, Any]) -> dict[str, Any]:
    from gatys import allocator

    bench = Bench(spec["device"], spec["weights"], spec["content"], spec["style"], spec["clock"])
    # The library tunes malloc at its first run; do it first so the reference and the peer, timed in this
    # same process, get the same allocator (the fair, conservative comparison).
    if bench.device.type == "cpu":
        allocator.tune_allocator()
    size, steps = spec["size"], spec["steps"]
    items: list[tuple[str, Callable[[], list[float]]]] = []
    for prec in spec["precisions"]:
        for fmt_name, fmt in (("channels_last", torch.channels_last), ("contiguous", torch.contiguous_format)):
            items.append((f"ref/{prec}/{fmt_name}", lambda p=prec, f=fmt: bench.time_reference(size, p, f, steps)))
        items.append((f"gatys/{prec}", lambda p=prec: bench.time_gatys(size, p, steps)))
        if prec in ("fp32", "tf32") and not spec.get("no_peer"):
            items.append((f"peer/{prec}", lambda p=prec: bench.time_peer(size, steps, p)))
    rounds: dict[str, list[float]] = {name: [] for name, _ in items}
    raw: dict[str, list[float]] = {name: [] for name, _ in items}
    for r in range(spec["rounds"]):
        k = r % len(items)
        for name, fn in items[k:] + items[:k]:
            times = fn()
            raw[name] += times
            rounds[name].append(median(times))
            print(f"  {size} px round {r + 1}: {name} {median(times):.3f} s/step", file=sys.stderr, flush=True)
    content_t, _ = bench.tensors(size)
    return {
        "size": size,
        "shape": list(content_t.shape[2:]),
        "round_medians": rounds,
        "raw": raw,
        "median": {name: median(v) for name, v in rounds.items()},
        "images": bench.images_note,
        "weights": bench.st.weights_name,
        "device": str(bench.device),
        "allocator_tuned": allocator.is_tuned(),
        "threads": torch.get_num_threads(),
        "clock": spec["clock"],
        "loadavg_end": os.getloadavg(),
    }


def child_rss(spec: dict[str, Any]) -> dict[str, Any]:
    bench = Bench(spec["device"], spec["weights"], spec["content"], spec["style"])
    size, steps, prec = spec["size"], spec["steps"], spec["precision"]
    if bench.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(bench.device)
    times = bench.time_peer(size, steps) if spec["impl"] == "peer" else bench.time_gatys(size, prec, steps)
    out = {
        "impl": spec["impl"],
        "size": size,
        "precision": prec,
        "step_s": median(times),
        "peak_rss_mib": peak_rss_mib(),
    }
    if bench.device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(bench.device) / 2**20
    return out


def run_child(spec: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.speed", "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {spec}")
    line = [row for row in proc.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# --- sections ---------------------------------------------------------------------------------------------


def fmt_s(x: float) -> str:
    return "—" if x is None or x != x else f"{x:.3f}"


def section_steps(args: argparse.Namespace, base: dict[str, Any], results: dict[str, Any]) -> list[str]:
    step_results = {}
    for size in args.sizes:
        steps = args.steps or DEFAULT_STEPS.get(size, 2)
        big = size >= 1024
        # 1024 px (--big) is about memory: fp32 only, fewer rounds, the peer only with --big-peer.
        precisions = [p for p in args.precision if p != "bf16"] if big else args.precision
        spec = {
            **base,
            "kind": "steps",
            "size": size,
            "steps": steps,
            "precisions": precisions,
            "rounds": min(args.rounds, 2) if big else args.rounds,
            "no_peer": big and not args.big_peer,
        }
        print(f"[steps] {size} px: {spec['rounds']} rounds x {steps} steps per item", file=sys.stderr, flush=True)
        step_results[size] = run_child(spec)
        results["steps"] = step_results
        args.save()  # each finished child is kept even if a later one is interrupted
    rss: dict[str, Any] = {}
    if "rss" in args.sections:
        for size in args.sizes:
            runs = [("gatys", p) for p in args.precision] + [("peer", "fp32")]
            for impl, prec in runs:
                if impl == "gatys" and prec != "fp32" and size >= 1024:
                    continue
                if impl == "peer" and size >= 1024 and not args.big_peer:
                    continue
                print(f"[rss] {impl} {prec} {size} px", file=sys.stderr, flush=True)
                rss[f"{impl}/{prec}/{size}"] = run_child(
                    {**base, "kind": "rss", "impl": impl, "size": size, "precision": prec, "steps": 2}
                )
                results["rss"] = rss
                args.save()

    lines = [
        "| size | image (w×h) | precision | reference s/step (format) | gatys s/step | gatys / ref "
        "| peer s/step | gatys speed-up vs peer | peak RSS gatys | peak RSS peer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in step_results.items():
        h, w = r["shape"]
        for prec in args.precision:
            refs = {k.split("/")[2]: v for k, v in r["median"].items() if k.startswith(f"ref/{prec}/")}
            if not refs:
                continue
            best = min(refs, key=refs.get)
            ref, g = refs[best], r["median"][f"gatys/{prec}"]
            peer = r["median"].get(f"peer/{prec}")
            mem_g, mem_p = (memory(rss.get(f"{impl}/{prec}/{size}")) for impl in ("gatys", "peer"))
            lines.append(
                f"| {size} | {w}×{h} | {prec} | {ref:.3f} ({best}) | {g:.3f} | {g / ref:.2f}× "
                f"| {fmt_s(peer)} | {(peer / g if peer else float('nan')):.2f}× "
                f"| {mem_g} | {mem_p} |".replace("nan×", "—")
            )
    lines.append("")
    lines.append("Per-round medians (s/step), to show the noise:")
    for size, r in step_results.items():
        for name, v in r["round_medians"].items():
            lines.append(f"- {size} px {name}: " + ", ".join(f"{x:.3f}" for x in v))
    if "bf16" in args.precision and "fp32" in args.precision:
        lines.append("")
        for size, r in step_results.items():
            if "gatys/bf16" not in r["median"]:
                continue
            fp32, bf16 = r["median"]["gatys/fp32"], r["median"]["gatys/bf16"]
            lines.append(f"bf16 speed-up at {size} px (gatys fp32 / gatys bf16 per step): {fp32 / bf16:.2f}×")
    return lines


def memory(r: dict[str, Any] | None) -> str:
    """Peak RSS of an rss child, and on CUDA its peak GPU memory."""
    if not r:
        return "—"
    text = f"{r['peak_rss_mib']:.0f} MiB"
    return text + (f" (GPU {r['cuda_peak_mib']:.0f} MiB)" if "cuda_peak_mib" in r else "")


def fp32_losses(bench: Bench, image: Image.Image, size: int) -> dict[str, float]:
    """Content and style loss of ``image`` with fp32 network and targets at ``size`` (the paper preset)."""
    from gatys import image as im
    from gatys._optimize import build_targets, objective

    st = bench.st
    content = st._prepare(bench.content, size, "content image")
    style = st._prepare(bench.style, max(im.MIN_SIDE, round(size * bench.preset.style_scale)), "style image")
    targets = build_targets(st.model, bench.preset, content, [style], [1.0])
    x = im.to_tensor(image.resize((content.shape[3], content.shape[2]))).to(st.device)
    with torch.no_grad():
        _, parts = objective(st.model, x, targets)
    loss, lc, ls, _ = parts.tolist()
    return {"loss": loss, "content": lc, "style": ls}


def section_bf16(args: argparse.Namespace, bench: Bench, results: dict[str, Any], out_dir: Path) -> list[str]:
    size, steps = 256, args.render_steps
    renders = {}
    for prec in ("fp32", "bf16"):
        print(f"[bf16] {size} px render, {steps} steps, {prec}", file=sys.stderr, flush=True)
        out = bench.st.stylize(
            bench.content, bench.style, preset=bench.preset, size=size, steps=steps, precision=prec, seed=0
        )
        out.image.save(out_dir / f"render_{size}_{prec}.png")
        renders[prec] = {
            "seconds": out.seconds,
            "own_final": out.final_losses,
            "fp32_eval": fp32_losses(bench, out.image, size),
        }
    a, b = renders["fp32"]["fp32_eval"], renders["bf16"]["fp32_eval"]
    rel = {k: abs(b[k] - a[k]) / abs(a[k]) for k in ("content", "style")}
    results["bf16_render"] = {"size": size, "steps": steps, "renders": renders, "relative_difference": rel}
    img_a, img_b = Image.open(out_dir / f"render_{size}_fp32.png"), Image.open(out_dir / f"render_{size}_bf16.png")
    pair = Image.new("RGB", (img_a.width + img_b.width + 8, max(img_a.height, img_b.height)), "white")
    pair.paste(img_a, (0, 0))
    pair.paste(img_b, (img_a.width + 8, 0))
    pair.save(out_dir / f"bf16_vs_fp32_{size}.png")
    return [
        f"{size} px render, paper preset, {steps} L-BFGS steps from the same noise (seed 0). The final image "
        "(clamped to [0, 1], 8-bit, as saved) re-evaluated with the fp32 network and fp32 targets; beside it the "
        "last step's own losses as the run reported them (bf16 network, fp32 accumulation, unclamped iterate):",
        "",
        "| precision | wall s | content (fp32 eval) | style (fp32 eval) | total (fp32 eval) "
        "| content (run's own) | style (run's own) |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {p} | {r['seconds']:.1f} | {r['fp32_eval']['content']:.4g} | {r['fp32_eval']['style']:.4g} "
            f"| {r['fp32_eval']['loss']:.4g} | {r['own_final']['content']:.4g} | {r['own_final']['style']:.4g} |"
            for p, r in renders.items()
        ),
        "",
        f"bf16 vs fp32: content {100 * rel['content']:.1f} %, style {100 * rel['style']:.1f} % apart "
        f"(images side by side, fp32 left: {out_dir / f'bf16_vs_fp32_{size}.png'})",
    ]


def steady_elapsed(history: list[Any], step_cost: dict[int, float] | None = None) -> list[float]:
    """Elapsed seconds at each step with load spikes removed.

    The first step of each scale (setup and targets) counts as measured; every other step counts as its
    scale's median step time in this run, or as ``step_cost[longest side]`` when given (per-step costs
    measured interleaved, under the same load, as the step table does).
    """
    deltas = [b.elapsed - a.elapsed for a, b in zip(history, history[1:])]
    first = {i for i, info in enumerate(history) if i == 0 or info.scale != history[i - 1].scale}
    medians = {}
    for scale in {info.scale for info in history}:
        medians[scale] = median([d for i, d in enumerate(deltas, 1) if i not in first and history[i].scale == scale])
    out, t = [], 0.0
    for i, info in enumerate(history):
        if i in first:
            t += history[0].elapsed if i == 0 else deltas[i - 1]
        else:
            t += step_cost[max(info.size)] if step_cost else medians[info.scale]
        out.append(t)
    return out


def section_quality(args: argparse.Namespace, bench: Bench, results: dict[str, Any]) -> list[str]:
    """Time until the full-resolution total loss reaches what ``quality_steps`` single-scale steps reach."""
    from gatys.presets import get_preset

    size, n, prec = args.quality_size, args.quality_steps, args.quality_precision
    multi = get_preset(args.quality_preset).with_overrides(size=size)
    if args.coarse_steps:
        multi = multi.with_overrides(coarse_steps=args.coarse_steps)
    single_opts = bench.preset.with_overrides(size=size, steps=n)
    print(f"[quality] single scale: {size} px, {n} steps, {prec}", file=sys.stderr, flush=True)
    # Both runs get the same callback, so both pay for the live image it receives.
    single = bench.st.stylize(
        bench.content,
        bench.style,
        preset=single_opts,
        precision=prec,
        seed=0,
        callback=lambda info: True,
        progress=args.progress,
    )
    target = single.losses[-1].loss
    results["quality_single"] = {
        "size": size,
        "steps": n,
        "precision": prec,
        "target_loss": target,
        "history": [[i.elapsed, i.loss] for i in single.losses],
    }
    args.save()  # the long run is kept even if the multi-scale run is interrupted

    def stop_when_reached(info: Any, last_scale: int) -> bool:
        return not (info.scale == last_scale and info.loss <= target)

    # The multi-scale preset as it is, and (when its init is not noise) from the same noise as the single-scale
    # run, so that the effect of coarse-to-fine alone shows too; and, for a preset that starts from the photo,
    # a single-scale run from the photo, which separates what the init does from what the coarse scales do.
    variants = [multi] if multi.init == "noise" else [multi, multi.with_overrides(init="noise")]
    if multi.init != "noise":
        variants.append(single_opts.with_overrides(init=multi.init))
    runs = []
    for v in variants:
        kind = "multi-scale" if v.scales_run > 1 else "single scale"
        print(
            f"[quality] {kind}: {v.scale_sizes()} px, {v.scale_steps()} steps, init {v.init}, "
            f"until loss <= {target:.4g}",
            file=sys.stderr,
            flush=True,
        )
        runs.append(
            bench.st.stylize(
                bench.content,
                bench.style,
                preset=v,
                precision=prec,
                seed=0,
                callback=functools.partial(stop_when_reached, last_scale=v.scales_run - 1),
                progress=args.progress,
            )
        )
    # Per-step cost at each scale's size, interleaved in this process (as in the step table), for a time
    # that does not depend on how busy the machine was during each of the long runs.
    sizes = sorted({max(info.size) for out in runs for info in out.losses} | {size})
    costs: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(args.rounds):
        for s in sizes:
            costs[s].append(median(bench.time_gatys(s, prec, DEFAULT_STEPS.get(s, 3))))
    step_cost = {s: median(v) for s, v in costs.items()}
    i_single = next(i for i, info in enumerate(single.losses) if info.loss <= target)
    single_times = (
        single.losses[i_single].elapsed,
        steady_elapsed(single.losses)[i_single],
        steady_elapsed(single.losses, step_cost)[i_single],
    )
    single.image.save(Path(args.out) / f"quality_single_{size}.png")
    rows = []
    results["quality"] = {
        "size": size,
        "single_steps": n,
        "precision": prec,
        "target_loss": target,
        "step_cost": step_cost,
        "single_seconds": single_times,
        "single_history": [[i.elapsed, i.loss] for i in single.losses],
        "multi": [],
    }
    for v, out in zip(variants, runs):
        last = v.scales_run - 1
        i_multi = next((i for i, info in enumerate(out.losses) if info.scale == last and info.loss <= target), None)
        times = (
            (
                out.losses[i_multi].elapsed,
                steady_elapsed(out.losses)[i_multi],
                steady_elapsed(out.losses, step_cost)[i_multi],
            )
            if i_multi is not None
            else (None, None, None)
        )
        fine_steps = sum(1 for info in out.losses if info.scale == last)
        results["quality"]["multi"].append(
            {
                "preset": v.to_dict(),
                "seconds": times,
                "fine_steps": fine_steps,
                "reached": i_multi is not None,
                "history": [[i.elapsed, i.scale, i.loss] for i in out.losses],
            }
        )
        reached = f"{fine_steps}" if i_multi is not None else f"{fine_steps} (target not reached)"
        if v.scales_run > 1:
            out.image.save(Path(args.out) / f"quality_multi_{v.init}_{size}.png")
            label, short = f"multi-scale ({v.name}, init {v.init})", f"multi ({v.init})"
            steps_cell = f"{' + '.join(map(str, v.scale_steps()[:-1]))} + {reached}"
        else:
            out.image.save(Path(args.out) / f"quality_single_{v.init}_{size}.png")
            label, short = f"single scale ({bench.preset.name} preset, init {v.init})", f"single ({v.init})"
            steps_cell = reached
        rows.append(
            f"| {label} | {' → '.join(map(str, v.scale_sizes()))} | {steps_cell} "
            + "".join(f"| {t:.1f} " if t is not None else "| — " for t in times)
            + "|"
        )
        rows.append(
            f"| {short} / single (noise) | | | "
            + " | ".join(f"{m / s_:.2f}" if m is not None else "not reached" for m, s_ in zip(times, single_times))
            + " |"
        )
    return [
        f"Target: the total loss (α L_content + β L_style at {size} px, as the step reports it) after {n} "
        f"single-scale steps of the paper preset from noise: {target:.4g}. Same seed, same images, {prec}. Time in "
        "seconds from the start of stylize(), setup and targets included. *steady*: every step counts as its "
        "scale's median step time in that run (the first step of each scale as measured), which removes load "
        "spikes; *step cost*: every step counts as the per-step time at its size measured interleaved afterwards "
        f"({', '.join(f'{s} px {c:.3f} s' for s, c in step_cost.items())}), so that all runs are priced under "
        "the same load.",
        "",
        "| run | scales (px) | steps | wall s | steady s | step cost s |",
        "|---|---|---|---|---|---|",
        f"| single scale (paper preset, init noise) | {size} | {n} (target at step {i_single + 1}) "
        + "".join(f"| {t:.1f} " for t in single_times)
        + "|",
        *rows,
    ]


def section_compile(args: argparse.Namespace, bench: Bench, results: dict[str, Any]) -> list[str]:
    """torch.compile of the network's forward: compile time, and the effect on the reference and gatys."""
    size = args.sizes[0]
    steps = args.steps or DEFAULT_STEPS.get(size, 2)
    net = bench.st.model
    eager_forward = net.forward
    content, _ = bench.tensors(size)
    x = torch.rand_like(content).requires_grad_(True)

    def ref_step(forward: Callable) -> None:
        x.grad = None
        feats = forward(x, bench.layers)
        sum(f.sum() for f in feats.values()).backward()
        sync(bench.device)

    t0 = time.perf_counter()
    compiled = torch.compile(eager_forward)
    ref_step(compiled)
    compile_s = time.perf_counter() - t0
    rows = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for name, fwd in (("eager", eager_forward), ("compiled", compiled)):
            ts = []
            for _ in range(steps):
                t = bench.clock()
                ref_step(fwd)
                ts.append(bench.clock() - t)
            rows[name].append(median(ts))
    gatys = {}
    for name, fwd in (("eager", eager_forward), ("compiled", compiled)):
        net.forward = fwd  # the instance attribute shadows the method for this benchmark only
        try:
            gatys[name] = median(bench.time_gatys(size, "fp32", steps))
        finally:
            del net.forward
    results["compile"] = {"size": size, "compile_seconds": compile_s, "network": rows, "gatys": gatys}
    e, c = median(rows["eager"]), median(rows["compiled"])
    return [
        f"torch.compile(VGGFeatures.forward), fp32, {size} px, {bench.device.type}: first compiled step "
        f"(compile time included) {compile_s:.1f} s.",
        "",
        "| | eager s/step | compiled s/step | compiled / eager |",
        "|---|---|---|---|",
        f"| network forward + backward | {e:.3f} | {c:.3f} | {c / e:.2f}× |",
        f"| gatys stylize step | {gatys['eager']:.3f} | {gatys['compiled']:.3f} "
        f"| {gatys['compiled'] / gatys['eager']:.2f}× |",
    ]


def section_gpu(args: argparse.Namespace, bench: Bench, results: dict[str, Any]) -> list[str]:
    size, steps = 512, args.gpu_steps
    rows = {}
    for prec in ("fp32", "tf32", "bf16"):
        print(f"[gpu] {size} px, {steps} steps, {prec}", file=sys.stderr, flush=True)
        torch.cuda.reset_peak_memory_stats(bench.device)
        out = bench.stylize(size, steps, prec, seed=0)
        el = [i.elapsed for i in out.losses]
        rows[prec] = {
            "seconds": out.seconds,
            "step_s": median([b - a for a, b in zip(el, el[1:])]),
            "final_loss": out.final_losses["loss"],
            "cuda_peak_mib": torch.cuda.max_memory_allocated(bench.device) / 2**20,
        }
    results["gpu"] = rows
    return [
        f"{torch.cuda.get_device_name(bench.device)}, {size} px, {steps} steps, paper preset:",
        "",
        "| precision | wall s | median s/step | final loss | peak GPU memory |",
        "|---|---|---|---|---|",
        *(
            f"| {p} | {r['seconds']:.1f} | {r['step_s']:.4f} | {r['final_loss']:.4g} | {r['cuda_peak_mib']:.0f} MiB |"
            for p, r in rows.items()
        ),
    ]


# --- the command --------------------------------------------------------------------------------------------


def machine_notes(device: torch.device, clock: str) -> list[str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from gatys import allocator

    notes = [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads)",
        f"- device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- per-step clock: {clock}",
        f"- malloc tuning (gatys.allocator): {'on' if allocator.enabled() else 'off'}",
    ]
    return notes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="longest side(s) in px [256 512]")
    p.add_argument("--big", action="store_true", help="also 1024 px (steps and peak RSS, fp32)")
    p.add_argument("--big-peer", action="store_true", help="with --big, also the peer's 1024 px peak RSS")
    p.add_argument(
        "--precision",
        nargs="+",
        default=None,
        choices=["fp32", "bf16", "tf32"],
        help="precisions of the per-step table [fp32 bf16; on CUDA also tf32]",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 [accelerate's pick]")
    p.add_argument("--out", default=str(ROOT / "outputs" / "benchmarks"), help="output folder [outputs/benchmarks]")
    p.add_argument("--weights", default=None, help="weights folder or Hub repo [gatys' default]")
    p.add_argument("--content", default=None, help="content image [../shared/images/tubingen.jpg]")
    p.add_argument("--style", default=None, help="style image [../shared/images/starry_night.jpg]")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile on CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch threads [torch's default: one per core]")
    p.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="per-step timer: wall, or the thread's CPU time (needs --threads 1; robust on a busy machine)",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per size [3]")
    p.add_argument("--steps", type=int, default=None, help="timed steps per item and round [10/5/2 at 256/512/1024]")
    p.add_argument("--render-steps", type=int, default=300, help="steps of the 256 px bf16/fp32 renders [300]")
    p.add_argument("--quality-size", type=int, default=512, help="final size of the time-to-quality runs [512]")
    p.add_argument("--quality-steps", type=int, default=500, help="single-scale steps that set the target [500]")
    p.add_argument("--quality-preset", default="quality", help="multi-scale preset [quality]")
    p.add_argument("--quality-precision", default="fp32", choices=["fp32", "bf16"], help="[fp32]")
    p.add_argument("--coarse-steps", type=int, default=None, help="override the multi-scale preset's coarse_steps")
    p.add_argument("--gpu-steps", type=int, default=500, help="steps of the CUDA renders [500]")
    p.add_argument("--progress", action="store_true", help="progress bars for the long runs")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        result = child_steps(spec) if spec["kind"] == "steps" else child_rss(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        raise SystemExit("--clock cpu measures one thread's CPU time; use it with --threads 1")
    device = pick_device(args.device)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    if args.precision is None:
        args.precision = ["fp32", "bf16"] + (["tf32"] if device.type == "cuda" else [])
    if "tf32" in args.precision and device.type != "cuda":
        raise SystemExit("tf32 is a CUDA setting; on CPU use fp32 or bf16")
    if args.big and 1024 not in args.sizes:
        args.sizes = [*args.sizes, 1024]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {
        "device": str(device),
        "weights": args.weights,
        "content": args.content,
        "style": args.style,
        "threads": args.threads,
        "clock": args.clock,
    }

    t_start = time.perf_counter()
    bench = Bench(str(device), args.weights, args.content, args.style, args.clock)
    results: dict[str, Any] = {"argv": sys.argv[1:] if argv is None else argv, "device": str(device)}
    report = [
        f"# gatys speed benchmark: {bench.st.weights_name}, paper layers "
        f"({', '.join(bench.preset.style_layers)}; content {', '.join(bench.preset.content_layers)}), "
        f"{bench.preset.pooling} pooling",
        "",
        "Command: `python -m benchmarks.speed " + " ".join(results["argv"]) + "`",
        "",
        *machine_notes(device, "the thread's CPU time, 1 thread" if args.clock == "cpu" else "wall"),
        f"- images: {bench.images_note}",
        "",
    ]

    def save() -> None:
        (out_dir / "table.md").write_text("\n".join(report) + "\n", encoding="utf-8")
        (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    args.save = save

    def emit(title: str, lines: list[str]) -> None:
        block = [f"## {title}", "", *lines, ""]
        print("\n".join(block), flush=True)
        report.extend(block)
        save()

    print("\n".join(report), flush=True)
    if "steps" in args.sections:
        emit("Per optimisation step", section_steps(args, base, results))
    if "bf16" in args.sections:
        emit("bf16 against fp32", section_bf16(args, bench, results, out_dir))
    if "quality" in args.sections:
        emit("Multi-scale time-to-quality", section_quality(args, bench, results))
    if args.compile:
        emit("torch.compile", section_compile(args, bench, results))
    if device.type == "cuda":
        emit("GPU renders", section_gpu(args, bench, results))
    report.append(
        f"Total benchmark wall time {time.perf_counter() - t_start:.0f} s; load average at end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}."
    )
    print(report[-1])
    save()
    print(f"\nwrote {out_dir / 'table.md'} and {out_dir / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

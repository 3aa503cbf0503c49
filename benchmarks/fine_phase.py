"""Where the time of a coarse-to-fine run goes: the full-resolution phase from different starts.

The time-to-quality section of ``benchmarks.speed`` sets a target (the total loss after 500 single-scale
steps at 512 px). This script starts the 512 px L-BFGS phase from several starting images and optimiser
set-ups and counts the full-resolution steps each needs to reach that target:

* ``photo``: the photo itself (a single-scale run from the photo);
* ``coarse-xK``: the ``quality`` preset's coarse scales (when measured: 128 → 256 px, 100 L-BFGS steps each) with the
  content term weighted K times more than gatys' pixel-count rule, upsampled to 512 px (K = 1 is the
  ``quality`` preset);
* ``photo-history100``: the photo, with L-BFGS keeping 100 correction pairs instead of 20;
* ``photo-pyramidN-rR``: the photo, optimised through an N-level Laplacian-pyramid parameterisation
  (x = Σ_k R^k · upsample(z_k)), which lets low spatial frequencies move faster.

    python -m benchmarks.fine_phase --target 986.3 --out outputs/fine-phase

Every run uses gatys' own losses and targets and the same L-BFGS set-up as ``stylize`` (strong-Wolfe line
search; one step = one forward + backward), so its steps cost what a ``stylize`` step costs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.speed import load_images  # noqa: E402
from gatys._optimize import build_targets, objective  # noqa: E402

LOGGED = (10, 25, 50, 100, 150, 200)
DEFAULT_VARIANTS = ("photo", "coarse-x1", "coarse-x64", "photo-history100", "photo-pyramid4-r1", "photo-pyramid4-r0.5")


class _Done(Exception):
    pass


class FinePhase:
    def __init__(self, st: Any, content: Any, style: Any, size: int):
        from gatys import allocator
        from gatys.presets import get_preset

        self.st, self.content, self.style = st, content, style
        # coarse starts are the experiment, so at any size (the preset itself runs none under 256 px)
        self.opts = get_preset("quality").with_overrides(size=size, min_scale_size=16)
        allocator.tune_allocator()
        self.final = self.st._prepare(self.content, size, "content image")
        self.final_pixels = self.final.shape[2] * self.final.shape[3]

    def targets(self, size: int, content_mult: float = 1.0) -> tuple[torch.Tensor, Any]:
        c = self.st._prepare(self.content, size, "content image")
        s = self.st._prepare(self.style, size, "style image")
        scale = self.final_pixels / (c.shape[2] * c.shape[3]) * content_mult  # gatys' rule, times K
        return c, build_targets(self.st.model, self.opts, c, [s], [1.0], scale)

    def lbfgs(
        self, params: list[torch.Tensor], make_x: Any, t: Any, steps: int, stop: float | None = None, history: int = 20
    ) -> dict[str, Any]:
        """``stylize``'s L-BFGS; returns the loss after each step and the step that reached ``stop``."""
        from gatys.transfer import lbfgs

        opt = lbfgs(params, steps, history_size=history)
        rec: dict[str, Any] = {"losses": [], "reached": None, "best": math.inf, "x": None}
        start = time.perf_counter()

        def closure() -> torch.Tensor:
            opt.zero_grad()
            x = make_x()
            loss, parts = objective(self.st.model, x, t)
            loss.backward()
            total, lc, ls, _ = parts.tolist()
            rec["losses"].append((total, t.alpha * lc, ls))
            if total < rec["best"]:
                rec["best"], rec["x"] = total, x.detach().clone()
            n = len(rec["losses"])
            if stop is not None and total <= stop:
                rec["reached"] = (n, time.perf_counter() - start)
                raise _Done
            if n >= steps:
                raise _Done
            return loss

        try:
            while True:
                opt.step(closure)
        except _Done:
            pass
        rec["seconds"] = time.perf_counter() - start
        return rec

    def coarse_start(self, content_mult: float, coarse_steps: int) -> tuple[torch.Tensor, float]:
        """The quality preset's coarse scales, upsampled to the final size; and their seconds.

        The coarse-to-fine loop of ``StyleTransfer._run``, written out because the content multiplier K is an
        experiment that ``stylize`` does not offer.
        """
        start = time.perf_counter()
        x = None
        for size in self.opts.scale_sizes()[:-1]:
            c, t = self.targets(size, content_mult)
            x = c.clone() if x is None else F.interpolate(x, size=c.shape[2:], mode="bicubic", align_corners=False)
            x = x.clamp(0, 1).detach().requires_grad_(True)
            x = self.lbfgs([x], lambda x=x: x, t, coarse_steps)["x"]
        assert x is not None
        up = F.interpolate(x, size=self.final.shape[2:], mode="bicubic", align_corners=False).clamp(0, 1)
        return up, time.perf_counter() - start

    def run(self, variant: str, target: float, cap: int, coarse_steps: int) -> dict[str, Any]:
        _, t = self.targets(self.opts.size)
        coarse_seconds, history, params = 0.0, 20, None
        x0 = self.final.clone()
        if variant.startswith("coarse-x"):
            x0, coarse_seconds = self.coarse_start(float(variant[len("coarse-x") :]), coarse_steps)
        elif variant == "photo-history100":
            history = 100
        elif variant.startswith("photo-pyramid"):
            levels, r = variant[len("photo-pyramid") :].split("-r")
            params, make_x = self._pyramid(x0, int(levels), float(r))
        elif variant != "photo":
            raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(DEFAULT_VARIANTS)}")
        if params is None:
            x = x0.detach().clone().requires_grad_(True)
            params, make_x = [x], (lambda: x)
        with torch.no_grad():
            _, parts = objective(self.st.model, x0, t)
        total, lc, ls, _ = parts.tolist()
        rec = self.lbfgs(params, make_x, t, cap, stop=target, history=history)
        return {
            "variant": variant,
            "start": (total, t.alpha * lc, ls),
            "coarse_seconds": coarse_seconds,
            "losses": rec["losses"],
            "reached": rec["reached"],
            "fine_seconds": rec["seconds"],
            "image": rec["x"],
        }

    def _pyramid(self, x0: torch.Tensor, levels: int, r: float) -> tuple[list[torch.Tensor], Any]:
        h, w = x0.shape[2:]
        zs = [x0.detach().clone().requires_grad_(True)]
        zs += [
            torch.zeros(1, 3, max(8, round(h / 2**k)), max(8, round(w / 2**k)), device=x0.device, requires_grad=True)
            for k in range(1, levels)
        ]

        def make_x() -> torch.Tensor:
            x = zs[0]
            for k, z in enumerate(zs[1:], 1):
                x = x + (r**k) * F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False)
            return x

        return zs, make_x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fine_phase", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--target",
        type=float,
        required=True,
        help="total loss to reach (the quality section's target, from python -m benchmarks.speed)",
    )
    p.add_argument("--size", type=int, default=512, help="final size [512]")
    p.add_argument("--cap", type=int, default=250, help="most full-resolution steps per variant [250]")
    p.add_argument("--coarse-steps", type=int, default=100, help="L-BFGS steps per coarse scale [100]")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated list")
    p.add_argument("--weights", default=None)
    p.add_argument("--content", default=None)
    p.add_argument("--style", default=None)
    p.add_argument("--out", default=str(ROOT / "outputs" / "fine-phase"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from gatys import StyleTransfer

    content, style, _ = load_images(args.content, args.style)
    bench = FinePhase(StyleTransfer.from_pretrained(args.weights), content, style, args.size)
    rows, results = [], []
    for variant in args.variants.split(","):
        print(f"[fine-phase] {variant}", file=sys.stderr, flush=True)
        r = bench.run(variant, args.target, args.cap, args.coarse_steps)
        from gatys import image as im

        im.to_pil(r.pop("image")).save(out / f"{variant}.png")
        results.append(r)
        losses = [loss for loss, _, _ in r["losses"]]
        at = [f"{losses[n - 1]:.0f}" if n <= len(losses) else "—" for n in LOGGED]
        if r["reached"]:
            steps, secs = r["reached"]
            reached = f"{steps} | {r['coarse_seconds'] + secs:.1f}"
        else:
            reached = f"not in {len(losses)} | —"
        s_total, s_c, s_s = r["start"]
        rows.append(f"| {variant} | {s_total:.0f} ({s_c:.0f} + {s_s:.0f}) | {' | '.join(at)} | {reached} |")
        (out / "results.json").write_text(json.dumps({"target": args.target, "runs": results}, indent=1))
    table = [
        f"Target total loss {args.target:g} at {args.size} px. Start: total (α·L_content + L_style) of the first "
        "full-resolution image. Loss after N full-resolution steps. Seconds: coarse scales (if any) plus the "
        "full-resolution steps until the target.",
        "",
        "| start | start loss | " + " | ".join(f"step {n}" for n in LOGGED) + " | steps to target | seconds |",
        "|---|---|" + "---|" * len(LOGGED) + "---|---|",
        *rows,
    ]
    (out / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Instant styles against optimisation, for one trained FastStyle model (Johnson et al. 2016, Table 1, Fig. 5).

    python -m benchmarks.instant [--model starry-night] [--sizes 256 512 1024] [--full-max 512]
                                 [--photos tubingen golden_gate] [--eval-size 256] [--steps 300] [--out DIR]

Prints markdown tables and writes them, ``results.json`` and the comparison images to ``--out``:

* **speed** (the paper's Table 1): seconds per image for ``FastStyle.stylize`` (median of 3 after a warm-up)
  and for ``StyleTransfer.stylize`` with the ``recommended`` preset (its own scales and steps) at each size, and
  their ratio. Optimisation runs above ``--full-max`` px are timed over ``--probe-steps`` steps and scaled
  to the preset's step count (marked *est.*).
* **fig5** (the paper's Fig. 5): on held-out photos (never trained on), the model's own training objective
  (its recipe's layers and weights, its style image) evaluated on the network's output, and on the iterates
  of L-BFGS minimising that same objective started from the photo: how many steps reach the network's loss
  (``--noise``: also from white noise, the paper's start for the optimisation, for context).
* **refine** ("instant, then refine"): L-BFGS on the same objective started from the network's output,
  steps and seconds to reach the loss that ``--steps`` steps from the photo reach.
* **product** ("instant, then refine" as README shows it): ``StyleTransfer.stylize(photo, style,
  preset="recommended", init_image=<the network's output>)`` against the same call started from the photo
  (the preset's own start), both ``--steps`` steps at ``--eval-size``: steps and seconds (setup included) for
  the run from the network to reach the loss the run from the photo ends at, on the preset's objective.

One image per photo, ``fig5_<photo>.jpg``: photo | network | optimisation at the step that matches the
network | optimisation at ``--steps`` | refined from the network to that loss; ``product_<photo>.jpg``:
photo | network | ``recommended`` from the photo | ``recommended`` from the network when it reached that loss.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gatys import FastStyle, StyleTransfer
from gatys._optimize import initial_image
from gatys._trainloop import PerceptualLoss, _load_tensor
from gatys.image import load_image, resize_longest, to_pil, to_tensor
from gatys.presets import PRESETS, Preset
from gatys.train import Recipe, sha256_file
from gatys.weights import load_vgg

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"


def photo_path(name: str) -> Path:
    p = Path(name)
    return p if p.suffix else SHARED_IMAGES / f"{name}.jpg"


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- speed ------------------------------------------------------------------------------------------------


def section_speed(args: argparse.Namespace, fs: FastStyle, style: Path) -> tuple[list[str], list[dict[str, Any]]]:
    photo = load_image(photo_path(args.photos[0]))
    st = StyleTransfer.from_pretrained()
    rows, lines = (
        [],
        [
            "| size | FastStyle s/image | recommended s/image | ratio |",
            "|---|---|---|---|",
        ],
    )
    for size in args.sizes:
        fs.stylize(photo, size=size)  # warm-up
        fast = statistics.median(timed(lambda: fs.stylize(photo, size=size)) for _ in range(3))
        if size <= args.full_max:
            slow = timed(lambda: st.stylize(photo, style, preset="recommended", size=size))
            note = ""
        else:
            # Every scale's steps cut by the same factor, so the probe's time scales back up by that factor.
            rec = PRESETS["recommended"]
            factor = rec.steps / args.probe_steps
            coarse = max(1, round((rec.coarse_steps or rec.steps) / factor))
            probe = timed(
                lambda: st.stylize(photo, style, preset=rec, size=size, steps=args.probe_steps, coarse_steps=coarse)
            )
            slow = probe * factor
            note = f" (est.: {args.probe_steps} steps a scale × {factor:g})"
        rows.append({"size": size, "fast_s": fast, "optim_s": slow, "estimated": bool(note), "ratio": slow / fast})
        lines.append(f"| {size} | {fast:.3f} | {slow:.1f}{note} | {slow / fast:.0f}× |")
        print(lines[-1], flush=True)
    return lines, rows


# --- fig5 and refine --------------------------------------------------------------------------------------


def lbfgs_trace(
    objective: PerceptualLoss, start: torch.Tensor, content: torch.Tensor, steps: int, stop_below: float = -1.0
) -> tuple[list[float], list[float], list[torch.Tensor]]:
    """L-BFGS on the training objective from ``start``: loss, seconds and image (uint8) after each step."""
    x = start.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=steps, history_size=100, tolerance_grad=-1, tolerance_change=-1)
    losses, seconds, images = [], [], []
    t0 = time.perf_counter()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective(x, content)["total"]
        loss.backward()
        # The loss of the image before this update (L-BFGS evaluates, then steps).
        losses.append(float(loss.detach()))
        seconds.append(time.perf_counter() - t0)
        images.append((x.detach().clamp(0, 1) * 255).round().to(torch.uint8))
        if 0 <= losses[-1] <= stop_below:
            raise StopIteration
        return loss

    with contextlib.suppress(StopIteration):  # raised by the closure once the loss is low enough
        opt.step(closure)
    return losses, seconds, images


def first_at_or_below(losses: list[float], target: float) -> int | None:
    """The first step (0 = the start image) whose loss is at or below ``target``."""
    return next((i for i, v in enumerate(losses) if v <= target), None)


def section_fig5(args: argparse.Namespace, fs: FastStyle, style: Path, out: Path) -> tuple[list[str], list[dict]]:
    cfg = fs.config
    recipe = Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.recipe.items()})
    vgg = load_vgg(None)
    if vgg.config.display_name != cfg.loss_network.get("label"):
        print(f"note: evaluating with {vgg.config.display_name}, trained with {cfg.loss_network.get('label')}")
    weights = cfg.training.get("style_layer_weights")
    if weights is None:  # a model trained before the style layers were balanced: the raw Gram losses
        recipe = dataclasses.replace(recipe, style_balance="none")
    style_t = _load_tensor(style, recipe.style_size, "style image")
    objective = PerceptualLoss(vgg, style_t, recipe, layer_weights=weights)
    objective.requires_grad_(False)
    lines = [
        f"| photo ({args.eval_size} px) | network loss | photo loss | opt. steps to network loss | "
        f"loss at {args.steps} steps | refine: steps (s) to that loss | from photo: s to {args.steps} steps | "
        "refine / photo time |"
        + (" from white noise: steps to network loss (loss at the last step) |" if args.noise else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if args.noise else ""),
    ]
    rows = []
    for name in args.photos:
        photo = to_tensor(resize_longest(load_image(photo_path(name)), args.eval_size, name))
        with torch.no_grad():
            y = fs.net(photo.to(fs.device)).float().cpu()
            net_loss = float(objective(y, photo)["total"])
        losses, secs, imgs = lbfgs_trace(objective, photo, photo, args.steps)
        match = first_at_or_below(losses, net_loss)
        final = losses[-1]
        r_losses, r_secs, r_imgs = lbfgs_trace(objective, y, photo, args.steps, stop_below=final)
        r_step = first_at_or_below(r_losses, final)
        r_time = r_secs[r_step] if r_step is not None else float("nan")
        row = {
            "photo": name,
            "network_loss": net_loss,
            "photo_loss": losses[0],
            "steps_to_network_loss": match,
            "loss_at_steps": final,
            "refine_steps": r_step,
            "refine_s": r_time,
            "photo_start_s": secs[-1],
            "trace": losses,
            "refine_trace": r_losses,
        }
        noise_cell = ""
        if args.noise:  # Gatys et al.'s start: the noise the `paper` preset draws (seed 0)
            noise = initial_image(Preset(init="noise"), photo, None, None, seed=0)
            n_losses, _, _ = lbfgs_trace(objective, noise, photo, args.steps)
            n_match = first_at_or_below(n_losses, net_loss)
            row |= {"noise_steps_to_network_loss": n_match, "noise_trace": n_losses}
            noise_cell = f" {n_match if n_match is not None else f'> {args.steps}'} ({n_losses[-1]:.4g}) |"
        rows.append(row)
        shown = f"{match}" if match is not None else f"> {args.steps}"
        rs = f"{r_step} ({r_time:.1f} s)" if r_step is not None else f"> {args.steps} (at best {min(r_losses):.4g})"
        ratio = f"{r_time / secs[-1]:.2f}" if r_step is not None else "not reached"
        lines.append(
            f"| {name} | {net_loss:.4g} | {losses[0]:.4g} | {shown} | {final:.4g} | {rs} | {secs[-1]:.1f} | {ratio} |"
            + noise_cell
        )
        print(lines[-1], flush=True)
        panels = [photo, y, imgs[match if match is not None else -1], imgs[-1], r_imgs[-1]]
        strip(panels).save(out / f"fig5_{Path(name).stem}.jpg", quality=92)
    return lines, rows


def section_product(args: argparse.Namespace, fs: FastStyle, style: Path, out: Path) -> tuple[list[str], list]:
    st = StyleTransfer.from_pretrained()
    lines = [
        f"| photo ({args.eval_size} px) | from the photo: loss at {args.steps} steps | s | from the network: "
        "steps to that loss | s | time ratio | step 1 loss from the network | step 1 loss from the photo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    run = dict(preset="recommended", size=args.eval_size, steps=args.steps, progress=False)
    for name in args.photos:
        photo = resize_longest(load_image(photo_path(name)), args.eval_size, name)
        start = fs.stylize(photo)
        t0 = time.perf_counter()
        base = st.stylize(photo, style, **run)
        base_s = time.perf_counter() - t0
        target = base.losses[-1].loss
        reached: list[Any] = []

        def stop_at_target(info: Any, reached: list[Any] = reached, target: float = target) -> bool:
            if info.loss <= target:
                reached.append((info.step, time.perf_counter(), info.image))
                return False
            return True

        t0 = time.perf_counter()
        refined = st.stylize(photo, style, init_image=start, callback=stop_at_target, **run)
        first_loss, photo_first = refined.losses[0].loss, base.losses[0].loss
        if reached:
            step, t1, image = reached[0]
            ref_s: float | None = t1 - t0
            shown, ratio = f"{step} | {ref_s:.1f}", f"{ref_s / base_s:.2f}"
        else:
            step, ref_s, image = None, None, refined.image
            shown, ratio = f"> {args.steps} (at best {min(i.loss for i in refined.losses):.4g}) | —", "not reached"
        rows.append(
            {
                "photo": name,
                "photo_start_loss": target,
                "photo_start_s": base_s,
                "refine_steps": step,
                "refine_s": ref_s,
                "network_first_step_loss": first_loss,
                "photo_first_step_loss": photo_first,
                "trace": [i.loss for i in base.losses],
                "refine_trace": [i.loss for i in refined.losses],
            }
        )
        lines.append(
            f"| {name} | {target:.4g} | {base_s:.1f} | {shown} | {ratio} | {first_loss:.4g} | {photo_first:.4g} |"
        )
        print(lines[-1], flush=True)
        panels = [to_tensor(p) for p in (photo, start, base.image, image)]
        strip(panels).save(out / f"product_{Path(name).stem}.jpg", quality=92)
    return lines, rows


def strip(panels: list[torch.Tensor]) -> Image.Image:
    """The panels side by side, 4 px apart, on white."""
    pil = [to_pil(p.float() / 255 if p.dtype == torch.uint8 else p) for p in panels]
    w, h = sum(p.width for p in pil) + 4 * (len(pil) - 1), max(p.height for p in pil)
    sheet = Image.new("RGB", (w, h), "white")
    x = 0
    for p in pil:
        sheet.paste(p, (x, 0))
        x += p.width + 4
    return sheet


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.instant", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="starry-night", help="model name, folder or Hub repo (default %(default)s)")
    p.add_argument("--style", help="the model's style image (default: ../shared/images/<style_name>)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--full-max", type=int, default=512, help="largest size timed over a full optimisation")
    p.add_argument("--probe-steps", type=int, default=20, help="steps timed above --full-max")
    p.add_argument("--photos", nargs="+", default=["tubingen", "golden_gate"], help="held-out photos")
    p.add_argument("--eval-size", type=int, default=256, help="longest side for fig5, refine and product, px")
    p.add_argument("--steps", type=int, default=300, help="L-BFGS steps from the photo")
    p.add_argument(
        "--noise", action="store_true", help="fig5 also from white noise (Gatys et al.'s start), for context"
    )
    p.add_argument("--sections", default="speed,fig5,product", help="comma-separated subset of speed,fig5,product")
    p.add_argument("--out", default="outputs/bench-instant", help="folder for tables, images, results.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fs = FastStyle.from_pretrained(args.model, device="cpu")
    style = Path(args.style) if args.style else SHARED_IMAGES / (fs.config.style_name or "")
    if not style.is_file():
        raise SystemExit(f"style image {style} not found; pass --style")
    if fs.config.style_sha256 and sha256_file(style) != fs.config.style_sha256:
        raise SystemExit(f"{style} is not the image {args.model} was trained on (SHA-256 differs); pass --style")
    sections = {s.strip() for s in args.sections.split(",")}
    print(f"{fs.description}; {torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    report: list[str] = [f"Model: {args.model} ({fs.description}), torch {torch.__version__}", ""]
    results: dict[str, Any] = {"model": args.model, "config": fs.config.to_dict()}
    if "speed" in sections:
        lines, results["speed"] = section_speed(args, fs, style)
        report += ["### Seconds per image", "", *lines, ""]
    if "fig5" in sections:
        lines, results["fig5"] = section_fig5(args, fs, style, out)
        report += ["### Training objective: network vs optimisation (Fig. 5) and instant-then-refine", "", *lines, ""]
    if "product" in sections:
        lines, results["product"] = section_product(args, fs, style, out)
        report += ["### Instant, then refine with `recommended` (the README's recipe)", "", *lines, ""]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

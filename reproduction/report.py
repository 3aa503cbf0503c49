"""What a figure hands back (:class:`FigureResult`) and the report: ``report.md`` and ``report.json``."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from .fmt import fmt_time, table
from .runs import FIGURES, Context

D = TypeVar("D")


@dataclasses.dataclass
class Check:
    """One measured claim of the paper: passed or not, and the numbers behind it."""

    figure: str
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class FigureResult(Generic[D]):
    """A finished figure: its measured data (``report.json``), checks, report section and contact sheets."""

    figure: str
    title: str  # of its section in report.md
    data: D
    checks: list[Check]
    markdown: str
    sheets: tuple[str, ...]  # relative to the output folder


@dataclasses.dataclass
class Timing:
    """The time estimate before the runs, and the wall time after them."""

    estimate_s: float | None = None
    calibration: dict[int, float] | None = None  # seconds per full step, by size
    wall_s: float | None = None


def _without_none(items: list[tuple[str, Any]]) -> dict[str, Any]:
    # Fields a figure did not measure (an absent painting's losses) are left out of report.json, not null.
    return {k: v for k, v in items if v is not None}


def _header(ctx: Context, timing: Timing, argv: Sequence[str], partial: bool) -> dict[str, Any]:
    st, cfg = ctx.st, ctx.model.config
    return {
        "command": "python -m reproduction " + " ".join(shlex.quote(a) for a in argv),
        "figures": list(ctx.settings.figures),
        "weights": st.weights_name,
        "architecture": cfg.architecture,
        "alpha_beta_scale": cfg.alpha_beta_scale,
        "device": st.description,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "seed": ctx.settings.seed,
        "estimate_s": timing.estimate_s,
        "calibration_s_per_step": timing.calibration,
        "wall_s": timing.wall_s,
        "runs_s": sum(r.seconds for r in ctx.runs.values()),
        "runs": len(ctx.runs),
        "reused_runs": sum(r.reused for r in ctx.runs.values()),
        "partial": partial,
        "skipped": ctx.skipped,
    }


def _settings_lines(ctx: Context, timing: Timing, header: Mapping[str, Any]) -> list[str]:
    st, cfg, seed = ctx.st, ctx.model.config, ctx.settings.seed
    cal = timing.calibration or {}
    start = (
        "full-range uniform white noise (the paper's)"
        if ctx.settings.init == "noise"
        else "the preset's init (noise of σ 0.001 around grey)"
    )
    calibrated = ", ".join(f"{v:.3f} s per full step at {k} px" for k, v in cal.items())
    estimate = (
        "n/a"
        if timing.estimate_s is None
        else f"{fmt_time(timing.estimate_s)} (calibrated {calibrated})"
        if cal
        else f"{fmt_time(timing.estimate_s)} (nothing left to run)"
    )
    wall = fmt_time(timing.wall_s) if timing.wall_s is not None else "(not finished)"
    return [
        f"- Command: `{header['command']}`",
        f"- Weights: {st.weights_name} ({cfg.architecture}). **The paper used VGG-19** (with filters rescaled "
        f"to mean activation 1); these weights differ, so pictures and loss magnitudes differ too.",
        f"- α/β: the paper's values x alpha_beta_scale = {cfg.alpha_beta_scale:g} from the weights' config.json.",
        "- Method: L-BFGS (Fig. 1 content reconstructions: Adam), average pooling, content layer conv4_2, style "
        f"weights w_l = 1/(number of style layers); seed {seed} for every run. Start: Fig. 1 the library's "
        f"reconstruct_content / reconstruct_style defaults; Figs. 2-3 {start}.",
        f"- Device: {st.description}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs.",
        f"- Estimated time before starting: {estimate}",
        f"- Wall time: {wall}"
        + "".join(f"; {f} {fmt_time(s)}" for f, s in ctx.figure_seconds.items())
        + f". The {header['runs']} optimisation runs took {fmt_time(header['runs_s'])} together.",
    ]


def _markdown(
    ctx: Context, timing: Timing, header: Mapping[str, Any], results: Mapping[str, FigureResult[Any]], partial: bool
) -> list[str]:
    checks = [c for r in results.values() for c in r.checks]
    md = [
        "# Reproducing Gatys, Ecker & Bethge (2015), Figures 1-3",
        "",
        "(partial: the run is still going or was interrupted)" if partial else "",
        *_settings_lines(ctx, timing, header),
    ]
    if header["reused_runs"]:
        md.append(
            f"- Resumed: {header['reused_runs']} of {header['runs']} runs were reused from an earlier "
            "invocation with the same settings (--resume); the wall times above count this invocation only, the "
            "run times in the tables are each run's own."
        )
    md += [f"- Skipped: {s}" for s in ctx.skipped]
    md += [
        "- Image size matters for α/β: L_content sums over the M_l positions of a layer while E_l divides by "
        "M_l², so at a given α/β the content term weighs (size / 512)² as much as in a 512 px run: at 128 px, 16x "
        "less. Small runs look more stylised than the paper's figures at the same α/β.",
        "",
        "## Checks",
        "",
        f"{sum(c.passed for c in checks)} of {len(checks)} passed.",
        "",
        table(
            ["figure", "check", "result", "measured"],
            [[c.figure, c.name, "pass" if c.passed else "**FAIL**", c.detail] for c in checks],
        ),
    ]
    for f in FIGURES:
        if f in results:
            md += ["", f"## {results[f].title}", "", results[f].markdown]
    return md


def write_report(
    *,
    ctx: Context,
    timing: Timing,
    results: Mapping[str, FigureResult[Any]],
    argv: Sequence[str],
    partial: bool = False,
) -> Path:
    """Write ``report.json`` and ``report.md`` into the output folder.

    Args:
        results: the figures finished so far, in the order they finished (the order of the checks).
        argv: the command's arguments, for the report's "Command" line.
        partial: the runs are not all done (a report written after each figure).

    Returns:
        The path of ``report.md``.
    """
    header = _header(ctx, timing, argv, partial)
    report = {
        **header,
        **{f: dataclasses.asdict(results[f].data, dict_factory=_without_none) for f in FIGURES if f in results},
        "sheets": {f: list(results[f].sheets) for f in FIGURES if f in results},
        "checks": [dataclasses.asdict(c) for r in results.values() for c in r.checks],
    }
    out = ctx.settings.out
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    path = out / "report.md"
    path.write_text("\n".join(_markdown(ctx, timing, header, results, partial)) + "\n")
    return path

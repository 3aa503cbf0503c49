"""How the reproduction writes numbers, times, ratios, layer sets and tables in its report and labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt_time(s: float) -> str:
    """Seconds as ``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = max(0, round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def layer_set_name(layers: Sequence[str]) -> str:
    """``conv1_1`` for one layer, ``conv1_1..conv3_1`` for a run of them."""
    return layers[0] if len(layers) == 1 else f"{layers[0]}..{layers[-1]}"


def ratio(r: float) -> str:
    """An α/β as ``1e-3`` (``2.5e-5`` where one digit is not enough)."""
    mantissa, exponent = f"{r:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def num(v: float) -> str:
    """A measured loss with three significant digits."""
    if v == 0:
        return "0"
    if math.isinf(v):
        return "inf"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)

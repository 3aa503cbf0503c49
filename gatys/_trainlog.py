"""What training leaves on disk besides the model: the checkpoint, the loss log and plot, sample renders.

Every file is written under a temporary name and renamed over the old one (``os.replace`` is atomic on one
file system), so an interrupt at any moment leaves either the previous complete file or the new one.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from .errors import ConfigError
from .image import to_pil, write_atomic

CHECKPOINT_NAME = "checkpoint.pt"
LOG_COLUMNS = ("step", "total", "content", "style", "tv", "seconds")
#: Curve colours of the loss plot, by column.
COLOURS = {"total": (20, 20, 20), "content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44)}


def replace_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path``, flush it to disk, then rename it over ``path`` (making the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, fsync=True)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    replace_atomic(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is tensors, numbers, strings and lists; nothing to unpickle beyond those.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"checkpoint {path} cannot be read ({str(e).splitlines()[0][:120]}); delete it") from e
    if not isinstance(payload, dict) or "step" not in payload:
        raise ConfigError(f"{path} is not a gatys training checkpoint; delete it or choose another --out")
    return payload


def write_log(path: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    replace_atomic(path, buf.getvalue().encode("utf-8"))


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(rows: list[dict[str, float]], *, width: int = 800, height: int = 450) -> Image.Image:
    """Weighted losses against step on a log scale, smoothed over ~1% of the run (matplotlib is not a dependency)."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 60, width - 20, 20, height - 40
    draw.rectangle((left, top, right, bottom), outline=(150, 150, 150))
    series = {k: [float(r[k]) for r in rows] for k in COLOURS if rows and k in rows[0]}
    logs = [math.log10(v) for vs in series.values() for v in vs if v > 0]
    if len(rows) < 2 or not logs:
        draw.text((left + 10, top + 10), "not enough steps to plot", fill=(0, 0, 0))
        return img
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    hi = max(hi, lo + 1)
    steps = [float(r["step"]) for r in rows]
    s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

    def xy(step: float, value: float) -> tuple[float, float]:
        y = (math.log10(max(value, 10.0**lo)) - lo) / (hi - lo)
        return left + (step - s0) / (s1 - s0) * (right - left), bottom - y * (bottom - top)

    for e in range(lo, hi + 1):
        _, y = xy(s0, 10.0**e)
        draw.line((left, y, right, y), fill=(230, 230, 230))
        draw.text((5, y - 6), f"1e{e}", fill=(80, 80, 80))
    draw.text((left, bottom + 8), f"step {int(s0)}", fill=(80, 80, 80))
    draw.text((right - 80, bottom + 8), f"step {int(s1)}", fill=(80, 80, 80))
    window = max(1, len(rows) // 100)
    for i, (name, values) in enumerate(series.items()):
        points = [xy(s, v) for s, v in zip(steps, _smooth(values, window)) if v > 0]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[name], width=2)
        draw.text((right - 70, top + 8 + 14 * i), name, fill=COLOURS[name])
    return img


def sample_grid(images: list[torch.Tensor], *, pad: int = 4) -> Image.Image:
    """(1, 3, H, W) renders side by side on white, top-aligned, as one PIL image."""
    height = max(t.shape[-2] for t in images)
    tiles = [torch.nn.functional.pad(t, (pad, pad, pad, pad + height - t.shape[-2]), value=1.0) for t in images]
    return to_pil(torch.cat(tiles, dim=-1))

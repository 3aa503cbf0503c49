"""Contact sheets: images in a labelled grid (title, column and row labels, captions), and Fig. 2's inset.

Text is drawn with Pillow's default font, which covers ASCII only, so labels are transliterated (α -> alpha).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence
from typing import Any, Union

from PIL import Image, ImageDraw, ImageFont

#: A cell of a contact sheet: an image, a string (drawn as a grey placeholder box with that text) or None (empty).
Cell = Union[Image.Image, str, None]  # noqa: UP007 (a runtime alias on 3.10)
Font = Any  # ImageFont.ImageFont | ImageFont.FreeTypeFont, whichever this Pillow gives

# Pillow's default font (Aileron) covers ASCII only; everything else would print as boxes.
_ASCII = str.maketrans({"α": "alpha", "β": "beta", "×": "x", "–": "-", "—": "-", "σ": "sigma", "…": "..."})


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return text.encode("ascii", "ignore").decode("ascii")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` px: at spaces, and inside words too long for a line."""
    lines: list[str] = []
    for para in _ascii(text).split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and draw.textlength(line, font=font) > width:
                cut = next(
                    i for i in range(len(line), 0, -1) if i == 1 or draw.textlength(line[:i], font=font) <= width
                )
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _text_block(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    lines: Sequence[str],
    font: Font,
    line_h: int,
    width: int | None = None,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> None:
    x, y = xy
    for i, line in enumerate(lines):
        dx = 0 if width is None else max(0, (width - draw.textlength(line, font=font)) / 2)
        draw.text((x + dx, y + i * line_h), line, font=font, fill=fill)


@dataclasses.dataclass
class _Layout:
    """Where everything of a contact sheet goes: fonts, the tile, and each row's, label's and caption's size."""

    cells: list[list[Cell]]  # images scaled to the tile
    tile: int
    font: Font
    small: Font
    line_h: int
    small_h: int
    pad: int
    row_h: list[int]
    cap_lines: list[list[list[str]]]
    cap_h: list[int]
    row_lines: list[list[str]]
    label_w: int
    col_lines: list[list[str]]
    col_h: int
    title_lines: list[str]
    title_h: int

    @property
    def size(self) -> tuple[int, int]:
        n_cols = len(self.cells[0])
        width = self.pad + self.label_w + n_cols * (self.tile + self.pad)
        height = self.pad + self.title_h + self.col_h + sum(h + c + self.pad for h, c in zip(self.row_h, self.cap_h))
        return width, height


def _scaled(cell: Cell, tile: int) -> Cell:
    if not isinstance(cell, Image.Image):
        return cell
    h = max(1, round(cell.height * tile / cell.width))
    return cell if cell.size == (tile, h) else cell.resize((tile, h), Image.Resampling.LANCZOS)


def _layout(
    rows: list[list[Cell]],
    *,
    title: str,
    col_labels: Sequence[str],
    row_labels: Sequence[str],
    captions: Sequence[Sequence[str]] | None,
    tile: int | None,
    font_size: int | None,
) -> _Layout:
    """Measure a contact sheet of equally long ``rows`` before drawing it."""
    n_cols = len(rows[0])
    images = [c for r in rows for c in r if isinstance(c, Image.Image)]
    tile = tile or max([128, *(c.width for c in images)])
    fs = font_size or max(11, min(18, tile // 11))
    font, small = _font(fs), _font(max(10, fs - 2))
    line_h, small_h = round(fs * 1.25), round(max(10, fs - 2) * 1.25)
    pad = max(4, fs // 2)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cells = [[_scaled(c, tile) for c in r] for r in rows]
    default_h = max((c.height for c in images), default=round(tile * 0.75))
    default_h = round(default_h * tile / max((c.width for c in images), default=tile))
    row_h = [max((c.height for c in r if isinstance(c, Image.Image)), default=default_h) for r in cells]

    def caption(i: int, j: int) -> str:
        return captions[i][j] if captions and i < len(captions) and j < len(captions[i]) else ""

    cap_lines = [[_wrap(probe, caption(i, j), small, tile) for j in range(n_cols)] for i in range(len(rows))]
    cap_h = [max((len(ls) for ls in r if ls != [""]), default=0) * small_h for r in cap_lines]
    label_w = 0
    row_lines = [_wrap(probe, lbl, font, 10 * tile) for lbl in row_labels]
    if row_lines:
        label_w = round(max(probe.textlength(line, font=font) for ls in row_lines for line in ls)) + 2 * pad
    col_lines = [_wrap(probe, lbl, font, tile) for lbl in col_labels]
    col_h = max((len(ls) for ls in col_lines), default=0) * line_h + (pad if col_lines else 0)
    title_lines = _wrap(probe, title, font, label_w + n_cols * (tile + pad)) if title else []
    title_h = len(title_lines) * line_h + (pad if title_lines else 0)
    return _Layout(
        cells=cells,
        tile=tile,
        font=font,
        small=small,
        line_h=line_h,
        small_h=small_h,
        pad=pad,
        row_h=row_h,
        cap_lines=cap_lines,
        cap_h=cap_h,
        row_lines=row_lines,
        label_w=label_w,
        col_lines=col_lines,
        col_h=col_h,
        title_lines=title_lines,
        title_h=title_h,
    )


def _draw_row(sheet: Image.Image, draw: ImageDraw.ImageDraw, lay: _Layout, i: int, x0: int, y: int) -> None:
    """Row ``i`` at height ``y``: its label, its cells from ``x0`` on, and their captions."""
    tile, pad, h = lay.tile, lay.pad, lay.row_h[i]
    if i < len(lay.row_lines):
        ls = lay.row_lines[i]
        _text_block(draw, (pad, y + (h - len(ls) * lay.line_h) // 2), ls, lay.font, lay.line_h)
    for j, c in enumerate(lay.cells[i]):
        x = x0 + j * (tile + pad)
        if isinstance(c, Image.Image):
            sheet.paste(c, (x, y))
        elif isinstance(c, str):
            draw.rectangle((x, y, x + tile - 1, y + h - 1), fill=(225, 225, 225), outline=(170, 170, 170))
            ls = _wrap(draw, c, lay.small, tile - 2 * pad)
            xy = (x + pad, y + (h - len(ls) * lay.small_h) // 2)
            _text_block(draw, xy, ls, lay.small, lay.small_h, tile - 2 * pad, fill=(80, 80, 80))
        if lay.cap_lines[i][j] != [""]:
            _text_block(draw, (x, y + h + 2), lay.cap_lines[i][j], lay.small, lay.small_h, tile, fill=(40, 40, 40))


def contact_sheet(
    grid: Sequence[Sequence[Cell]],
    *,
    title: str = "",
    col_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    captions: Sequence[Sequence[str]] | None = None,
    tile: int | None = None,
    font_size: int | None = None,
) -> Image.Image:
    """Lay images out in a labelled grid.

    Args:
        grid: rows of cells: an image, a string (a grey placeholder box showing it) or None (left empty).
        title: a line (or lines) above everything.
        col_labels, row_labels: text above each column and left of each row ("\\n" breaks lines).
        captions: text under each cell, same shape as ``grid``.
        tile: width of every cell in px (images are scaled to it); default: the widest image, at least 128.
        font_size: default: about a tenth of the tile, at least 11 px.

    Returns:
        An RGB image.

    Example:
        >>> sheet = contact_sheet([[a, b], [c, "missing"]], col_labels=["x", "y"], title="demo")
    """
    rows = [list(r) for r in grid]
    if not rows or not any(rows):
        raise ValueError("contact_sheet needs at least one cell")
    n_cols = max(len(r) for r in rows)
    rows = [r + [None] * (n_cols - len(r)) for r in rows]
    lay = _layout(
        rows,
        title=title,
        col_labels=col_labels,
        row_labels=row_labels,
        captions=captions,
        tile=tile,
        font_size=font_size,
    )
    sheet = Image.new("RGB", lay.size, (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    pad, line_h = lay.pad, lay.line_h
    _text_block(draw, (pad, pad), lay.title_lines, lay.font, line_h)
    x0, y = pad + lay.label_w, pad + lay.title_h
    for j, ls in enumerate(lay.col_lines):
        xy = (x0 + j * (lay.tile + pad), y + lay.col_h - pad - len(ls) * line_h)
        _text_block(draw, xy, ls, lay.font, line_h, lay.tile)
    y += lay.col_h
    for i in range(len(lay.cells)):
        _draw_row(sheet, draw, lay, i, x0, y)
        y += lay.row_h[i] + lay.cap_h[i] + pad
    return sheet


def with_inset(panel: Image.Image, painting: Image.Image, fraction: float = 0.3) -> Image.Image:
    """The panel with a small copy of the painting in its lower left corner, as the paper's Fig. 2 shows it."""
    out = panel.copy()
    w = max(8, round(panel.width * fraction))
    thumb = painting.resize((w, max(1, round(painting.height * w / painting.width))), Image.Resampling.LANCZOS)
    border = max(1, panel.width // 128)
    framed = Image.new("RGB", (thumb.width + 2 * border, thumb.height + 2 * border), (255, 255, 255))
    framed.paste(thumb, (border, border))
    out.paste(framed, (0, max(0, panel.height - framed.height)))
    return out

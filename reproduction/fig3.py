"""Fig. 3: the 5 x 4 grid of style layer sets A-E x α/β 1e-5 … 1e-2, for one painting.

Measured: the content loss (conv4_2) and style loss (conv1_1 … conv5_1, w_l = 1/5) of every cell, re-evaluated
with the same fixed weights so cells compare, and whether the trade-off is monotone in α/β along each row.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from PIL import Image

from gatys import image as im
from gatys.presets import FIG3_LAYER_SETS, FIG3_RATIOS, PAPER_CONTENT_LAYER, fig3_preset_name

from .fmt import fmt_time, layer_set_name, num, ratio, table
from .measure import content_loss_at, depth_fraction, style_losses, weighted_style_loss
from .metrics import is_monotone
from .report import Check, FigureResult
from .runs import Context, Job
from .sheets import Cell, contact_sheet

FIGURE = "fig3"
TITLE = "Figure 3: layers x α/β"
DEFAULT_STYLE = "starry_night.jpg"


@dataclasses.dataclass
class GridCell:
    """One cell of the grid: a style layer set (row) at one α/β (column), measured."""

    row: str
    layers: list[str]
    alpha_beta: float
    file: str
    content_loss: float
    style_loss: float  # over conv1_1..conv5_1, w_l = 1/5: the same for every cell
    style_loss_own_layers: float  # over the row's own layers, the term the run traded against content
    style_loss_per_layer: dict[str, float]
    seconds: float


@dataclasses.dataclass
class Fig3Data:
    size: int
    steps: int
    seconds: float
    painting: str
    cells: list[GridCell]

    def cell(self, row: str, alpha_beta: float) -> GridCell:
        return next(c for c in self.cells if c.row == row and c.alpha_beta == alpha_beta)


Fig3Result = FigureResult[Fig3Data]


def _key(letter: str, r: float) -> str:
    return f"cell/{letter}/{ratio(r)}"


def _style(ctx: Context) -> Image.Image:
    return im.load_image(ctx.settings.fig3_style, max_side=2 * ctx.settings.size[FIGURE], name="Fig. 3 painting")


def plan(ctx: Context) -> list[Job]:
    """One run per cell, row by row."""
    s = ctx.settings
    size, steps = s.size[FIGURE], s.steps[FIGURE]
    style = _style(ctx)
    jobs = []
    for letter, layers in FIG3_LAYER_SETS.items():
        for r in FIG3_RATIOS:
            run = functools.partial(
                ctx.st.stylize,
                ctx.photo,
                style,
                preset=fig3_preset_name(letter, r),
                size=size,
                steps=steps,
                seed=s.seed,
                **ctx.init_kwargs(size),
            )
            channels = ctx.model.config.channels
            deepest = max(layers[-1], PAPER_CONTENT_LAYER, key=lambda n: depth_fraction(channels, n))
            label = f"row {letter} ({layer_set_name(layers)}), α/β {ratio(r)}"
            jobs.append(Job(FIGURE, _key(letter, r), label, size, steps, deepest, run, f"fig3/{letter}_{ratio(r)}.png"))
    return jobs


def _measure(ctx: Context, style: Image.Image, photo: Image.Image) -> list[GridCell]:
    cells = []
    for letter, layers in FIG3_LAYER_SETS.items():
        for r in FIG3_RATIOS:
            out = ctx.runs[_key(letter, r)]
            per = style_losses(ctx.model, out.image, style)
            cells.append(
                GridCell(
                    row=letter,
                    layers=list(layers),
                    alpha_beta=r,
                    file=out.file,
                    content_loss=content_loss_at(ctx.model, out.image, photo),
                    style_loss=weighted_style_loss(per),
                    style_loss_own_layers=weighted_style_loss(per, layers),
                    style_loss_per_layer=per,
                    seconds=out.seconds,
                )
            )
    return cells


def _sheet(ctx: Context, data: Fig3Data) -> str:
    grid: list[list[Cell]] = [[ctx.runs[_key(letter, r)].image for r in FIG3_RATIOS] for letter in FIG3_LAYER_SETS]
    sheet = contact_sheet(
        grid,
        col_labels=[f"α/β = {ratio(r)}" for r in FIG3_RATIOS],
        row_labels=[f"{letter}\n{layer_set_name(layers)}" for letter, layers in FIG3_LAYER_SETS.items()],
        title=f"Fig. 3 - {ctx.settings.fig3_style.stem.replace('_', ' ')}: style layers (rows) x α/β (columns), "
        f"{data.size} px, {data.steps} L-BFGS steps, {ctx.st.weights_name} (the paper: VGG-19)",
    )
    return ctx.save_sheet(sheet, FIGURE)


def _checks(data: Fig3Data) -> list[Check]:
    checks = []
    descending = sorted(FIG3_RATIOS, reverse=True)  # 1e-2 -> 1e-5: weight moves from content to style
    for letter in FIG3_LAYER_SETS:
        cells = [data.cell(letter, r) for r in descending]
        trends = (
            ("content loss rises", [c.content_loss for c in cells], True),
            ("style loss (conv1_1..conv5_1, w=1/5) falls", [c.style_loss for c in cells], False),
        )
        for what, values, increasing in trends:
            checks.append(
                Check(
                    FIGURE,
                    f"row {letter}: {what} as α/β goes 1e-2 -> 1e-5",
                    is_monotone(values, increasing=increasing),
                    (" < " if increasing else " > ").join(num(v) for v in values),
                )
            )
    return checks


def _grid_table(data: Fig3Data, value: Callable[[GridCell], float]) -> str:
    return table(
        ["row (style layers)"] + [f"α/β {ratio(r)}" for r in FIG3_RATIOS],
        [
            [f"{letter} ({layer_set_name(layers)})"] + [num(value(data.cell(letter, r))) for r in FIG3_RATIOS]
            for letter, layers in FIG3_LAYER_SETS.items()
        ],
    )


def _markdown(ctx: Context, data: Fig3Data, sheet: str) -> str:
    return "\n".join(
        [
            f"Style layers A-E (rows) x α/β (columns) for {data.painting} (Fig. 3), {data.size} px, {data.steps} "
            f"L-BFGS steps, seed {ctx.settings.seed}. Wall time {fmt_time(data.seconds)}.",
            "",
            f"![Fig. 3 contact sheet]({sheet})",
            "",
            "Every cell re-evaluated with the same fixed weights, so cells compare. Content loss at conv4_2 "
            "against the photo:",
            "",
            _grid_table(data, lambda c: c.content_loss),
            "",
            "Style loss over conv1_1..conv5_1 with w_l = 1/5 against the painting:",
            "",
            _grid_table(data, lambda c: c.style_loss),
            "",
            "Style loss over each row's own layers (w_l = 1/|set|), the term each run traded against content:",
            "",
            _grid_table(data, lambda c: c.style_loss_own_layers),
        ]
    )


def finish(ctx: Context) -> Fig3Result:
    """Measure the finished runs of :func:`plan`, draw the grid, check the trade-off along each row."""
    size, steps = ctx.settings.size[FIGURE], ctx.settings.steps[FIGURE]
    photo = im.resize_longest(ctx.photo, size, "photo")
    cells = _measure(ctx, _style(ctx), photo)
    data = Fig3Data(size, steps, ctx.figure_seconds[FIGURE], ctx.settings.fig3_style.name, cells)
    sheet = _sheet(ctx, data)
    return FigureResult(FIGURE, TITLE, data, _checks(data), _markdown(ctx, data, sheet), (sheet,))

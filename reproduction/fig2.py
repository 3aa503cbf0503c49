"""Fig. 2: the photo in the style of each painting available, with the α/β of the paper's caption.

B-D use α/β = 1e-3, E-F 1e-4. Every panel runs from white noise (the paper's start), again from the photo, and
again with the library's ``quality`` preset (not the paper's settings), at its own α/β (E-F ten times lower).
Measured: the content and style loss of each panel.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from gatys import StylizeOutput
from gatys import image as im
from gatys.presets import PRESETS, Preset
from gatys.transfer import fit_scales

from .fmt import fmt_time, num, ratio, table
from .measure import DEEPEST_LAYER, content_loss_at, style_losses, weighted_style_loss
from .report import Check, FigureResult
from .runs import Context, Finished, Job
from .sheets import Cell, contact_sheet, with_inset

FIGURE = "fig2"
TITLE = "Figure 2: styles"
PHOTO_CAPTION = "A  Tübingen, photo: Andreas Praefcke (CC BY 3.0)"
TABLE_HEADER = ("panel", "painting", "α/β", "content loss", "style loss", "time (s)")
QUALITY_PRESET = "quality"


@dataclasses.dataclass(frozen=True)
class Painting:
    """A panel of Fig. 2: which painting, where the paper puts it, and the α/β its caption gives."""

    panel: str
    title: str
    artist: str
    files: tuple[str, ...]  # file names looked for in the images folder, first found wins
    preset: str
    in_paper: bool = True

    @property
    def alpha_beta(self) -> float:
        return PRESETS[self.preset].alpha_beta

    @property
    def quality_alpha_beta(self) -> float:
        """α/β of this panel with the quality preset: the preset's own α/β, times the caption's ratio to B-D's.

        The practical presets weigh content and style differently from the paper (balanced style layers, its own
        α/β), so E-F keep their tenfold step towards style from the preset's value rather than the paper's.
        """
        return PRESETS[QUALITY_PRESET].alpha_beta * self.alpha_beta / PRESETS["paper"].alpha_beta

    @property
    def tag(self) -> str:
        """The panel letter, or ``extra`` for a painting the paper does not show."""
        return self.panel if self.in_paper else "extra"


# Fig. 2 caption: B-D use α/β = 1e-3, E-F α/β = 1e-4.
PAINTINGS = (
    Painting("B", "The Shipwreck of the Minotaur", "J. M. W. Turner, 1805", ("shipwreck.jpg",), "paper"),
    Painting("C", "The Starry Night", "Vincent van Gogh, 1889", ("starry_night.jpg",), "paper"),
    Painting("D", "Der Schrei", "Edvard Munch, 1893", ("the_scream.jpg", "scream.jpg", "der_schrei.jpg"), "paper"),
    Painting("E", "Femme nue assise", "Pablo Picasso, 1910", ("seated-nude.jpg", "femme_nue_assise.jpg"), "paper-1e-4"),
    Painting(
        "F",
        "Composition VII",
        "Wassily Kandinsky, 1913",
        ("composition_vii.jpg", "composition-vii.jpg", "kandinsky.jpg"),
        "paper-1e-4",
    ),
    # Not in the paper; rendered with the B-D setting because it is there.
    Painting("+", "Self-portrait", "Pablo Picasso, 1907", ("picasso_selfport1907.jpg",), "paper", in_paper=False),
)


@dataclasses.dataclass
class Panel:
    """A panel from white noise; an absent painting has only its name, α/β and ``status="absent"``."""

    panel: str
    title: str
    artist: str
    alpha_beta: float
    in_paper: bool
    status: str  # "done" or "absent"
    file: str | None = None
    content_loss: float | None = None
    style_loss: float | None = None
    seconds: float | None = None


@dataclasses.dataclass
class VariantPanel:
    """A panel rendered again another way (:class:`Variant`): from the photo, or with the quality preset."""

    panel: str
    title: str
    alpha_beta: float
    file: str
    content_loss: float
    style_loss: float
    seconds: float


@dataclasses.dataclass
class Fig2Data:
    size: int
    steps: int
    seconds: float
    panels: list[Panel]
    from_photo: list[VariantPanel] | None = None  # absent when no painting was found
    quality: list[VariantPanel] | None = None  # likewise
    quality_sizes: list[int] | None = None  # longest side at each scale of the quality runs, coarse to fine
    quality_steps: list[int] | None = None  # L-BFGS steps at each of those scales


@dataclasses.dataclass(frozen=True)
class Variant:
    """The panels found, rendered again another way: its runs, its contact sheet and its report section."""

    key: str  # its runs are keyed f"{key}/{panel}"
    prefix: str  # of its image files in fig2/
    label: str  # after a run's panel and painting
    sheet: str  # the contact sheet's name
    heading: str  # of its report section
    title: str  # of its contact sheet, before the size and steps

    def run_key(self, panel: str) -> str:
        return f"{self.key}/{panel}"

    def job(
        self, p: Painting, path: Path, run: Callable[..., StylizeOutput], scales: tuple[tuple[int, int], ...]
    ) -> Job:
        """The run of ``p``'s painting at ``path``; ``scales``: (size, steps) of each scale, coarse to fine."""
        size, steps = scales[-1][0], sum(n for _, n in scales)
        label = f"{p.panel} {p.title}, {self.label}"
        file = f"fig2/{self.prefix}_{p.tag}_{path.stem}.png"
        multi = scales if len(scales) > 1 else ()
        return Job(FIGURE, self.run_key(p.panel), label, size, steps, DEEPEST_LAYER, run, file, scales=multi)


FROM_PHOTO = Variant(
    "from-photo",
    "from_photo",
    "from the photo",
    "fig2_from_photo",
    "Started from the photo",
    "Fig. 2, started from the photo (not the paper's white noise)",
)
QUALITY = Variant(
    "quality",
    "quality",
    "with the quality preset",
    "fig2_quality",
    "With the quality preset",
    "Fig. 2 with the quality preset (not the paper's settings)",
)


@dataclasses.dataclass
class Section:
    """What a :class:`Variant` adds to the figure: its measured panels, checks, report lines and contact sheet."""

    entries: list[VariantPanel]
    checks: list[Check]
    markdown: list[str]
    sheet: str


Fig2Result = FigureResult[Fig2Data]


def locate(images: Path) -> dict[str, Path]:
    """The file of each panel's painting found in ``images``, by panel."""
    found = {}
    for p in PAINTINGS:
        path = next((images / f for f in p.files if (images / f).is_file()), None)
        if path is not None:
            found[p.panel] = path
    return found


def quality_preset(size: int, steps: int, photo: Image.Image, paintings: Sequence[Image.Image]) -> Preset:
    """gatys's ``quality`` preset at ``size`` px, fitted to the run's --steps and to the images.

    Its own step counts, unless ``steps`` (the run's --steps) is fewer than its final scale's: then ``steps`` at
    the final scale and at most that many at the coarse ones, so that small test runs stay fast. Its coarse
    scales are derived from ``size``; those at which the photo or a painting would have a side shorter than the
    network takes are left out (at 32 px the 4:3 photo keeps only the final scale).
    """
    q = PRESETS[QUALITY_PRESET].with_overrides(size=size)
    if steps < q.steps:
        coarse = min(q.coarse_steps if q.coarse_steps is not None else q.steps, steps)
        q = q.with_overrides(steps=steps, coarse_steps=coarse)
    fitted = fit_scales(q, photo, paintings)
    return fitted if fitted.num_scales == q.num_scales else q.with_overrides(num_scales=fitted.num_scales)


def _scales(preset: Preset) -> tuple[tuple[int, int], ...]:
    """(size, steps) of each scale of ``preset``, coarse to fine."""
    return tuple(zip(preset.scale_sizes(), preset.scale_steps()))


def plan(ctx: Context) -> list[Job]:
    """Every painting found, from white noise, then from the photo, then with the quality preset.

    Notes the absent ones as skipped.
    """
    s = ctx.settings
    size, steps = s.size[FIGURE], s.steps[FIGURE]
    paths = locate(s.images)
    for p in PAINTINGS:
        if p.panel not in paths:
            ctx.skipped.append(
                f"Fig. 2 {p.panel} ({p.title}, {p.artist}): none of {', '.join(p.files)} in {s.images}; skipped"
            )
    found = [(p, paths[p.panel]) for p in PAINTINGS if p.panel in paths]
    stylize = functools.partial(ctx.st.stylize, size=size, steps=steps, seed=s.seed)
    jobs = []
    for p, path in found:
        run = functools.partial(stylize, ctx.photo, ctx.image(path.name), preset=p.preset, **ctx.init_kwargs(size))
        file = f"fig2/{p.tag}_{path.stem}.png"
        jobs.append(Job(FIGURE, f"panel/{p.panel}", f"{p.panel} {p.title}", size, steps, DEEPEST_LAYER, run, file))
    # The same panels started from the photo (the CLI's `recommended` start): with the HED VGG-16, conv4_2
    # keeps too little of the photo for the houses to come out of white noise sharply (see README).
    for p, path in found:
        run = functools.partial(stylize, ctx.photo, ctx.image(path.name), preset=p.preset, init="content")
        jobs.append(FROM_PHOTO.job(p, path, run, ((size, steps),)))
    # The same panels with the library's own settings for a good picture (its α/β, init, scales and steps).
    quality = quality_preset(size, steps, ctx.photo, [ctx.image(path.name) for _, path in found])
    for p, path in found:
        preset = quality.with_overrides(alpha_beta=p.quality_alpha_beta)
        run = functools.partial(ctx.st.stylize, ctx.photo, ctx.image(path.name), preset=preset, seed=s.seed)
        jobs.append(QUALITY.job(p, path, run, _scales(preset)))
    return jobs


def _measure(ctx: Context, out: Finished, painting: Image.Image, photo: Image.Image) -> tuple[float, float]:
    """Content loss against the photo and style loss (w_l = 1/5) against the painting."""
    per = style_losses(ctx.model, out.image, painting)
    return content_loss_at(ctx.model, out.image, photo), weighted_style_loss(per)


def _panels(ctx: Context, photo: Image.Image) -> tuple[list[Panel], dict[str, Cell], dict[str, str]]:
    """Each panel from white noise, measured, with its tile (the panel with an inset) and caption."""
    panels: list[Panel] = []
    cells: dict[str, Cell] = {}
    caps: dict[str, str] = {}
    paths = locate(ctx.settings.images)
    for p in PAINTINGS:
        out = ctx.runs.get(f"panel/{p.panel}")
        if out is None:
            panels.append(Panel(p.panel, p.title, p.artist, p.alpha_beta, p.in_paper, "absent"))
            cells[p.panel] = f"{p.panel}: {p.title} ({p.artist}) is not in the images folder; skipped"
            caps[p.panel] = ""
            continue
        painting = ctx.image(paths[p.panel].name)
        content, style = _measure(ctx, out, painting, photo)
        panels.append(
            Panel(p.panel, p.title, p.artist, p.alpha_beta, p.in_paper, "done", out.file, content, style, out.seconds)
        )
        cells[p.panel] = with_inset(out.image, painting)
        caps[p.panel] = f"{p.tag}  {p.title} ({p.artist}), α/β {ratio(p.alpha_beta)}"
    return panels, cells, caps


def _sheet(ctx: Context, data: Fig2Data, photo: Image.Image, cells: dict[str, Cell], caps: dict[str, str]) -> str:
    extra = [p.panel for p in PAINTINGS if not p.in_paper and not isinstance(cells[p.panel], str)]
    grid: list[list[Cell]] = [[photo, cells["B"], cells["C"]], [cells["D"], cells["E"], cells["F"]]]
    captions = [[PHOTO_CAPTION, caps["B"], caps["C"]], [caps["D"], caps["E"], caps["F"]]]
    if extra:
        grid.append([cells[e] for e in extra])
        captions.append([caps[e] for e in extra])
    sheet = contact_sheet(
        grid,
        captions=captions,
        title=f"Fig. 2 - {data.size} px, {data.steps} L-BFGS steps from white noise, content conv4_2, "
        f"style conv1_1..conv5_1, {ctx.st.weights_name} (the paper: VGG-19)",
    )
    return ctx.save_sheet(sheet, FIGURE)


def _rendered(ctx: Context, panels: list[Panel]) -> Check:
    done = [p for p in panels if p.status == "done"]
    absent = ", ".join(f"{p.panel} {p.title}" for p in panels if p.status == "absent") or "none"
    return Check(
        FIGURE,
        "every available painting rendered",
        bool(done) and all(p.file is not None and (ctx.settings.out / p.file).is_file() for p in done),
        f"{len(done)} rendered; absent: {absent}",
    )


def _panel_row(p: Panel) -> list[str]:
    if p.status == "absent":
        return [p.panel, f"{p.title} ({p.artist})", ratio(p.alpha_beta), "absent: skipped", "", ""]
    assert p.content_loss is not None and p.style_loss is not None and p.seconds is not None
    return [
        p.panel if p.in_paper else "extra (not in the paper)",
        f"{p.title} ({p.artist})",
        ratio(p.alpha_beta),
        num(p.content_loss),
        num(p.style_loss),
        f"{p.seconds:.1f}",
    ]


def _markdown(ctx: Context, data: Fig2Data, sheet: str) -> list[str]:
    return [
        f"The photo in the style of each painting available (Fig. 2), {data.size} px, {data.steps} L-BFGS steps, "
        f"seed {ctx.settings.seed}, α/β as the paper's caption assigns. Wall time {fmt_time(data.seconds)}.",
        "",
        f"![Fig. 2 contact sheet]({sheet})",
        "",
        "Content loss at conv4_2 against the photo and style loss over conv1_1..conv5_1 (w_l = 1/5) against "
        "the painting, re-evaluated on the saved image:",
        "",
        table(TABLE_HEADER, [_panel_row(p) for p in data.panels]),
    ]


def _variant(
    ctx: Context,
    variant: Variant,
    photo: Image.Image,
    detail: str,
    intro: str,
    check: Callable[[list[VariantPanel]], Check],
) -> Section | None:
    """``variant``'s runs measured, drawn on a contact sheet and written up; None if it has none.

    Args:
        detail: the sheet's title after the variant's: size and steps.
        intro: the paragraph that opens its report section.
        check: makes its check from its measured panels.
    """
    runs = [(p, ctx.runs[variant.run_key(p.panel)]) for p in PAINTINGS if variant.run_key(p.panel) in ctx.runs]
    if not runs:
        return None
    paths = locate(ctx.settings.images)
    entries, tiles, caps = [], [photo], [PHOTO_CAPTION]
    for p, out in runs:
        painting = ctx.image(paths[p.panel].name)
        content, style = _measure(ctx, out, painting, photo)
        alpha_beta = p.quality_alpha_beta if variant is QUALITY else p.alpha_beta
        entries.append(VariantPanel(p.panel, p.title, alpha_beta, out.file, content, style, out.seconds))
        tiles.append(with_inset(out.image, painting))
        caps.append(f"{p.tag}  {p.title}, α/β {ratio(alpha_beta)}")
    sheet = contact_sheet(
        [tiles[i : i + 3] for i in range(0, len(tiles), 3)],
        captions=[caps[i : i + 3] for i in range(0, len(caps), 3)],
        title=f"{variant.title} - {detail}, {ctx.st.weights_name} (the paper: VGG-19)",
    )
    rel = ctx.save_sheet(sheet, variant.sheet)
    rows = [
        [e.panel, e.title, ratio(e.alpha_beta), num(e.content_loss), num(e.style_loss), f"{e.seconds:.1f}"]
        for e in entries
    ]
    markdown = [
        "",
        f"### {variant.heading}",
        "",
        intro,
        "",
        f"![{variant.title}]({rel})",
        "",
        table(TABLE_HEADER, rows),
    ]
    return Section(entries, [check(entries)], markdown, rel)


def _from_photo(ctx: Context, data: Fig2Data, photo: Image.Image) -> Section | None:
    """The same panels started from the photo instead of white noise: a second sheet, its check and section."""
    intro = (
        "The same panels and α/β, started from the photo instead of white noise (the command line's "
        "`recommended` start). With the HED VGG-16 the houses come out of white noise only faintly; "
        "from the photo they stay sharp while the style's colours and strokes take over."
    )
    detail = f"{data.size} px, {data.steps} L-BFGS steps"
    section = _variant(ctx, FROM_PHOTO, photo, detail, intro, functools.partial(_from_photo_check, data))
    data.from_photo = section.entries if section is not None else None
    return section


def _from_photo_check(data: Fig2Data, entries: list[VariantPanel]) -> Check:
    noise = {p.panel: p.content_loss for p in data.panels if p.status == "done" and p.content_loss is not None}
    # At α/β = 1e-4 (panels E, F) style outweighs content so far that the start hardly matters (measured:
    # Femme nue assise 9.4e5 from the photo vs 9.2e5 from noise); at 1e-3 the photo start keeps more of it.
    pairs = [e for e in entries if e.panel in noise and e.alpha_beta >= 1e-3]
    return Check(
        FIGURE,
        "at α/β 1e-3, started from the photo, every panel keeps more of the photo (lower "
        "content loss) than from white noise",
        bool(pairs) and all(e.content_loss < noise[e.panel] for e in pairs),
        "; ".join(f"{e.panel} {num(e.content_loss)} vs {num(noise[e.panel])}" for e in pairs),
    )


def _scales_text(preset: Preset) -> str:
    """``preset``'s scales and steps, e.g. "coarse to fine 64 -> 128 -> 256 px (100 + 100 + 300 L-BFGS steps)".

    ASCII arrows: the contact sheets' font has no →.
    """
    sizes, steps = preset.scale_sizes(), preset.scale_steps()
    if len(sizes) == 1:
        return f"{sizes[0]} px, {steps[0]} L-BFGS steps"
    return f"coarse to fine {' -> '.join(map(str, sizes))} px ({' + '.join(map(str, steps))} L-BFGS steps)"


def _quality_settings(preset: Preset) -> str:
    """What the quality preset does beyond the paper, read off its fields."""
    parts = [_scales_text(preset)]
    if preset.init == "content":
        parts.append("started from the photo")
    if preset.parameterization == "fourier":
        parts.append("a Fourier-parameterised image")
    if preset.pooling == "blur":
        parts.append("blurred average pooling")
    if preset.style_balance == "gradient":
        parts.append("gradient-balanced style layers")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _quality(ctx: Context, data: Fig2Data, photo: Image.Image) -> Section | None:
    """The same panels with gatys's quality preset at its own α/β: a third sheet, its check and section."""
    paintings = [ctx.image(path.name) for path in locate(ctx.settings.images).values()]
    preset = quality_preset(data.size, data.steps, ctx.photo, paintings)  # the panels' scales and steps
    intro = (
        f"The same panels, rendered with gatys's `{QUALITY_PRESET}` preset instead of the paper's "
        f"settings: {_quality_settings(preset)}, at the preset's α/β = {ratio(preset.alpha_beta)} for B-D "
        "(ten times lower for E-F, as the caption's step). The panels at the top of this section stay the paper's "
        "settings; these show what the library makes of the same paintings. The losses are measured as above "
        "(average pooling, w_l = 1/5), not with the preset's own objective."
    )
    scales = _scales_text(preset)
    detail = scales if preset.scales_run == 1 else f"{data.size} px, {scales}"  # once: "256 px, 200 ..."
    section = _variant(ctx, QUALITY, photo, detail, intro, functools.partial(_quality_check, ctx, data))
    if section is not None:
        data.quality = section.entries
        data.quality_sizes, data.quality_steps = preset.scale_sizes(), preset.scale_steps()
    return section


def _quality_check(ctx: Context, data: Fig2Data, entries: list[VariantPanel]) -> Check:
    found = [p.panel for p in data.panels if p.status == "done"]
    rendered = [e.panel for e in entries if (ctx.settings.out / e.file).is_file()]
    return Check(
        FIGURE,
        "with the quality preset, every available painting rendered",
        bool(found) and rendered == found,
        f"{len(rendered)} of {len(found)} rendered: {', '.join(rendered) or 'none'}",
    )


def finish(ctx: Context) -> Fig2Result:
    """Measure the finished runs of :func:`plan`, draw the three contact sheets, check the paper's claims."""
    size, steps = ctx.settings.size[FIGURE], ctx.settings.steps[FIGURE]
    photo = im.resize_longest(ctx.photo, size, "photo")
    panels, cells, caps = _panels(ctx, photo)
    data = Fig2Data(size, steps, ctx.figure_seconds.get(FIGURE, 0.0), panels)
    sheet = _sheet(ctx, data, photo, cells, caps)
    sections = [s for s in (_from_photo(ctx, data, photo), _quality(ctx, data, photo)) if s is not None]
    markdown = "\n".join([*_markdown(ctx, data, sheet), *(line for s in sections for line in s.markdown)])
    checks = [_rendered(ctx, panels), *(c for s in sections for c in s.checks)]
    return FigureResult(FIGURE, TITLE, data, checks, markdown, (sheet, *(s.sheet for s in sections)))

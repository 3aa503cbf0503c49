"""Runs the requested figures: plans their jobs, prices them, runs them, finishes each figure, writes the report."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from gatys import StyleTransfer

from . import fig1, fig2, fig3
from .measure import calibrate, depth_fraction
from .report import Check, FigureResult, Timing, write_report
from .runs import Context, Finished, Job, Progress, Settings, reuse, run_job


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure's two steps: the runs it needs, and what it makes of them once they are done."""

    plan: Callable[[Context], list[Job]]
    finish: Callable[[Context], FigureResult[Any]]


FIGURE_STEPS: dict[str, Figure] = {
    fig1.FIGURE: Figure(fig1.plan, fig1.finish),
    fig2.FIGURE: Figure(fig2.plan, fig2.finish),
    fig3.FIGURE: Figure(fig3.plan, fig3.finish),
}


class Reproduction:
    """The state of one invocation: the shared context, the figures finished so far, and the timing."""

    def __init__(self, *, st: StyleTransfer, settings: Settings, argv: Sequence[str]):
        self.ctx = Context.create(st=st, settings=settings)
        self.argv = list(argv)
        self.results: dict[str, FigureResult[Any]] = {}  # in the order they finished
        self.timing = Timing()

    @property
    def checks(self) -> list[Check]:
        return [c for r in self.results.values() for c in r.checks]

    @property
    def skipped(self) -> list[str]:
        return self.ctx.skipped

    def plan(self) -> list[Job]:
        """Every run of the requested figures, figure by figure."""
        return [job for name in self.ctx.settings.figures for job in FIGURE_STEPS[name].plan(self.ctx)]

    def estimate(self, jobs: Sequence[Job], painting: Image.Image) -> dict[int, float]:
        """Calibrate seconds per full step at each size used, then price every job that will run."""
        todo = [j for j in jobs if reuse(self.ctx, j) is None]
        sizes = sorted({size for j in todo for size, _ in j.passes})
        per_step = {size: calibrate(self.ctx.st, self.ctx.photo, painting, size) for size in sizes}
        channels = self.ctx.model.config.channels
        for j in todo:
            # A step's cost is mostly the forward and backward pass to the deepest layer; 15 % is overhead.
            seconds = sum(steps * per_step[size] for size, steps in j.passes)
            j.estimate = seconds * (0.15 + 0.85 * depth_fraction(channels, j.deepest))
        self.timing.calibration = per_step
        self.timing.estimate_s = sum(j.estimate for j in jobs)
        return per_step

    def run(self, jobs: Sequence[Job], progress: Progress) -> None:
        """Run (or reuse) every job; finish each figure after its last run and write a report then."""
        fig_start: dict[str, float] = {}
        for i, job in enumerate(jobs):
            fig_start.setdefault(job.figure, time.perf_counter())
            t = time.perf_counter()
            done: Finished | None = reuse(self.ctx, job)
            if done is None:
                done = run_job(self.ctx, job, callback=progress.callback)
            else:
                progress.callback_many(job.steps)
            self.ctx.runs[job.key] = done
            progress.finished(i, job, time.perf_counter() - t, reused=done.reused)
            if i + 1 == len(jobs) or jobs[i + 1].figure != job.figure:
                self.ctx.figure_seconds[job.figure] = time.perf_counter() - fig_start[job.figure]
                self.finish(job.figure)
                self.write_report(partial=i + 1 < len(jobs))
        for name in self.ctx.settings.figures:  # Fig. 2 with every painting absent has no runs but gets its section
            if name not in self.results:
                self.ctx.figure_seconds[name] = 0.0
                self.finish(name)

    def finish(self, name: str) -> None:
        self.results[name] = FIGURE_STEPS[name].finish(self.ctx)

    def write_report(self, *, partial: bool = False) -> Path:
        return write_report(ctx=self.ctx, timing=self.timing, results=self.results, argv=self.argv, partial=partial)

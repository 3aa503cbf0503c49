"""A folder of photos, stylised with either method, resumable, split across processes by accelerate.

``gatys batch PHOTOS/ --style PAINTING -o OUT/`` runs in one process; the same command under ``accelerate launch
--num_processes N`` (several GPUs, several machines, or ``--cpu`` processes) gives each process its share of the
photos (``PartialState.split_between_processes``), each process writes its own outputs, and the main process
prints the summary of all of them. Every photo gets a seed derived from its path, so the outputs do not depend
on how many processes ran.

Example:
    >>> from gatys import StyleTransfer
    >>> from gatys.batch import find_inputs, optimization_renderer, run_batch
    >>> items = find_inputs("photos", "renders", seed=0)  # doctest: +SKIP
    >>> render = optimization_renderer(StyleTransfer.from_pretrained(), "starry.jpg", size=256)  # doctest: +SKIP
    >>> report = run_batch(items, render)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from . import image as im
from .errors import ConfigError, GatysError

#: Files taken as photos, by suffix (case-insensitive); everything else in the folder is left alone.
INPUT_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

#: Renders one photo (path) with its seed into a picture.
Render = Callable[[Path, int], Image.Image]


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One photo of a batch: where it is, where its render goes, and its seed."""

    source: Path
    output: Path
    seed: int


@dataclasses.dataclass
class ItemResult:
    """What became of one :class:`BatchItem`: ``status`` is ``done``, ``skipped`` or ``failed``."""

    item: BatchItem
    status: str
    seconds: float = 0.0
    error: str = ""
    process: int = 0


@dataclasses.dataclass
class BatchReport:
    """Every item's result (from all processes when several ran), and the wall time of the run."""

    results: list[ItemResult]
    seconds: float
    num_processes: int = 1

    def _with(self, status: str) -> list[ItemResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[ItemResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[ItemResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[ItemResult]:
        return self._with("failed")

    def summary(self) -> str:
        """Lines a person reads: the counts, then each failure with its reason."""
        head = (
            f"{len(self.done)} done, {len(self.skipped)} skipped (already written), {len(self.failed)} failed; "
            f"{len(self.results)} photos in {self.seconds:.1f} s on {self.num_processes} process(es)"
        )
        return "\n".join([head, *(f"failed: {r.item.source}: {r.error}" for r in self.failed)])


Callback = Callable[[ItemResult], Any]


def item_seed(relative: str, seed: int) -> int:
    """The seed of one photo: ``seed`` mixed with its path relative to the input folder.

    Stable across runs and process counts (Python's own ``hash`` of a string is salted per process).
    """
    return (seed + zlib.crc32(relative.encode("utf-8"))) % 2**32


def find_inputs(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *, seed: int = 0) -> list[BatchItem]:
    """Every photo under ``input_dir`` (recursively, sorted), each mapped to ``output_dir/<same path>.png``.

    Hidden files and folders (names starting with '.') and anything under ``output_dir`` are skipped.
    """
    root, out = Path(input_dir), Path(output_dir)
    if not root.is_dir():
        raise ConfigError(f"input folder {root} does not exist or is not a folder; give a folder of photos")
    out_resolved = out.resolve()
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (here / d).resolve() != out_resolved
        )  # in place: os.walk then skips the others
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in INPUT_SUFFIXES:
                continue
            rel = path.relative_to(root)
            items.append(BatchItem(path, (out / rel).with_suffix(".png"), item_seed(rel.as_posix(), seed)))
    if not items:
        raise ConfigError(f"no photos found in {root}; accepted suffixes: {', '.join(sorted(INPUT_SUFFIXES))}")
    return sorted(items, key=lambda i: i.source.as_posix())


def is_finished(path: Path) -> bool:
    """Whether ``path`` holds a complete image: outputs are written atomically, so anything that does not decode
    whole (cut short by a copy, a full disk, another tool) is redone."""
    if not path.is_file():
        return False
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


def remove_leftovers(output: Path) -> None:
    """Delete the temporary files a killed :func:`gatys.image.write_atomic` of ``output`` may have left beside it."""
    if output.parent.is_dir():
        for tmp in output.parent.glob(f".{output.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def process_state() -> Any:
    """accelerate's ``PartialState`` for this process: one process, or one of those ``accelerate launch`` started.

    On a machine without a GPU, processes started together are joined over gloo (accelerate's MULTI_CPU), as
    :mod:`gatys.train` does. accelerate 1.x's ``launch --cpu --num_processes N`` starts one process unless
    ``mpirun`` is set up; ``accelerate launch --multi_gpu --num_processes N`` (torchrun underneath) or ``torchrun
    --nproc_per_node N -m gatys.batch`` start N CPU processes.
    """
    import torch
    from accelerate import PartialState

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=launched and not torch.cuda.is_available())


def optimization_renderer(st: Any, style: Any, **options: Any) -> Render:
    """A :data:`Render` running :meth:`gatys.StyleTransfer.stylize` with ``options`` (each photo's seed)."""

    def render(path: Path, seed: int) -> Image.Image:
        return st.stylize(path, style, **{**options, "seed": seed}).image

    return render


def feedforward_renderer(fs: Any, *, size: int | None = None, preserve_colors: bool = False) -> Render:
    """A :data:`Render` running :meth:`gatys.FastStyle.stylize` (deterministic: the seed is unused)."""

    def render(path: Path, seed: int) -> Image.Image:
        return fs.stylize(path, size=size, preserve_colors=preserve_colors)

    return render


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def run_batch(
    items: Sequence[BatchItem],
    render: Render,
    *,
    callback: Callback | None = None,
    progress: bool = False,
    state: Any = None,
) -> BatchReport:
    """Render this process's share of ``items``, skipping finished outputs; every process returns the whole report.

    Args:
        items: from :func:`find_inputs` (the same list in every process).
        render: :func:`optimization_renderer` or :func:`feedforward_renderer`, or any function of (path, seed).
        callback: called with each :class:`ItemResult` as it happens (in the process that made it).
        progress: a tqdm bar per process.
        state: an ``accelerate.PartialState``; default the current one (one process without ``accelerate launch``).

    A photo that fails (unreadable, too small...) is reported and the batch goes on; Ctrl-C stops it.
    """
    if state is None:
        state = process_state()
    start = time.perf_counter()
    results: list[ItemResult] = []
    with state.split_between_processes(list(items)) as mine:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(mine), desc=f"gatys batch [{state.process_index}]", unit="photo", dynamic_ncols=True)
        try:
            for item in mine:
                results.append(_render_one(item, render, state.process_index))
                if callback is not None:
                    callback(results[-1])
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    if state.num_processes > 1 and _distributed():
        from accelerate.utils import gather_object

        results = list(gather_object(results))
    results.sort(key=lambda r: r.item.source.as_posix())
    return BatchReport(results, time.perf_counter() - start, state.num_processes)


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _render_one(item: BatchItem, render: Render, process: int) -> ItemResult:
    if is_finished(item.output):
        return ItemResult(item, "skipped", process=process)
    remove_leftovers(item.output)
    t0 = time.perf_counter()
    try:
        item.output.parent.mkdir(parents=True, exist_ok=True)
        img = render(item.source, item.seed)
        im.save_image(img, item.output)
    except (GatysError, OSError, ValueError, MemoryError) as e:  # this photo fails, the batch goes on
        return ItemResult(item, "failed", time.perf_counter() - t0, _one_line(e), process)
    return ItemResult(item, "done", time.perf_counter() - t0, process=process)


# -- the command line -----------------------------------------------------------------------------------------


def _parser(prog: str) -> argparse.ArgumentParser:
    from .cli import _add_preset_options
    from .presets import DEFAULT_PRESET, PRESETS

    p = argparse.ArgumentParser(
        prog=prog,
        description="Stylise every photo in a folder (recursively) into OUTPUT_DIR/<same path>.png. Resumable: "
        "finished outputs are skipped. Under 'accelerate launch --num_processes N' the photos are split "
        "between the processes.",
    )
    p.add_argument("input_dir", help="folder of photos (searched recursively)")
    p.add_argument("--style", nargs="+", metavar="PAINTING", help="style image(s) to optimise towards")
    p.add_argument("--model", metavar="MODEL", help="a trained FastStyle model (name, folder or Hub repo) instead")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT_DIR", help="folder for the renders (created)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), metavar="NAME", help="[%(default)s]")
    p.add_argument("--style-weights", type=lambda s: [float(x) for x in s.split(",")], metavar="W1,W2,...")
    p.add_argument("--seed", type=int, default=0, help="base seed; each photo's is derived from it and its path")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--weights", default=None, help="VGG weights folder or Hub repo id [the default weights]")
    p.add_argument("--local-files-only", action="store_true", help="never download weights or models")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_preset_options(p)
    return p


def _renderer(args: argparse.Namespace) -> Render:
    from .presets import DESCRIPTIVE_FIELDS, Preset, get_preset

    if args.model:
        from .feedforward import FastStyle

        fs = FastStyle.from_pretrained(args.model, local_files_only=args.local_files_only)
        return feedforward_renderer(fs, size=args.size, preserve_colors=bool(args.preserve_colors))
    from .transfer import StyleTransfer

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Preset) if f.name not in DESCRIPTIVE_FIELDS}
    settings = get_preset(args.preset).with_overrides(**overrides)
    for i, s in enumerate(args.style):  # every style image readable before the weights load
        im.load_image(s, name=f"style image {i + 1}" if len(args.style) > 1 else "style image")
    st = StyleTransfer.from_pretrained(args.weights, local_files_only=args.local_files_only)
    style = args.style if len(args.style) > 1 else args.style[0]
    return optimization_renderer(st, style, preset=settings, style_weights=args.style_weights, precision=args.precision)


def main(argv: list[str] | None = None, prog: str = "gatys batch") -> int:
    """``gatys batch``: one-line errors with exit status 2; 1 when some photo failed; the summary on stderr."""
    args = _parser(prog).parse_args(argv)
    state = process_state()
    try:
        return _main(args, state)
    finally:
        # Every process leaves the process group together: a process exiting while gloo's threads still run
        # aborted ("terminate called without an active exception") in about one launch in five here.
        if _distributed():
            import torch.distributed as dist

            with contextlib.suppress(Exception):
                dist.barrier()
            dist.destroy_process_group()


def _main(args: argparse.Namespace, state: Any) -> int:
    try:
        if bool(args.style) == bool(args.model):
            raise ConfigError("give either --style PAINTING (optimisation) or --model MODEL (a trained network)")
        out = Path(args.output)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"-o must be a folder, got the file {out}")
        items = find_inputs(args.input_dir, out, seed=args.seed)
        render = _renderer(args)
        if state.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
        state.wait_for_everyone()
        report = run_batch(items, render, progress=not args.quiet, state=state)
    except GatysError as e:
        from .cli import _err  # the command line's one wording of errors (exit status 2)

        return _err(str(e))
    except KeyboardInterrupt:
        print("gatys: interrupted; finished outputs are kept, run the same command to resume", file=sys.stderr)
        return 130
    if state.is_main_process:
        print(f"gatys batch: {report.summary()}", file=sys.stderr)
    return 1 if report.failed else 0


__all__ = [
    "BatchItem",
    "BatchReport",
    "ItemResult",
    "feedforward_renderer",
    "find_inputs",
    "is_finished",
    "item_seed",
    "main",
    "optimization_renderer",
    "run_batch",
]

if __name__ == "__main__":
    sys.exit(main())

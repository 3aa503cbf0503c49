"""The command line: a thin shell over :meth:`StyleTransfer.stylize` and :meth:`FastStyle.stylize`.

    gatys CONTENT STYLE [STYLE ...] -o OUT.png [--preset paper] [--size 512] [--steps 500] ...
    gatys PHOTO [PHOTO ...] --model MODEL -o OUT.png|OUT_DIR [--size 512] [--preserve-colors]
    gatys train STYLE_IMAGE --data PHOTO_DIR --out MODEL_DIR ...      (= python -m gatys.train)
    gatys batch PHOTO_DIR --style PAINTING|--model MODEL -o OUT_DIR ...  (accelerate launch: split across processes)
    gatys video IN.mp4 --style PAINTING|--model MODEL -o OUT.mp4 ...     (temporally consistent, Ruder et al. 2016)

Options are derived from the fields of :class:`gatys.presets.Preset` and the keyword arguments of
``stylize``, so defaults live in one place (the preset). Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import time
import typing
from typing import Any

from .errors import GatysError
from .presets import DEFAULT_PRESET, DESCRIPTIVE_FIELDS, PRESETS, Preset

# Preset fields that are descriptive, not settings.
_NOT_OPTIONS = DESCRIPTIVE_FIELDS
_PRESET_HELP = {
    "content_layers": "content layer(s), comma-separated",
    "style_layers": "style layers, comma-separated (e.g. conv1_1,conv2_1,conv3_1,conv4_1,conv5_1)",
    "style_layer_weights": "w_l per style layer, comma-separated (default equal, 1/n)",
    "style_balance": "none (the paper) or gradient (each style layer gets its w_l share of the initial gradient)",
    "parameterization": "pixels (the paper) or fourier (1/f-scaled Fourier coefficients: no grid, strokes first)",
    "alpha_beta": "content/style weight ratio α/β as in the paper (1e-3 Fig. 2 B-D, 1e-4 E-F)",
    "pooling": "avg (the paper), max, or blur (average pooling low-passed before subsampling)",
    "init": "noise (the paper), content, style, or a path to an image",
    "optimizer": "lbfgs (the paper) or adam",
    "steps": "optimisation steps at the final scale",
    "size": "longest side of the output in px",
    "num_scales": "coarse-to-fine scales (1 = single scale)",
    "scale_factor": "size ratio between scales",
    "coarse_steps": "steps at each coarser scale",
    "min_scale_size": "leave out coarse scales whose longest side would be under this many px",
    "style_scale": "style image size relative to the content",
    "tv_weight": "total-variation smoothing weight",
    "learning_rate": "Adam step size",
    "preserve_colors": "keep the content's colours (luminance-only transfer)",
}


def _csv(kind: type) -> Any:
    def parse(text: str) -> tuple:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None

    return parse


def _add_preset_options(parser: argparse.ArgumentParser) -> list[str]:
    """One option per Preset field, typed from its annotation, default None (= the preset's value)."""
    hints = typing.get_type_hints(Preset)
    base = PRESETS["paper"]
    names = []
    group = parser.add_argument_group("settings (default: the chosen preset's value; 'paper' shown)")
    for field in dataclasses.fields(Preset):
        if field.name in _NOT_OPTIONS:
            continue
        hint = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        default = getattr(base, field.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{_PRESET_HELP.get(field.name, field.name)} [paper: {shown}]"
        kwargs: dict[str, Any] = {"default": None, "help": help_text, "dest": field.name}
        args = typing.get_args(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif "tuple" in str(hint):
            kwargs["type"] = _csv(float if "float" in str(hint) else str)
            kwargs["metavar"] = "A,B,..."
        elif hint in (int, float, str):
            kwargs["type"] = hint
        elif int in args:
            kwargs["type"] = int
        elif float in args:
            kwargs["type"] = float
        else:
            kwargs["type"] = str
        group.add_argument(flag, **kwargs)
        names.append(field.name)
    return names


def build_parser() -> argparse.ArgumentParser:
    from .transfer import StyleTransfer

    sig = inspect.signature(StyleTransfer.stylize)
    parser = argparse.ArgumentParser(
        prog="gatys",
        description="Neural style transfer (Gatys, Ecker & Bethge 2015): render CONTENT in the style of STYLE.",
        epilog="Presets: " + ", ".join(PRESETS),
    )
    parser.add_argument("content", help="content image (the photo)")
    parser.add_argument(
        "styles", nargs="*", metavar="style", help="style image(s); several are blended (with --model: more photos)"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="output image (.png, .jpg, .webp), written atomically; with --model and several photos, a folder",
    )
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="stylise the photo(s) instantly with a trained FastStyle model (a name such as starry-night, a folder "
        "or a Hub repo) instead of optimising; 'gatys train' trains one",
    )
    # Departure from the library's default ("paper", white-noise init): the CLI starts from the photo, which
    # keeps it recognisable with every weights we ship (see presets.DEFAULT_PRESET); --preset paper is exact.
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=list(PRESETS),
        metavar="NAME",
        help=f"settings to start from [{DEFAULT_PRESET}]; 'paper' is the paper exactly; see the list below",
    )
    parser.add_argument(
        "--style-weights",
        type=_csv(float),
        metavar="W1,W2,...",
        help="blend weights of the style images (normalised) [equal]",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=sig.parameters["seed"].default,
        help=f"seed for the noise init [{sig.parameters['seed'].default}]",
    )
    parser.add_argument(
        "--save-every", type=int, default=0, metavar="N", help="also write OUTPUT_stepNNNN.png every N steps"
    )
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=sig.parameters["precision"].default)
    parser.add_argument(
        "--weights",
        default=None,
        help="weights folder or Hub repo id [GATYS_WEIGHTS, else the offline default, else timm/vgg19.tv_in1k]",
    )
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --weights")
    parser.add_argument("--local-files-only", action="store_true", help="never download weights")
    parser.add_argument("--device", default=None, help="force a device (cpu, cuda, cuda:1); default: accelerate's pick")
    parser.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory the run may use (e.g. 2GB, 512MB); a larger output is made in tiles [80%% of the free memory]",
    )
    parser.add_argument(
        "--bits",
        type=int,
        choices=[8, 16],
        default=8,
        help="bits per channel of the output; 16 (PNG or TIFF only) keeps smooth gradients for print [8]",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_preset_options(parser)
    return parser


#: The library words its advice without naming flags; here it names the command line's.
_FLAG_WORDING = {
    "a larger output size": "a larger --size",
    "the lbfgs optimizer": "--optimizer lbfgs",
    "max_memory": "--max-memory",
}


def _err(message: str) -> int:
    for neutral, flag in _FLAG_WORDING.items():
        message = message.replace(neutral, flag)
    print(f"gatys: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        from .train import main as train_main

        return train_main(argv[1:], prog="gatys train")
    if argv[:1] == ["batch"]:
        from .batch import main as batch_main

        return batch_main(argv[1:], prog="gatys batch")
    if argv[:1] == ["video"]:
        from .video import main as video_main

        return video_main(argv[1:], prog="gatys video")
    args = build_parser().parse_args(argv)
    if args.model:
        return _fast(args)
    if not args.styles:
        return _err("give at least one style image after the content image (or --model MODEL to use a trained one)")
    from . import image as im
    from .presets import get_preset
    from .transfer import StyleTransfer

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Preset) if f.name not in _NOT_OPTIONS}
    init_image = None
    if overrides.get("init") and overrides["init"] not in ("noise", "content", "style"):
        init_image, overrides["init"] = overrides["init"], None
    try:
        # Validate everything before loading weights or computing anything.
        out_path = im.check_output_path(args.output)
        im.check_bits(out_path, args.bits)
        opts = get_preset(args.preset).with_overrides(**overrides)
        if args.save_every < 0:
            raise GatysError(f"--save-every must be >= 0, got {args.save_every}")
        if args.max_memory is not None:
            from .tiling import parse_memory

            parse_memory(args.max_memory)
        st = StyleTransfer.from_pretrained(
            args.weights, revision=args.revision, local_files_only=args.local_files_only, device=args.device
        )

        def save_snapshot(info: Any) -> None:
            if args.save_every and info.step % args.save_every == 0 and info.step != info.total:
                im.save_image(info.image, out_path.with_name(f"{out_path.stem}_step{info.step:04d}{out_path.suffix}"))

        options: dict[str, Any] = dict(
            preset=opts,
            style_weights=args.style_weights,
            init_image=init_image,
            seed=args.seed,
            callback=save_snapshot if args.save_every else None,
            progress=not args.quiet,
            precision=args.precision,
            max_memory=args.max_memory,
        )
        plan = st.check_inputs(args.content, args.styles, **options)
        schedule = st.schedule(plan)
        print(
            f"gatys: weights {st.description}; preset {opts.name}; {opts.size} px, {schedule.total_steps} steps"
            + (f" ({schedule.describe()})" if schedule.tiled else "")
            + f"; about {_duration(st.estimate_seconds(plan, schedule))}",
            file=sys.stderr,
        )
        out = st.run(plan, schedule, callback=options["callback"], progress=options["progress"])  # as described
        final = out.pixels if args.bits == 16 and out.pixels is not None else out.image
        im.save_image(final, out_path, icc_profile=im.icc_profile(args.content), bits=args.bits)
    except GatysError as e:
        return _err(str(e))
    except KeyboardInterrupt:
        print("gatys: interrupted; nothing written", file=sys.stderr)
        return 130
    except MemoryError:
        return _err("out of memory; use a smaller --size")
    losses = out.final_losses
    print(
        f"gatys: wrote {out_path} ({out.image.width}x{out.image.height}) in {out.seconds:.1f} s; "
        f"final loss {losses['loss']:.4g} (content {losses['content']:.4g}, style {losses['style']:.4g})",
        file=sys.stderr,
    )
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _fast_outputs(photos: list[str], output: str, model: str) -> list[Any]:
    """One output path per photo: OUTPUT itself for one photo, OUTPUT/<photo>-<model>.png for several."""
    from pathlib import Path

    from . import image as im

    if len(photos) == 1:
        return [im.check_output_path(output)]
    folder = Path(output).expanduser()
    if folder.suffix.lower() in im.WRITE_FORMATS or folder.is_file():
        raise GatysError(f"with {len(photos)} photos, -o must be a folder (made if missing), got {output}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GatysError(f"cannot make the output folder {output}: {e.strerror or e}; choose another -o") from None
    tag = Path(model.rstrip("/")).name
    return [im.check_output_path(folder / f"{Path(p).stem}-{tag}.png") for p in photos]


def _fast(args: argparse.Namespace) -> int:
    """``gatys PHOTO [PHOTO ...] --model MODEL -o OUT``: one forward pass per photo, each written atomically."""
    from . import image as im
    from .feedforward import FastStyle
    from .tiling import parse_memory

    photos = [args.content, *args.styles]
    size = args.size  # None: each photo's own size
    try:
        max_memory = None if args.max_memory is None else parse_memory(args.max_memory)
        for i, photo in enumerate(photos):  # every photo readable before the output folder or the model
            im.load_image(photo, name=f"photo {i + 1}" if len(photos) > 1 else "photo")
        outputs = _fast_outputs(photos, args.output, args.model)
        for out_path in outputs:
            im.check_bits(out_path, args.bits)
        fs = FastStyle.from_pretrained(
            args.model, revision=args.revision, local_files_only=args.local_files_only, device=args.device
        )
        print(f"gatys: model {fs.description}", file=sys.stderr)
        for photo, out_path in zip(photos, outputs):
            t0 = time.perf_counter()
            y = fs.stylize_pixels(photo, size=size, preserve_colors=bool(args.preserve_colors), max_memory=max_memory)
            im.save_image(y, out_path, icc_profile=im.icc_profile(photo), bits=args.bits)
            print(
                f"gatys: wrote {out_path} ({y.shape[-1]}x{y.shape[-2]}) in {time.perf_counter() - t0:.2f} s",
                file=sys.stderr,
            )
    except GatysError as e:
        return _err(str(e))
    except KeyboardInterrupt:
        print("gatys: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

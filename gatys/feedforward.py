"""Johnson, Alahi & Fei-Fei (2016): a feed-forward image transformation network and FastStyle, its runtime.

"Perceptual losses for real-time style transfer and super-resolution" (ECCV 2016) trains one network per
style with a fixed VGG-16 loss network; stylising a photo is then one forward pass. The network's layout is
the paper's (supplementary Table 1) with the departures every modern implementation makes, each commented
where it is made.

A model folder holds ``model.safetensors`` (fp16 allowed), ``config.json`` (:class:`FastStyleConfig`) and a
``README.md`` model card; ``gatys.train`` writes one, :meth:`FastStyle.from_pretrained` loads one from a
folder or a Hub repo through the same plumbing as the VGG weights (:mod:`gatys.weights`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .errors import ConfigError, WeightsError
from .image import ImageInput, load_image, resize_longest, to_pil, to_tensor, with_chroma_of
from .weights import CONFIG_NAME, WEIGHTS_NAME, _looks_local, pick_device, read_config, resolve_files

#: ``config.json`` of a FastStyle model says this, so a VGG weights folder is told apart in one line.
MODEL_TYPE = "gatys-fast-style"
FORMAT_VERSION = 1
#: The paper's channel widths: 9x9 conv, two stride-2 convs; the decoder mirrors them.
BASE_CHANNELS = (32, 64, 128)


@dataclasses.dataclass(frozen=True)
class NetConfig:
    """The transformation network's shape.

    Args:
        width: multiplies every channel count (1.0 = the paper's 32/64/128); a CPU recipe uses less.
        residual_blocks: residual blocks at the bottleneck (the paper: 5).
    """

    width: float = 1.0
    residual_blocks: int = 5

    def __post_init__(self) -> None:
        if not (0 < self.width <= 8):
            raise ConfigError(f"network width must be in (0, 8], got {self.width}")
        if not (0 <= self.residual_blocks <= 32):
            raise ConfigError(f"residual_blocks must be in 0..32, got {self.residual_blocks}")

    @property
    def channels(self) -> tuple[int, int, int]:
        c1, c2, c3 = (max(4, round(c * self.width)) for c in BASE_CHANNELS)
        return c1, c2, c3


@dataclasses.dataclass(frozen=True)
class FastStyleConfig:
    """What a model folder's ``config.json`` says: the network, how it was trained, on which style.

    Args:
        net: the network's shape.
        loss_network: the VGG used as loss network (``label``, ``source``, ``architecture``, ``hub_repo``).
        recipe: the training recipe's fields (sizes, weights, optimiser), as trained.
        training: measured figures (``steps``, ``wall_time_s``, ``final_losses``, ``command``, ``photos``).
        style_sha256: SHA-256 of the style image file the network was trained on.
        style_name: the style image's file name.
        license: Hub licence id for the card (``other`` when the style image's licence is unknown).
    """

    net: NetConfig = NetConfig()
    loss_network: dict[str, Any] = dataclasses.field(default_factory=dict)
    recipe: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    style_sha256: str = ""
    style_name: str = ""
    license: str = "other"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        net = d.pop("net")
        arch = {"name": "johnson2016", **net, "channels": list(self.net.channels)}
        return {"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION, "architecture": arch, **d}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> FastStyleConfig:
        if data.get("model_type") != MODEL_TYPE:
            found = "VGG weights" if "architecture" in data and "color_order" in data else "not a FastStyle model"
            raise WeightsError(
                f"{where}: config.json is {found} (no model_type {MODEL_TYPE!r}); give a folder or repo written by "
                "'python -m gatys.train'"
            )
        arch = data.get("architecture") or {}
        try:
            net = NetConfig(width=float(arch["width"]), residual_blocks=int(arch["residual_blocks"]))
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise WeightsError(f"{where}: config.json's architecture is incomplete or invalid ({e})") from e
        known = {f.name for f in dataclasses.fields(cls)} - {"net"}
        return cls(net=net, **{k: v for k, v in data.items() if k in known})


class _Conv(nn.Sequential):
    """Reflection padding, convolution, then optionally instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, norm: bool = True, relu: bool = True):
        # Departure: reflection padding at every convolution (the paper zero-pads, and pads the input by 40 px
        # reflection for unpadded residual convs); per-layer reflection keeps sizes and avoids border artefacts.
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            # Departure: instance norm instead of the paper's batch norm (Ulyanov, Vedaldi & Lempitsky 2016).
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    """Two 3x3 convolutions and an identity shortcut, no ReLU after the sum (Gross & Wilber, as the paper)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_Conv(channels, channels, 3), _Conv(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution with instance norm and ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _Conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Departure: nearest-neighbour upsampling + conv instead of the paper's fractionally strided conv, which
        # leaves checkerboard artefacts (Odena, Dumoulin & Olah 2016).
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformNet(nn.Module):
    """The image transformation network: RGB in [0, 1], any size, to RGB in [0, 1] of the same size.

    Example:
        >>> net = TransformNet(NetConfig(width=0.25, residual_blocks=1))
        >>> net(torch.rand(1, 3, 37, 53)).shape
        torch.Size([1, 3, 37, 53])
    """

    def __init__(self, config: NetConfig | None = None):
        super().__init__()
        self.config = config or NetConfig()
        c1, c2, c3 = self.config.channels
        self.encoder = nn.Sequential(_Conv(3, c1, 9), _Conv(c1, c2, 3, stride=2), _Conv(c2, c3, 3, stride=2))
        self.residuals = nn.Sequential(*(_Residual(c3) for _ in range(self.config.residual_blocks)))
        self.decoder = nn.Sequential(_Upsample(c3, c2), _Upsample(c2, c1), _Conv(c1, 3, 9, norm=False, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # Two stride-2 stages need sides divisible by 4: reflect-pad up to that and crop back, so any size works.
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > 4 else "replicate")
        y = self.decoder(self.residuals(self.encoder(x)))
        # The paper's "scaled tanh" to the image range; here the range is [0, 1].
        return ((torch.tanh(y) + 1.0) * 0.5)[..., :h, :w]


def load_state(net: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` strictly into ``net``: every key used, every shape right, all finite; one-line errors."""
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:4])}"] if missing else []
        parts += [f"unexpected {', '.join(unexpected[:4])}"] if unexpected else []
        raise WeightsError(f"{where}: model.safetensors does not match config.json's network ({'; '.join(parts)})")
    for key, t in state.items():
        if tuple(t.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"{where}: {key} has shape {tuple(t.shape)}, config.json's network wants {tuple(own[key].shape)}"
            )
        if not torch.isfinite(t).all():
            raise WeightsError(f"{where}: {key} holds NaN or infinite values; the model file is corrupt")
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)


def _check_local_folder(name: str) -> None:
    """FastStyle's own one-line errors for a local folder (resolve_files' speak of VGG weights)."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise WeightsError(f"model folder {folder} not found; give a folder written by 'python -m gatys.train'")
    absent = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / f).is_file()]
    if absent:
        raise WeightsError(
            f"{folder} is not a FastStyle model folder (no {' or '.join(absent)}); "
            "give a folder written by 'python -m gatys.train'"
        )


def style_folders() -> list[Path]:
    """Where models are found by name: ``$GATYS_HOME/styles`` (models you put there), then ``hub/styles`` of
    the checkout this package runs from (the project's own models, when it commits some)."""
    from .weights import gatys_home

    return [gatys_home() / "styles", Path(__file__).resolve().parents[1] / "hub" / "styles"]


def builtin_style(name: str) -> Path | None:
    """The folder of the model called ``name`` (e.g. ``starry-night``), or None when ``name`` is not one.

    A name is a bare word (no ``/``); an existing folder of that name in the current directory wins.
    """
    if not name or "/" in name or os.sep in name or Path(name).exists():
        return None
    for folder in style_folders():
        if (folder / name / CONFIG_NAME).is_file():
            return folder / name
    return None


def builtin_styles() -> list[str]:
    """The names :meth:`FastStyle.from_pretrained` accepts without a path or repo id, sorted."""
    names = {p.parent.name for folder in style_folders() if folder.is_dir() for p in folder.glob(f"*/{CONFIG_NAME}")}
    return sorted(names)


class FastStyle:
    """A trained transformation network, ready to stylise photos in one forward pass.

    Example:
        >>> fs = FastStyle.from_pretrained("hub/styles/starry-night")  # doctest: +SKIP
        >>> fs.stylize("photo.jpg", size=512).save("out.png")  # doctest: +SKIP
    """

    def __init__(
        self,
        net: TransformNet,
        config: FastStyleConfig | None = None,
        *,
        device: str | torch.device | None = None,
        source: str = "",
    ):
        self.config = config or FastStyleConfig(net=net.config)
        self.device = pick_device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.source = source

    @property
    def description(self) -> str:
        """One line: the style, where the model came from, the device (e.g. for the CLI and the app)."""
        style = self.config.style_name or "unknown style"
        return f"FastStyle of {style} ({self.source or 'in memory'}) on {self.device}"

    @classmethod
    def from_pretrained(
        cls,
        repo_id_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
    ) -> FastStyle:
        """Load a model folder or Hub repo strictly (every key, every shape).

        Args:
            repo_id_or_path: a model name (``starry-night``: see :func:`builtin_styles`), a folder written by
                ``gatys.train`` / :meth:`save_pretrained`, or a Hub repo id.
            revision, cache_dir, local_files_only, token: as for ``huggingface_hub.hf_hub_download``.
            device: where to run; default the one accelerate picks.

        Example:
            >>> FastStyle.from_pretrained("someone/starry-night", revision="v1")  # doctest: +SKIP
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        name = os.fspath(repo_id_or_path)
        builtin = builtin_style(name)
        if builtin is not None:
            name = str(builtin)
        elif "/" not in name and not Path(name).exists():
            known = ", ".join(builtin_styles()) or "none found in $GATYS_HOME/styles or hub/styles"
            raise WeightsError(
                f"no model called {name!r} (known: {known}); give a model name, a folder or an owner/name Hub repo"
            )
        elif _looks_local(name):
            _check_local_folder(name)
        config_path, weights_path, where = resolve_files(
            name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        config = FastStyleConfig.from_dict(read_config(config_path, where), where)
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            raise WeightsError(f"{where}: model.safetensors is corrupt or truncated ({str(e).splitlines()[0]})") from e
        net = TransformNet(config.net)
        load_state(net, state, where)
        return cls(net, config, device=device, source=where)

    def save_pretrained(
        self,
        folder: str | os.PathLike,
        *,
        dtype: torch.dtype = torch.float16,
        style_image: Image.Image | None = None,
        sample: Image.Image | None = None,
        card: str | None = None,
    ) -> Path:
        """Write model.safetensors, config.json and README.md (and style/sample images) into ``folder``.

        Each file is written to a temporary name and renamed, so a reader never sees half a file; other files
        in the folder (training logs, checkpoints) are left alone.

        Args:
            dtype: storage precision, ``torch.float16`` (half the size) or ``torch.float32``.
            style_image, sample: shown by the model card (``style.jpg``, ``sample.jpg``) when given.
            card: the README.md text; default :func:`gatys._fastcard.model_card`.

        Example:
            >>> FastStyle(TransformNet()).save_pretrained("my-style")  # doctest: +SKIP
        """
        from ._fastcard import model_card, write_tensors
        from .image import write_atomic

        if dtype not in (torch.float16, torch.float32):
            raise ConfigError(f"dtype must be torch.float16 or torch.float32, got {dtype}")
        out = Path(folder).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        images = {"style.jpg": style_image, "sample.jpg": sample}
        for fname, img in images.items():
            if img is not None:
                from .image import save_image

                save_image(img.convert("RGB"), out / fname)
        state = {k: v.detach().float().cpu() for k, v in self.net.state_dict().items()}
        write_tensors(state, out / WEIGHTS_NAME, dtype=dtype)
        write_atomic(out / CONFIG_NAME, json.dumps(self.config.to_dict(), indent=2) + "\n")
        shown = [f for f, img in images.items() if img is not None]
        text = card if card is not None else model_card(self.config, dtype=dtype, images=shown)
        write_atomic(out / "README.md", text)
        return out

    @overload
    def stylize(  # type: ignore[overload-overlap]  # str and bytes are Sequences too
        self,
        image_or_images: ImageInput,
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        max_memory: str | int | None = None,
    ) -> Image.Image: ...
    @overload
    def stylize(
        self,
        image_or_images: Sequence[ImageInput],
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        max_memory: str | int | None = None,
    ) -> list[Image.Image]: ...
    def stylize(
        self,
        image_or_images: ImageInput | Sequence[ImageInput],
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        max_memory: str | int | None = None,
    ) -> Image.Image | list[Image.Image]:
        """Stylise one image (returns a PIL image) or a list of them (returns a list), one forward pass each.

        Args:
            image_or_images: a path, bytes, PIL image, array or tensor, or a list or tuple of them.
            size: resize so the longest side is this many pixels first; default the image's own size.
            preserve_colors: keep the photo's colours, taking only the luminance from the network's output
                (Gatys et al. 2016's luminance-only transfer, applied after the fact).
            max_memory: what the process may hold (``"1GB"``, ``"512MB"`` or bytes). An image that does not fit
                runs in overlapping tiles, feather-blended, every instance norm using the statistics of a
                downscaled whole-image pass (:func:`gatys.tiling.feedforward_tiled`). None: what the process
                holds plus 80 % of the device's free memory.

        Example:
            >>> fs.stylize(["a.jpg", "b.jpg"], size=512, preserve_colors=True)  # doctest: +SKIP
        """
        from . import tiling

        if size is not None and size < 16:
            raise ConfigError(f"size must be at least 16 px, got {size}")
        budget = None if max_memory is None else tiling.parse_memory(max_memory)
        if isinstance(image_or_images, (list, tuple)):
            return [
                self._stylize_one(im, size, preserve_colors, f"image {i + 1}", budget)
                for i, im in enumerate(image_or_images)
            ]
        return self._stylize_one(image_or_images, size, preserve_colors, "image", budget)  # type: ignore[arg-type]

    def stylize_pixels(
        self,
        image: ImageInput,
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        max_memory: str | int | None = None,
    ) -> torch.Tensor:
        """As :meth:`stylize` for one image, but the output before rounding to 8 bits: a (1, 3, H, W) float32
        tensor in [0, 1] on the CPU, for 16-bit files (``gatys.image.save_image(t, "out.tif", bits=16)``)."""
        from . import tiling

        if size is not None and size < 16:
            raise ConfigError(f"size must be at least 16 px, got {size}")
        budget = None if max_memory is None else tiling.parse_memory(max_memory)
        return self._stylize_tensor(image, size, preserve_colors, "image", budget)

    def _stylize_one(
        self, src: ImageInput, size: int | None, preserve_colors: bool, name: str, budget: int | None = None
    ) -> Image.Image:
        return to_pil(self._stylize_tensor(src, size, preserve_colors, name, budget))

    def _stylize_tensor(
        self, src: ImageInput, size: int | None, preserve_colors: bool, name: str, budget: int | None
    ) -> torch.Tensor:
        from . import tiling

        img = load_image(src, max_side=size, name=name)
        img = resize_longest(img, size, name) if size else resize_longest(img, max(img.size), name)
        base = tiling.process_memory(self.device)
        tile = tiling.feedforward_tile_side(
            self.net, img.size, budget if budget is not None else tiling.default_budget(self.device), base
        )
        x = to_tensor(img).to(self.device)
        # bf16 halves the time on GPUs with tensor cores; CPUs without AMX are slower in bf16, so fp32 there.
        autocast = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            y = tiling.feedforward_tiled(self.net, x, tile)[0] if tile else self.net(x).float()
        if preserve_colors:
            y = with_chroma_of(y, x)
        return y.float().clamp(0, 1).cpu()

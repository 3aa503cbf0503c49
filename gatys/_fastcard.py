"""Files of a FastStyle model folder: atomic writes and the README.md model card."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import image
from .errors import WeightsError

if TYPE_CHECKING:
    from .feedforward import FastStyleConfig

CITATION = """\
@inproceedings{johnson2016perceptual,
  title     = {Perceptual Losses for Real-Time Style Transfer and Super-Resolution},
  author    = {Johnson, Justin and Alahi, Alexandre and Fei-Fei, Li},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2016}
}"""


def write_tensors(state: dict[str, torch.Tensor], path: Path, *, dtype: torch.dtype) -> None:
    """Save ``state`` as safetensors in ``dtype``, refusing values that do not fit (fp16 overflows to inf)."""
    from safetensors.torch import save

    tensors = {k: v.to(dtype).contiguous() for k, v in sorted(state.items())}
    bad = [k for k, t in tensors.items() if not torch.isfinite(t).all()]
    if bad:
        hint = "; save in float32" if dtype == torch.float16 else ""
        raise WeightsError(f"{bad[0]} holds NaN or infinite values in {str(dtype).split('.')[-1]}{hint}")
    image.write_atomic(path, save(tensors, metadata={"format": "pt", "gatys": "fast-style"}))


def _figures(training: dict[str, Any]) -> str:
    rows = [f"| {k.replace('_', ' ')} | {v} |" for k, v in training.items() if k not in ("final_losses", "command")]
    losses = training.get("final_losses") or {}
    rows += [f"| final {k} loss | {v:.4g} |" for k, v in losses.items() if isinstance(v, (int, float))]
    return "\n".join(["| figure | value |", "|---|---|", *rows]) if rows else "Not recorded."


def model_card(config: FastStyleConfig, *, dtype: torch.dtype = torch.float16, images: list[str] | None = None) -> str:
    """README.md for a FastStyle model folder: YAML metadata, usage, training figures, provenance.

    Args:
        config: the folder's config.
        dtype: the storage precision of model.safetensors.
        images: files in the folder to show (``style.jpg``, ``sample.jpg``).
    """
    loss = config.loss_network
    base = f"base_model: {loss['hub_repo']}\n" if loss.get("hub_repo") else ""
    style = config.style_name or "the style image"
    shown = "\n".join(f"![{Path(f).stem}]({f})" for f in images or [])
    recipe = "\n".join(f"| {k} | {v} |" for k, v in config.recipe.items())
    c1, c2, c3 = config.net.channels
    command = config.training.get("command")
    precision = "float16 (computed in float32)" if dtype == torch.float16 else "float32"
    return f"""---
license: {config.license or "other"}
library_name: gatys
pipeline_tag: image-to-image
tags:
- style-transfer
- neural-style-transfer
- fast-style-transfer
- safetensors
{base}---

# Instant style: {style}

A feed-forward image transformation network (Johnson, Alahi & Fei-Fei 2016) trained for one style with
perceptual losses; it stylises a photo in one forward pass. Weights in {precision}.

{shown}

## Use

```python
from gatys.feedforward import FastStyle

fs = FastStyle.from_pretrained("THIS-REPO-OR-FOLDER")  # revision=, cache_dir=, local_files_only=, token=
fs.stylize("photo.jpg", size=512).save("out.png")
```

## Network

Channels {c1}/{c2}/{c3} (width {config.net.width:g} of the paper's 32/64/128), {config.net.residual_blocks} residual
blocks; instance norm, reflection padding, nearest-neighbour upsampling + conv (the usual departures from the paper).

## Training

- Style image: `{config.style_name}`, SHA-256 `{config.style_sha256 or "not recorded"}`
- Loss network: {loss.get("label", "not recorded")} ({loss.get("source", "")})
- Command: `{command or "not recorded"}`

| recipe field | value |
|---|---|
{recipe}

{_figures(config.training)}

## Citation

```bibtex
{CITATION}
```
"""

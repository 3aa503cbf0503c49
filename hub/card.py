"""The model card (README.md with YAML metadata) written beside converted weights."""

from __future__ import annotations

from gatys.vgg import VGGConfig

CITATION = """\
@article{gatys2015neural,
  title   = {A Neural Algorithm of Artistic Style},
  author  = {Gatys, Leon A. and Ecker, Alexander S. and Bethge, Matthias},
  journal = {arXiv preprint arXiv:1508.06576},
  year    = {2015}
}
@article{simonyan2014very,
  title   = {Very Deep Convolutional Networks for Large-Scale Image Recognition},
  author  = {Simonyan, Karen and Zisserman, Andrew},
  journal = {arXiv preprint arXiv:1409.1556},
  year    = {2014}
}"""


def model_card(config: VGGConfig, repo_id: str | None = None) -> str:
    license_id = "cc-by-4.0"
    name = config.display_name
    load = repo_id or "path/to/this/folder"
    return f"""---
license: {license_id}
library_name: gatys
pipeline_tag: image-to-image
tags:
- style-transfer
- neural-style
- vgg
- {config.architecture}
---

# {name} features for neural style transfer

Convolution weights (`conv1_1` … `conv5_{len(config.channels[-1])}`) of {config.architecture.upper()} as
safetensors, for [gatys](https://github.com/), an implementation of Gatys, Ecker & Bethge,
"A Neural Algorithm of Artistic Style" (2015). Only the convolutional layers are stored; classifiers are dropped.

## Use

```python
from gatys import StyleTransfer

st = StyleTransfer.from_pretrained("{load}")
st.stylize("photo.jpg", "painting.jpg", size=512).image.save("out.png")
```

## Input convention

The model applies it itself; callers pass RGB images in [0, 1].

| field | value |
|---|---|
| colour order | {config.color_order} |
| input range | 0-{config.input_range:g} |
| mean | {", ".join(f"{m:g}" for m in config.mean)} |
| std | {", ".join(f"{s:g}" for s in config.std)} |
| default pooling | {config.pooling} |
| α/β scale | {config.alpha_beta_scale:g} (multiply the paper's α/β by this for the paper's balance) |

## Provenance

- Source: {config.source or "not recorded"}
- SHA-256 of the source file: `{config.source_sha256 or "not recorded"}`
- Licence: {config.license or "see source"}
- Notes: {config.notes or "none"}

## Citation

```bibtex
{CITATION}
```
"""

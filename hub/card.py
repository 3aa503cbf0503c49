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

CITATION_CVPR2016 = """\
@inproceedings{gatys2016image,
  title     = {Image Style Transfer Using Convolutional Neural Networks},
  author    = {Gatys, Leon A. and Ecker, Alexander S. and Bethge, Matthias},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2016}
}"""

CITATION_HED = """\
@inproceedings{xie2015holistically,
  title     = {Holistically-Nested Edge Detection},
  author    = {Xie, Saining and Tu, Zhuowen},
  booktitle = {Proceedings of the IEEE International Conference on Computer Vision (ICCV)},
  year      = {2015}
}"""

#: Hub licence identifiers a config's ``license`` may start with; anything else is published as "other".
HUB_LICENSES = ("cc-by-4.0", "bsd-3-clause", "mit", "apache-2.0", "cc-by-nc-4.0")

PLACEHOLDER_REPO = "YOUR-NAME/REPO"


def hub_license(config: VGGConfig) -> str:
    """The Hub licence id for the YAML header: the first word of ``config.license`` when it is one."""
    words = config.license.lower().split()
    return words[0] if words and words[0] in HUB_LICENSES else "other"


def model_card(
    config: VGGConfig, repo_id: str | None = None, *, dtype: str = "fp32", command: str | None = None
) -> str:
    """README.md for a weights folder: YAML metadata, usage, input convention, provenance, citations.

    Args:
        config: the folder's config (architecture, input convention, provenance).
        repo_id: the Hub repo the folder is meant for; the usage snippet names it (a placeholder otherwise).
        dtype: storage precision of model.safetensors (``fp32`` or ``fp16``).
        command: the conversion command, recorded for provenance.
    """
    name = config.display_name
    load = repo_id or PLACEHOLDER_REPO
    last = f"conv5_{len(config.channels[-1])}"
    citations = [CITATION]
    if "normalised" in config.label.lower():
        citations.append(CITATION_CVPR2016)
    if "HED" in config.label or "HED" in config.source:
        citations.append(CITATION_HED)
    precision = "float16 (the model computes in float32)" if dtype == "fp16" else "float32"
    license_id = hub_license(config)
    return f"""---
license: {license_id}
library_name: gatys
pipeline_tag: image-to-image
tags:
- style-transfer
- neural-style-transfer
- vgg
- {config.architecture}
- safetensors
---

# {name} features for neural style transfer

The convolution weights (`conv1_1` … `{last}`) of {config.architecture.upper().replace("VGG", "VGG-")} as
safetensors ({precision}), for the `gatys` Python package, an implementation of Gatys, Ecker & Bethge,
"A Neural Algorithm of Artistic Style" (2015). Only the convolutional layers are stored; the classifier is dropped.

## Use

```python
from gatys import StyleTransfer

st = StyleTransfer.from_pretrained("{load}")  # revision=, cache_dir=, local_files_only=, token= as usual
st.stylize("photo.jpg", "painting.jpg", size=512).image.save("out.png")
```

or from the command line: `gatys photo.jpg painting.jpg -o out.png --weights {load}`.

## Input convention

Stored in `config.json`; the model applies it itself, so callers pass RGB images in [0, 1].

| field | value |
|---|---|
| colour order | {config.color_order} |
| input range | 0-{config.input_range:g} |
| mean | {", ".join(f"{m:g}" for m in config.mean)} |
| std | {", ".join(f"{s:g}" for s in config.std)} |
| default pooling | {config.pooling} |
| α/β scale | {config.alpha_beta_scale:g} |

`alpha_beta_scale` multiplies the paper's content/style ratio α/β: the paper used a VGG-19 normalised to mean
activation 1, and other weights give features on other scales, so the same α/β gives another balance.

## Provenance

- Source: {config.source or "not recorded"}
- SHA-256 of the source file: `{config.source_sha256 or "not recorded"}`
- Licence: {config.license or "see source"}
- Notes: {config.notes or "none"}
- Converted with: `{command or "python -m hub.convert"}`

## Citation

```bibtex
{chr(10).join(citations)}
```
"""

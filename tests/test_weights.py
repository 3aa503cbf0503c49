"""gatys.weights: loading VGG weights from a folder or a Hub repo, through the real huggingface_hub client.

Hub repos are served by ``tests/local_hub.py``'s server on 127.0.0.1 (the ``hub`` fixture); nothing
reaches the internet. gatys downloads two named files with ``hf_hub_download`` and never calls
``snapshot_download``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, tiny_config
from local_hub import LocalHub

from gatys import StyleTransfer
from gatys.errors import WeightsError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Loopback traffic must never go through a proxy a CI machine may define.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def features(st: StyleTransfer, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return st.model(x, ["conv4_2"])["conv4_2"]


X = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_first_download_then_cached_load_with_the_server_stopped(
    hub, tiny_weights_dir, tiny_net, tmp_path, monkeypatch
):
    hub.commit("gatys/tiny-vgg", folder_files(tiny_weights_dir))
    cache = tmp_path / "cache"
    st = StyleTransfer.from_pretrained("gatys/tiny-vgg", cache_dir=str(cache), device="cpu")
    assert torch.allclose(features(st, X), tiny_net(X, ["conv4_2"])["conv4_2"], atol=1e-5)
    assert st.weights_name == "tiny random VGG-16 (tests)"
    # The standard cache layout: models--org--name/{blobs,refs,snapshots}, the weights blob named by its sha256.
    repo_dir = cache / "models--gatys--tiny-vgg"
    assert (repo_dir / "refs" / "main").read_text() in {p.name for p in (repo_dir / "snapshots").iterdir()}
    sha = hashlib.sha256((tiny_weights_dir / "model.safetensors").read_bytes()).hexdigest()
    assert (repo_dir / "blobs" / sha).is_file()
    # Only the two files gatys needs were fetched; the weights came from the CDN origin, without the token.
    assert {p.rsplit("/", 1)[-1] for p in hub.resolves()} == {"config.json", "model.safetensors"}
    assert [m for m, p, _ in hub.requests if p.startswith("/blobs/")] == ["GET"]

    hub.stop()
    again = StyleTransfer.from_pretrained("gatys/tiny-vgg", cache_dir=str(cache), device="cpu")
    assert torch.equal(features(again, X), features(st, X))
    # ...and a repo never downloaded says so in one line, after huggingface_hub's retries (5, with backoff
    # waits of ~23 s in all, which this test skips).
    import types

    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))
    with pytest.raises(WeightsError, match=r"cannot reach the Hub .* not in the cache") as info:
        StyleTransfer.from_pretrained("gatys/other", cache_dir=str(cache), device="cpu")
    assert "\n" not in str(info.value)


def test_offline_mode_uses_the_cache_and_sends_nothing(hub, tiny_weights_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    hub.commit("gatys/tiny-vgg", folder_files(tiny_weights_dir))
    StyleTransfer.from_pretrained("gatys/tiny-vgg", device="cpu")  # the default cache (HF_HUB_CACHE)
    sent = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import
    st = StyleTransfer.from_pretrained("gatys/tiny-vgg", device="cpu")
    assert st.model.config.architecture == "vgg16" and len(hub.requests) == sent
    with pytest.raises(WeightsError, match=r"not in the cache and downloads are off \(HF_HUB_OFFLINE=1"):
        StyleTransfer.from_pretrained("gatys/tiny-vgg", revision="v2", device="cpu")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(WeightsError, match="local_files_only"):
        StyleTransfer.from_pretrained("gatys/never-fetched", local_files_only=True, device="cpu")
    assert len(hub.requests) == sent


def test_pinned_revision(hub, tiny_weights_dir, tmp_path):
    from gatys.vgg import VGGFeatures
    from hub.convert import save_pretrained

    first = hub.commit("gatys/tiny-vgg", folder_files(tiny_weights_dir), tag="v1")
    newer = VGGFeatures.random(tiny_config(), seed=7)
    save_pretrained(newer.state_dict(), newer.config, tmp_path / "newer")
    hub.commit("gatys/tiny-vgg", folder_files(tmp_path / "newer"))  # main moves on

    latest = features(StyleTransfer.from_pretrained("gatys/tiny-vgg", device="cpu"), X)
    assert torch.allclose(latest, newer(X, ["conv4_2"])["conv4_2"], atol=1e-5)
    by_tag = features(StyleTransfer.from_pretrained("gatys/tiny-vgg", revision="v1", device="cpu"), X)
    by_sha = StyleTransfer.from_pretrained("gatys/tiny-vgg", revision=first, device="cpu")
    assert torch.equal(by_tag, features(by_sha, X)) and not torch.allclose(by_tag, latest)
    assert by_sha.model.source == f"gatys/tiny-vgg@{first}"
    # Both files of one load come from the same commit: the weights are fetched at config.json's commit.
    assert any(f"/resolve/{first}/model.safetensors" in p for p in hub.resolves())
    with pytest.raises(WeightsError, match="revision 'nope' not found in Hub repo gatys/tiny-vgg"):
        StyleTransfer.from_pretrained("gatys/tiny-vgg", revision="nope", device="cpu")
    # A pinned commit that is cached needs no server at all.
    hub.stop()
    assert torch.equal(
        features(StyleTransfer.from_pretrained("gatys/tiny-vgg", revision=first, device="cpu"), X), by_tag
    )


def test_missing_repo_file_and_gated_repo(hub, tiny_weights_dir):
    files = folder_files(tiny_weights_dir)
    hub.commit("gatys/config-only", {"config.json": files["config.json"]})
    hub.commit("gatys/gated", files, gated_token="hf_granted")
    cases = [
        ("gatys/absent", None, r"Hub repo gatys/absent not found, or private and you are not logged in"),
        ("gatys/config-only", None, r"Hub repo gatys/config-only has no model\.safetensors"),
        ("gatys/gated", None, r"gatys/gated is gated: accept its terms.*hf auth login"),
        ("gatys/gated", "hf_wrong", r"gatys/gated is gated"),
        ("not a repo id!", None, r"neither a folder nor a valid Hub repo id"),
    ]
    for repo, token, message in cases:
        with pytest.raises(WeightsError, match=message) as info:
            StyleTransfer.from_pretrained(repo, token=token, device="cpu")
        assert "\n" not in str(info.value)
    # The token is plumbed through to the Hub, and not sent to the CDN origin.
    st = StyleTransfer.from_pretrained("gatys/gated", token="hf_granted", device="cpu")
    assert st.model.config.architecture == "vgg16"
    assert ("HEAD", "/gatys/gated/resolve/main/config.json", "Bearer hf_granted") in hub.requests
    assert all(auth is None for _, p, auth in hub.requests if p.startswith("/blobs/"))


def test_corrupt_download_is_caught_and_evicted(hub, tiny_weights_dir, tmp_path):
    files = folder_files(tiny_weights_dir)
    hub.commit("gatys/tiny-vgg", files)
    sha = hashlib.sha256(files["model.safetensors"]).hexdigest()
    hub.corrupt.add(sha)  # the CDN flips a byte; the Hub still advertises the true sha256
    with pytest.raises(WeightsError, match=r"does not match its SHA-256 .*removed from the cache: try again") as info:
        StyleTransfer.from_pretrained("gatys/tiny-vgg", cache_dir=str(tmp_path / "c"), device="cpu")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "c").rglob(sha))
    hub.corrupt.clear()  # the transfer works next time
    st = StyleTransfer.from_pretrained("gatys/tiny-vgg", cache_dir=str(tmp_path / "c"), device="cpu")
    assert st.model.config.architecture == "vgg16"


def test_truncated_file_in_the_repo(hub, tiny_weights_dir):
    files = folder_files(tiny_weights_dir)
    files["model.safetensors"] = files["model.safetensors"][:1000]  # consistent hashes, broken content
    hub.commit("gatys/truncated", files)
    with pytest.raises(WeightsError, match=r"model\.safetensors is corrupt or truncated .*; delete .*blobs/") as info:
        StyleTransfer.from_pretrained("gatys/truncated", device="cpu")
    assert "\n" not in str(info.value)


# -- a repo in timm's layout: timm/vgg19.tv_in1k --------------------------------------------------------------

# config.json of timm/vgg19.tv_in1k on the Hub (pretrained_cfg as timm writes it).
TIMM_CONFIG = {
    "architecture": "vgg19",
    "num_classes": 1000,
    "num_features": 4096,
    "pretrained_cfg": {
        "tag": "tv_in1k",
        "custom_load": False,
        "input_size": [3, 224, 224],
        "fixed_input_size": False,
        "interpolation": "bilinear",
        "crop_pct": 0.875,
        "crop_mode": "center",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "num_classes": 1000,
        "pool_size": [7, 7],
        "first_conv": "features.0",
        "classifier": "head.fc",
    },
}


def test_timm_repo_loads_strictly_reading_only_the_convolutions(hub, monkeypatch):
    import safetensors
    from safetensors.torch import save
    from test_hub_convert import imagenet_input, random_features, torchvision_forward

    state = dict(random_features("vgg19"))
    # timm's head: pre_logits.fc1 (4096, 512, 7, 7), fc2 (4096, 4096, 1, 1), head.fc (1000, 4096). Never read
    # by gatys, so stored here at token size (the real ones are 470 MB of the 575 MB file).
    for k in ("pre_logits.fc1", "pre_logits.fc2", "head.fc"):
        state[f"{k}.weight"], state[f"{k}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    hub.commit(
        "timm/vgg19.tv_in1k",
        {
            "config.json": json.dumps(TIMM_CONFIG).encode(),
            "model.safetensors": save({k: v.contiguous() for k, v in state.items()}),
            "pytorch_model.bin": b"never downloaded",
        },
    )
    read: list[str] = []
    real_open = safetensors.safe_open

    class Spy:
        def __init__(self, *a, **k):
            self.f = real_open(*a, **k)

        def __enter__(self):
            self.f.__enter__()
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

        def keys(self):
            return self.f.keys()

        def get_tensor(self, key):
            read.append(key)
            return self.f.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    st = StyleTransfer.from_pretrained(device="cpu")  # no name: GATYS_WEIGHTS unset, no local default -> timm repo
    assert st.model.config.architecture == "vgg19" and st.model.config.color_order == "RGB"
    assert "torchvision" in st.model.config.label and st.model.config.license == "bsd-3-clause"
    assert sorted(read) == sorted(k for k in state if k.startswith("features."))
    assert not any("pytorch_model.bin" in p for p in hub.resolves())
    ref = torchvision_forward(state, "vgg19", imagenet_input(X))
    with torch.no_grad():
        ours = st.model(X, list(ref))
    for name, r in ref.items():
        assert float((ours[name] - r).abs().max()) <= 1e-4 * float(r.abs().max()), name


def test_timm_layout_rejects_other_networks(hub):
    from safetensors.torch import save

    bn = dict(TIMM_CONFIG, architecture="vgg19_bn")
    hub.commit(
        "timm/vgg19_bn.tv_in1k",
        {"config.json": json.dumps(bn).encode(), "model.safetensors": save({"features.0.weight": torch.zeros(1)})},
    )
    with pytest.raises(WeightsError, match="architecture 'vgg19_bn' .batch-norm VGGs are not supported"):
        StyleTransfer.from_pretrained("timm/vgg19_bn.tv_in1k", device="cpu")
    hub.commit(
        "timm/partial",
        {
            "config.json": json.dumps(TIMM_CONFIG).encode(),
            "model.safetensors": save({"features.0.weight": torch.zeros(64, 3, 3, 3)}),
        },
    )
    with pytest.raises(WeightsError, match=r"lacks features\.0\.bias.*not a VGG-19"):
        StyleTransfer.from_pretrained("timm/partial", device="cpu")


# -- the environment variables as users set them ------------------------------------------------------------------

LOAD = """
import sys, torch
from gatys import StyleTransfer
st = StyleTransfer.from_pretrained(sys.argv[1], device="cpu")
print(float(st.model(torch.ones(1, 3, 32, 32), ["conv4_2"])["conv4_2"].sum()))
"""


@pytest.mark.slow
def test_hf_endpoint_hf_home_and_hf_hub_offline_environment(tiny_weights_dir, tmp_path):
    """A fresh process per step, configured only through HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE."""
    server = LocalHub(max_requests=50).start()
    server.commit("gatys/tiny-vgg", folder_files(tiny_weights_dir))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GATYS_"))}
    env.update(
        HF_ENDPOINT=server.url,
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(ROOT),
    )

    def load(**extra):
        return subprocess.run(
            [sys.executable, "-c", LOAD, "gatys/tiny-vgg"],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        first = load()
        assert first.returncode == 0, first.stderr
        assert (tmp_path / "hf" / "hub" / "models--gatys--tiny-vgg").is_dir()
    finally:
        server.stop()
    offline = load(HF_HUB_OFFLINE="1")
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == first.stdout


# -- the default resolution prefers the paper's VGG-19 from the Hub, falls back to the offline VGG-16 ----------


@pytest.fixture
def offline_default(tiny_weights_dir, tmp_path, monkeypatch):
    """The offline default folder ($GATYS_HOME/vgg16-hed) holding the tiny weights; the Hub repo renamed."""
    import shutil

    from gatys import weights

    home = tmp_path / "gatys-home"
    shutil.copytree(tiny_weights_dir, home / weights.DEFAULT_LOCAL_NAME)
    monkeypatch.setenv("GATYS_HOME", str(home))
    monkeypatch.setattr(weights, "DEFAULT_HUB_REPO", "gatys/tiny-vgg19")
    return home / weights.DEFAULT_LOCAL_NAME


def test_default_prefers_the_hub_vgg19_when_the_hub_answers(hub, offline_default, tiny_net):
    from gatys import weights

    hub.commit("gatys/tiny-vgg19", folder_files(offline_default))
    choice = weights.choose_default_weights(hub_timeout=2)
    assert choice.name == "gatys/tiny-vgg19"
    assert "VGG-19 from the Hub" in choice.notice and "\n" not in choice.notice
    st = StyleTransfer.from_pretrained(device="cpu")  # no name: the same order
    assert torch.allclose(features(st, X), tiny_net(X, ["conv4_2"])["conv4_2"], atol=1e-5)
    # Once cached, the Hub repo is chosen without asking the Hub.
    hub.stop()
    assert weights.choose_default_weights(hub_timeout=2) == weights.DefaultWeights("gatys/tiny-vgg19")


def test_default_falls_back_to_the_offline_vgg16_when_the_hub_is_unreachable(hub, offline_default):
    from gatys import weights

    hub.commit("gatys/tiny-vgg19", folder_files(offline_default))
    hub.stop()  # nothing listens on the endpoint any more: connection refused
    t0 = time.monotonic()
    choice = weights.choose_default_weights(hub_timeout=2)
    assert time.monotonic() - t0 < 2.5  # one request, no retries with back-off
    assert choice.name == str(offline_default)
    assert choice.notice.startswith("the Hub did not answer: using the offline VGG-16 (HED)")


def test_default_probe_gives_up_after_its_timeout_on_a_silent_hub(hub, offline_default, monkeypatch):
    """A Hub that accepts the connection and never answers costs the timeout, not half a minute."""
    import socket

    from huggingface_hub import constants

    from gatys import weights

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel completes the handshake; nobody ever reads or answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    try:
        t0 = time.monotonic()
        choice = weights.choose_default_weights(hub_timeout=0.5)
        assert time.monotonic() - t0 < 2.0
    finally:
        silent.close()
    assert choice.name == str(offline_default)


def test_default_with_hf_hub_offline_sends_nothing(hub, offline_default, monkeypatch):
    from huggingface_hub import constants

    from gatys import weights

    hub.commit("gatys/tiny-vgg19", folder_files(offline_default))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    choice = weights.choose_default_weights()
    assert choice.name == str(offline_default)
    assert choice.notice.startswith("HF_HUB_OFFLINE=1: using the offline VGG-16 (HED)")
    assert hub.requests == []

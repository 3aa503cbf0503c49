"""Pulling weights through the real huggingface_hub client, from a Hub-compatible server on 127.0.0.1.

The server speaks the part of the Hub protocol that ``hf_hub_download`` uses (read from huggingface_hub's
``file_download.py`` / ``utils/_http.py``): ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``
answering with ``X-Repo-Commit`` and ``ETag`` (a git blob sha1 for small files); for LFS files a 302 to
a separate "CDN" origin with ``Location``, ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; errors
flagged with ``X-Error-Code`` (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound). Nothing else is
needed: gatys downloads two named files with ``hf_hub_download`` and never calls ``snapshot_download``.

No test reaches the internet: both servers bind 127.0.0.1, answer a bounded number of requests and stop
themselves after a while even if a test forgets to.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from helpers import ROOT, tiny_config

from gatys import StyleTransfer
from gatys.errors import WeightsError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Loopback traffic must never go through a proxy a CI machine may define.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))

LFS_SUFFIXES = (".safetensors", ".bin", ".pth")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    """A tiny Hub: repos of commits of files, branches/tags, optional gating, deliberate corruption."""

    def __init__(self, max_requests: int = 400, lifetime_s: float = 120.0):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization)
        self.corrupt: set[str] = set()  # sha256 of blobs served with one byte flipped
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self._servers: list[ThreadingHTTPServer] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    # -- content --------------------------------------------------------------------------------------------

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        tag: str | None = None,
        gated_token: str | None = None,
    ) -> str:
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}, "gated_token": gated_token})
        sha = hashlib.sha1(f"{repo_id}{len(repo['commits'])}{sorted(files)}".encode()).hexdigest()
        repo["commits"][sha] = dict(files)
        repo["refs"][branch] = sha
        if tag:
            repo["refs"][tag] = sha
        return sha

    def blobs(self) -> dict[str, bytes]:
        return {
            hashlib.sha256(d).hexdigest(): d
            for r in self.repos.values()
            for c in r["commits"].values()
            for name, d in c.items()
            if name.endswith(LFS_SUFFIXES)
        }

    def resolves(self) -> list[str]:
        return [p for _, p, _ in self.requests if "/resolve/" in p]

    # -- serving --------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def start(self) -> LocalHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._handle(self, body=False)

            def do_GET(self):
                hub._handle(self, body=True)

        for _ in range(2):  # the Hub, and a "CDN" on another origin (as LFS downloads are in reality)
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self._servers.append(server)
        self._timer = threading.Timer(self.lifetime_s, self.stop)  # stops itself even if a test forgets to
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, []
        if self._timer is not None:
            self._timer.cancel()
        for s in servers:
            s.shutdown()
            s.server_close()

    def _handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        with self._lock:
            self.requests.append((h.command, h.path, h.headers.get("authorization")))
            over = len(self.requests) > self.max_requests
        if over:  # bounded: a runaway client stops the server instead of spinning
            threading.Thread(target=self.stop, daemon=True).start()
            return self._send(h, 503, {}, b"", body)
        path = urllib.parse.urlsplit(h.path).path
        cdn = h.server.server_address[1] != self._servers[0].server_address[1]
        if cdn:
            sha = path.rsplit("/", 1)[-1]
            data = self.blobs().get(sha)
            if data is None:
                return self._send(h, 404, {}, b"", body)
            if sha in self.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            return self._send(h, 200, {"Content-Length": str(len(data)), "ETag": f'"{sha}"'}, data, body)
        m = re.match(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
        if not m:
            return self._send(h, 404, {}, b"Not Found", body)
        repo_id, rev, filename = m["repo"], urllib.parse.unquote(m["rev"]), urllib.parse.unquote(m["file"])
        repo = self.repos.get(repo_id)
        if repo is None:  # the Hub answers 401 for missing and for private repos alike
            return self._send(
                h, 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, b"", body
            )
        if repo["gated_token"] and h.headers.get("authorization") != f"Bearer {repo['gated_token']}":
            return self._send(h, 401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"}, b"", body)
        commit = repo["refs"].get(rev) or (rev if rev in repo["commits"] else None)
        if commit is None:
            return self._send(
                h, 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, b"", body
            )
        data = repo["commits"][commit].get(filename)
        if data is None:
            return self._send(
                h,
                404,
                {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": commit},
                b"",
                body,
            )
        if filename.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            return self._send(
                h,
                302,
                {
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{sha}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": f'"{git_blob_sha1(sha.encode())}"',
                    "Location": f"{self.cdn_url}/blobs/{sha}",
                    "Content-Length": "0",
                },
                b"",
                body,
            )
        return self._send(
            h,
            200,
            {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"', "Content-Length": str(len(data))},
            data,
            body,
        )

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        h.send_response(status)
        headers.setdefault("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if body and data and status != 302:
            h.wfile.write(data)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running LocalHub with huggingface_hub pointed at it (as HF_ENDPOINT would) and a private cache."""
    from huggingface_hub import constants

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

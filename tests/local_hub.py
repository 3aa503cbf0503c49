"""A Hub-compatible server on 127.0.0.1 for tests: what ``hf_hub_download`` needs, nothing more.

The server speaks the part of the Hub protocol that ``hf_hub_download`` uses (read from huggingface_hub's
``file_download.py`` / ``utils/_http.py``): ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``
answering with ``X-Repo-Commit`` and ``ETag`` (a git blob sha1 for small files); for LFS files a 302 to
a separate "CDN" origin with ``Location``, ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; errors
flagged with ``X-Error-Code`` (RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound).

No test reaches the internet: both servers bind 127.0.0.1, answer a bounded number of requests and stop
themselves after a while even if a test forgets to. The ``hub`` fixture (tests/conftest.py) starts one and
points huggingface_hub at it.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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

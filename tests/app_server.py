"""Helpers for the app tests: serve app.py in a subprocess on a free localhost port, and read its CPU use."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers import ROOT

#: Starting the app imports torch and gradio; on a loaded 2-core machine that can take a while.
START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(weights: str | os.PathLike, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GATYS_WEIGHTS=str(weights),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def serve(
    weights: str | os.PathLike, log: Path, *, cwd: Path = ROOT, python: str = sys.executable, **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``python app.py`` from ``cwd`` until the page answers; yield (url, process); stop it afterwards."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [python, "app.py"],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=app_env(weights, GRADIO_SERVER_PORT=str(port), **env),
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"app.py exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
                    )
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads together (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_use(pid: int, window: float = 1.0) -> float:
    """Cores the process kept busy over the next ``window`` seconds (1.0 = one core all the time)."""
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    return (cpu_seconds(pid) - before) / (time.monotonic() - t0)


def wait_idle(pid: int, *, within: float, threshold: float = 0.1, window: float = 1.0) -> tuple[float, float]:
    """Seconds until the process's CPU use over ``window`` falls below ``threshold`` cores, and that use.

    Raises AssertionError if it does not within ``within`` seconds.
    """
    start = time.monotonic()
    uses = []
    while time.monotonic() - start < within:
        use = cpu_use(pid, window)
        uses.append(round(use, 2))
        if use < threshold:
            return time.monotonic() - start, use
    raise AssertionError(f"server still busy {within:.0f} s after stop; CPU use per {window} s: {uses}")


def tiny_weights(folder: Path) -> Path:
    """The conftest's tiny seeded VGG-16 as a weights folder (for servers shared by a module's tests)."""
    from helpers import tiny_config

    from gatys.vgg import VGGFeatures
    from hub.convert import save_pretrained

    net = VGGFeatures.random(tiny_config(), seed=0)
    return Path(save_pretrained(net.state_dict(), net.config, folder))

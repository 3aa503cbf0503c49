"""Many visitors at once: the app under load, through the official ``gradio_client`` (issue 14).

    python -m benchmarks.load [--previews 8] [--instants 4] [--size 128] [--steps 30] [--out DIR]

Starts ``python app.py`` on a free local port (the offline default weights, or ``GATYS_WEIGHTS``), then
submits at the same moment ``--previews`` optimisations (``/stylize``, the app's default ``preview`` preset at
``--size`` px and ``--steps`` steps, Tübingen x The Shipwreck of the Minotaur) and ``--instants`` instant
styles (``/instant``, starry-night at 512 px), each from its own client (its own session). For each job it
reports the seconds it waited before running, the queue position Gradio first told it, the seconds it ran
and its outcome (done, the queue-full message, or the error). The server's resident memory (its process and
children) is sampled every 0.1 s throughout; its peak is reported.

Then two long runs that are abandoned: one cancelled by its client (``job.cancel()``, what the page's Stop and
an API caller do) and one whose client process is killed mid-run (a closed connection): for each, the
seconds until another client's new small run starts (the worker is free), and until the server's CPU use
falls below 0.1 core (0.5 s windows; after a disconnect this is measured first, the new run after it).

Prints markdown tables and writes them and ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"


@contextlib.contextmanager
def server(log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python app.py`` on a free local port (tests/app_server.serve, the tests' one way of serving it), with
    ``GATYS_WEIGHTS`` or else the offline default weights."""
    sys.path.insert(0, str(ROOT / "tests"))
    from app_server import serve

    from gatys.weights import default_local_dir

    with serve(os.environ.get("GATYS_WEIGHTS") or default_local_dir(), log) as served:
        yield served


class Memory(threading.Thread):
    """Samples the server's RSS (process and children) every 0.1 s; ``peak`` in bytes."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            with contextlib.suppress(Exception):
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
                self.peak = max(self.peak, rss)
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_until_idle(pid: int, start: float, within: float = 30.0, window: float = 0.5) -> float:
    """Seconds from ``start`` until a ``window`` with under 0.1 core of CPU use ends."""
    while time.monotonic() - start < within:
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        if (cpu_seconds(pid) - before) / (time.monotonic() - t0) < 0.1:
            return time.monotonic() - start
    return float("inf")


def wait_busy(pid: int, within: float = 120.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < within:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if (cpu_seconds(pid) - before) / 0.5 > 0.5:
            return
    raise SystemExit("the server never got busy")


def follow(job: Any, submitted: float, row: dict[str, Any]) -> None:
    """Poll a job's status until it ends; fill ``row`` with its wait, first queue position, run time, outcome."""
    from gradio_client.utils import Status

    started = None
    while not job.done():
        s = job.status()
        if s.code == Status.IN_QUEUE and s.rank is not None and row["position"] is None:
            row["position"] = f"{s.rank + 1} of {s.queue_size}" if s.queue_size else str(s.rank + 1)
        if s.code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS) and started is None:
            started = time.monotonic()
        if s.code == Status.QUEUE_FULL:
            break
        time.sleep(0.05)
    end = time.monotonic()
    try:
        out = job.result(timeout=5)
        status = out[1] if isinstance(out, (list, tuple)) else str(out)
        row["outcome"] = "done" if str(status).startswith("**Done**") else f"? {str(status)[:50]}"
    except Exception as e:  # the queue-full message or a server error, as the client gets it
        row["outcome"] = f"{type(e).__name__}: {str(e)[:70]}"
    started = started or end
    row["wait_s"] = round(started - submitted, 1)
    row["run_s"] = round(end - started, 1)


def load_test(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    from gradio_client import Client, handle_file

    content, style = handle_file(str(IMAGES / "tubingen.jpg")), handle_file(str(IMAGES / "shipwreck.jpg"))
    clients = [Client(url, verbose=False) for _ in range(args.previews + args.instants)]
    rows, threads = [], []
    submitted = time.monotonic()
    for i, client in enumerate(clients):
        if i < args.previews:
            kind = "preview"
            job = client.submit(content=content, style=style, size=args.size, steps=args.steps, api_name="/stylize")
        else:
            kind = "instant"
            job = client.submit(photo=content, style="starry-night", size=512, api_name="/instant")
        row: dict[str, Any] = dict(client=i + 1, kind=kind, position=None)
        rows.append(row)
        threads.append(threading.Thread(target=follow, args=(job, submitted, row)))
        threads[-1].start()
    for t in threads:
        t.join()
    return rows


DISCONNECT = """
import sys, time
from gradio_client import Client, handle_file
c = Client(sys.argv[1], verbose=False)
c.submit(content=handle_file(sys.argv[2]), style=handle_file(sys.argv[3]), size=256, steps=2000, api_name="/stylize")
time.sleep(600)
"""


def submit_stylize(client: Any, size: int, steps: int) -> Any:
    """Tübingen x The Shipwreck of the Minotaur through ``/stylize`` at ``size`` px for ``steps`` steps."""
    from gradio_client import handle_file

    return client.submit(
        content=handle_file(str(IMAGES / "tubingen.jpg")),
        style=handle_file(str(IMAGES / "shipwreck.jpg")),
        size=size,
        steps=steps,
        api_name="/stylize",
    )


def next_job_starts(client: Any, start: float) -> float:
    """Seconds from ``start`` until a new small run (64 px, 2 steps) submitted now starts: the worker is free."""
    from gradio_client.utils import Status

    job = submit_stylize(client, 64, 2)
    while not job.done():
        if job.status().code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS):
            break
        time.sleep(0.02)
    started = time.monotonic() - start
    job.result(timeout=120)
    return started


def abandoned(url: str, pid: int) -> list[dict[str, Any]]:
    from gradio_client import Client

    rows = []
    client, other = Client(url, verbose=False), Client(url, verbose=False)
    job = submit_stylize(client, 256, 2000)
    wait_busy(pid)
    time.sleep(2)
    start = time.monotonic()
    job.cancel()
    free = next_job_starts(other, start)
    rows.append(
        dict(
            how="job.cancel() (Stop, an API caller)",
            next_run_starts_after_s=round(free, 2),
            cpu_idle_after_s=round(seconds_until_idle(pid, start), 2),
        )
    )
    time.sleep(2)
    proc = subprocess.Popen(
        [sys.executable, "-c", DISCONNECT, url, str(IMAGES / "tubingen.jpg"), str(IMAGES / "shipwreck.jpg")]
    )
    wait_busy(pid)
    time.sleep(2)
    start = time.monotonic()
    proc.kill()
    proc.wait()
    idle = seconds_until_idle(pid, start)
    rows.append(
        dict(
            how="client process killed (disconnect)",
            next_run_starts_after_s=round(next_job_starts(other, start), 2),
            cpu_idle_after_s=round(idle, 2),
        )
    )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--previews", type=int, default=8)
    parser.add_argument("--instants", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, help="size of the preview runs [128]")
    parser.add_argument("--steps", type=int, default=30, help="steps of the preview runs [30]")
    parser.add_argument("--out", type=Path, default=Path("load-results"))
    args = parser.parse_args(argv)
    if not (IMAGES / "tubingen.jpg").is_file():
        print(f"benchmarks.load: {IMAGES} not found (it lies beside the checkout)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with server(args.out / "server.log") as (url, proc):
        memory = Memory(proc.pid)
        memory.start()
        idle_rss = None
        with contextlib.suppress(Exception):
            import psutil

            idle_rss = psutil.Process(proc.pid).memory_info().rss
        t0 = time.monotonic()
        rows = load_test(url, args)
        load_seconds = time.monotonic() - t0
        stops = abandoned(url, proc.pid)
        memory.running = False
        log = (args.out / "server.log").read_text(errors="replace")
    tracebacks = log.count("Traceback")
    summary = dict(
        clients=len(rows),
        done=sum(r["outcome"] == "done" for r in rows),
        wall_s=round(load_seconds, 1),
        server_rss_idle_mb=round(idle_rss / 2**20) if idle_rss else None,
        server_rss_peak_mb=round(memory.peak / 2**20),
        tracebacks_in_server_log=tracebacks,
    )
    text = "\n\n".join(
        [
            f"### {args.previews} previews ({args.size} px, {args.steps} steps) and {args.instants} instant styles "
            "submitted at once",
            table(rows),
            table([summary]),
            "### Abandoned runs (256 px, 2000 steps)",
            table(stops),
        ]
    )
    print(text)
    (args.out / "results.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(dict(jobs=rows, summary=summary, abandoned=stops), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gatys batch: every photo once across processes, resume, failures reported, the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from accelerate import PartialState
from app_server import free_port
from helpers import ROOT, make_image
from PIL import Image
from test_feedforward import tiny_style

from gatys.batch import BatchItem, find_inputs, item_seed, main, optimization_renderer, run_batch


class FakeState:
    """Process ``index`` of ``n`` as accelerate's PartialState sees it, with accelerate's own splitter, without
    starting processes (the slow test below starts real ones)."""

    split_between_processes = PartialState.split_between_processes

    def __init__(self, index: int, n: int):
        self.process_index, self.num_processes = index, n
        self.is_main_process = index == 0


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    names = ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.webp", "e.PNG"]
    for i, name in enumerate(names):
        make_image(40 + i, 32, seed=i).save(root / name)
    (root / "notes.txt").write_text("not a photo")
    (root / ".hidden.png").write_bytes(b"")
    return root


def recording_render(calls):
    def render(path: Path, seed: int) -> Image.Image:
        calls.append(path.name)
        return make_image(16, 16, seed=seed % 100)

    return render


def test_find_inputs_recurses_and_maps_outputs(photos, tmp_path):
    items = find_inputs(photos, tmp_path / "out", seed=3)
    rels = [i.source.relative_to(photos).as_posix() for i in items]
    assert rels == ["a.png", "b.jpg", "e.PNG", "sub/c.png", "sub/deeper/d.webp"]
    assert items[3].output == tmp_path / "out" / "sub" / "c.png"
    assert items[4].output == tmp_path / "out" / "sub" / "deeper" / "d.png"
    assert items[0].seed == item_seed("a.png", 3) != items[1].seed


@pytest.mark.parametrize("n", [2, 3])
def test_processes_cover_every_photo_once(photos, tmp_path, n):
    items = find_inputs(photos, tmp_path / "out")
    seen: list[str] = []
    for index in range(n):
        calls: list[str] = []
        run_batch(items, recording_render(calls), state=FakeState(index, n))
        assert calls  # each process gets a share
        seen += calls
    assert sorted(seen) == sorted(i.source.name for i in items)
    assert len(seen) == len(items) == 5


def test_resume_skips_finished_and_redoes_half_written(photos, tmp_path):
    out = tmp_path / "out"
    items = find_inputs(photos, out)
    calls: list[str] = []
    report = run_batch(items, recording_render(calls))
    assert len(report.done) == 5 and not report.failed
    first = {i.output: i.output.read_bytes() for i in items}
    # a half-written output (cut short outside gatys) and a killed writer's temporary file
    items[1].output.write_bytes(first[items[1].output][:40])
    leftover = items[2].output.parent / f".{items[2].output.name}.abc123.tmp"
    leftover.write_bytes(b"partial")
    items[2].output.unlink()
    calls.clear()
    report = run_batch(items, recording_render(calls))
    assert sorted(calls) == sorted([items[1].source.name, items[2].source.name])
    assert len(report.skipped) == 3 and len(report.done) == 2
    assert not leftover.exists()
    assert {i.output: i.output.read_bytes() for i in items} == first  # same seeds, same renders


def test_an_unreadable_photo_is_reported_and_the_rest_go_on(photos, tmp_path, tiny_st):
    (photos / "broken.jpg").write_bytes(b"this is not a jpeg")
    items = find_inputs(photos, tmp_path / "out")
    render = optimization_renderer(tiny_st, make_image(40, 48, seed=2), preset="preview", size=32, steps=2)
    report = run_batch(items, render)
    assert [r.item.source.name for r in report.failed] == ["broken.jpg"]
    assert "broken.jpg" in report.failed[0].error and "\n" not in report.failed[0].error
    assert len(report.done) == 5
    assert "5 done, 0 skipped (already written), 1 failed" in report.summary()
    assert "failed: " in report.summary().splitlines()[1]


def test_split_runs_write_what_one_process_writes(photos, tmp_path, tiny_st):
    render = optimization_renderer(tiny_st, make_image(40, 48, seed=2), preset="paper", size=32, steps=3)
    one = find_inputs(photos, tmp_path / "one")
    run_batch(one, render)
    two = find_inputs(photos, tmp_path / "two")
    for index in range(2):
        run_batch(two, render, state=FakeState(index, 2))
    for a, b in zip(one, two):
        assert np.array_equal(np.asarray(Image.open(a.output)), np.asarray(Image.open(b.output))), a.source


def test_cli_with_a_model(photos, tmp_path, capsys):
    model = tiny_style().save_pretrained(tmp_path / "tiny-style")
    (photos / "broken.png").write_bytes(b"nope")
    out = tmp_path / "out"
    assert main([str(photos), "--model", str(model), "-o", str(out), "--size", "24", "-q"]) == 1
    err = capsys.readouterr().err
    assert "5 done, 0 skipped (already written), 1 failed" in err and "broken.png" in err
    with Image.open(out / "sub" / "deeper" / "d.png") as img:
        assert max(img.size) == 24
    assert main([str(photos), "--model", str(model), "-o", str(out), "--size", "24", "-q"]) == 1
    assert "0 done, 5 skipped" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda p, t: [str(t / "nope"), "--model", "x", "-o", str(t / "o")], "does not exist"),
        (lambda p, t: [str(p), "-o", str(t / "o")], "give either --style"),
        (lambda p, t: [str(t / "empty"), "--style", str(p / "a.png"), "-o", str(t / "o")], "no photos found"),
        (lambda p, t: [str(p), "--style", str(p / "a.png"), "-o", str(p / "a.png")], "must be a folder"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(photos, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    assert main(argv(photos, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gatys: error:") and message in err and "\n" not in err


def test_gatys_batch_dispatches(photos, tmp_path, capsys):
    from gatys.cli import main as gatys_main

    assert gatys_main(["batch", str(photos), "-o", str(tmp_path / "o")]) == 2
    assert "give either --style" in capsys.readouterr().err


@pytest.mark.slow
def test_accelerate_launch_two_processes_split_the_folder(photos, tmp_path):
    """Two real processes (accelerate's torchrun launcher, gloo): every photo once, the summary once."""
    model = tiny_style().save_pretrained(tmp_path / "tiny-style")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(free_port())]  # not torchrun's default 29500, which another run may hold
    cmd += ["-m", "gatys.batch", str(photos), "--model", str(model), "-o", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("gatys batch: 5 done, 0 skipped") == 1
    assert "on 2 process(es)" in r.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png",
        "b.png",
        "e.png",
        "sub/c.png",
        "sub/deeper/d.png",
    ]


def test_items_are_plain_data():
    item = BatchItem(Path("a.png"), Path("o/a.png"), 1)
    assert item.seed == 1

"""The command line: runs, writes atomically, and gives one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT, make_image
from PIL import Image

from gatys.cli import build_parser, main
from gatys.presets import DESCRIPTIVE_FIELDS


@pytest.fixture
def images(tmp_path):
    c, s = tmp_path / "c.png", tmp_path / "s.jpg"
    make_image(48, 40, 1).save(c)
    make_image(40, 48, 2).save(s)
    return c, s


@pytest.fixture(autouse=True)
def weights_env(monkeypatch, tiny_weights_dir):
    monkeypatch.setenv("GATYS_WEIGHTS", str(tiny_weights_dir))


def test_cli_writes_output_and_snapshots(images, tmp_path, capsys):
    c, s = images
    out = tmp_path / "out.png"
    rc = main([str(c), str(s), "-o", str(out), "--size", "32", "--steps", "4", "--save-every", "2", "-q"])
    assert rc == 0
    assert Image.open(out).size == (32, 27)
    assert (tmp_path / "out_step0002.png").is_file()
    err = capsys.readouterr().err
    assert "weights tiny random VGG-16 (tests) on cpu" in err and "wrote" in err and "final loss" in err


def test_cli_options_derived_from_library():
    import dataclasses

    from gatys.presets import Preset

    parser = build_parser()
    flags = {a for action in parser._actions for a in action.option_strings}
    for f in dataclasses.fields(Preset):
        if f.name not in DESCRIPTIVE_FIELDS:
            assert "--" + f.name.replace("_", "-") in flags
    assert {"--preset", "--seed", "--style-weights", "--save-every", "--preserve-colors"} <= flags


def test_cli_multiple_styles_and_options(images, tmp_path):
    c, s = images
    out = tmp_path / "o.jpg"
    rc = main(
        [
            str(c),
            str(s),
            str(c),
            "-o",
            str(out),
            "--size",
            "32",
            "--steps",
            "2",
            "--style-weights",
            "2,1",
            "--preserve-colors",
            "--init",
            "content",
            "--optimizer",
            "adam",
            "--tv-weight",
            "1",
            "-q",
            "--style-layers",
            "conv1_1,conv2_1",
            "--alpha-beta",
            "1e-4",
            "--seed",
            "5",
        ]
    )
    assert rc == 0 and Image.open(out).size == (32, 27)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style-layers", "conv1_1,conv6_1"], "unknown layer 'conv6_1'"),
        (["--steps", "0"], "steps must be an integer >= 1"),
        (["--style-weights", "1,-1"], "non-negative"),
        (["--alpha-beta", "nan"], "alpha_beta must be a non-negative number"),
        (["--style-layer-weights", "1,1"], "one per layer"),
        (["--init", "/no/such/init.png"], "init image not found"),
    ],
)
def test_cli_bad_settings(images, tmp_path, capsys, extra, message):
    c, s = images
    out = tmp_path / "out.png"
    argv = [str(c), str(s), "-o", str(out), "--size", "32", "-q", *extra]
    if "--style-weights" in extra:
        argv.insert(2, str(s))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gatys: error:") and message in err[0]
    assert not out.exists()


def test_cli_bad_images(tmp_path, images, capsys):
    c, s = images
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    for argv, message in [
        ([str(tmp_path / "bad.jpg"), str(s)], "not an image file"),
        ([str(c), str(tmp_path / "missing.png")], "not found"),
        ([str(tmp_path / "dot.png"), str(s)], "at least 16 px"),
        ([str(tmp_path / "dot.png"), str(s)], "a larger --size"),  # the library's advice, in the CLI's flags
    ]:
        assert main([*argv, "-o", str(out), "--size", "32", "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert out.read_bytes() == b"keep me", "the previous output must not be overwritten"


def test_cli_bad_output_and_weights(images, tmp_path, capsys, monkeypatch):
    c, s = images
    assert main([str(c), str(s), "-o", str(tmp_path / "x.xyz"), "-q"]) == 2
    assert "unknown suffix" in capsys.readouterr().err
    monkeypatch.setenv("GATYS_WEIGHTS", str(tmp_path / "no-weights"))
    assert main([str(c), str(s), "-o", str(tmp_path / "o.png"), "-q"]) == 2
    assert "run 'bash setup.sh'" in capsys.readouterr().err


def test_cli_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["only-one-arg"])
    assert e.value.code == 2


def test_console_script_and_module_entry(images, tmp_path, tiny_weights_dir):
    c, s = images
    out = tmp_path / "m.png"
    env = dict(os.environ, GATYS_WEIGHTS=str(tiny_weights_dir))
    r = subprocess.run(
        [sys.executable, "-m", "gatys", str(c), str(s), "-o", str(out), "--size", "32", "--steps", "2"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert out.is_file()


def test_import_is_light():
    code = (
        "import sys, gatys; bad = [m for m in sys.modules if m.split('.')[0] in ('torchvision', 'gradio')]; print(bad)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

"""Instant styles from the command line and by name: ``gatys PHOTO --model``, ``gatys train``, ``hub.push``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_image
from PIL import Image
from test_feedforward import tiny_style

from gatys.cli import main
from gatys.errors import WeightsError
from gatys.feedforward import FastStyle, builtin_styles


@pytest.fixture
def model_dir(tmp_path):
    return tiny_style().save_pretrained(tmp_path / "tiny-style", style_image=make_image(40, 48, seed=2))


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(64, 48), (37, 53)]):
        p = tmp_path / f"photo{i}.png"
        make_image(w, h, seed=10 + i).save(p)
        paths.append(p)
    return paths


def test_one_photo_with_a_model_writes_its_render(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main([str(photos[0]), "--model", str(model_dir), "-o", str(out), "--size", "40", "-q"]) == 0
    with Image.open(out) as img:
        assert img.size == (40, 30)
    expected = FastStyle.from_pretrained(model_dir, device="cpu").stylize(photos[0], size=40)
    with Image.open(out) as img:
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(expected))
    assert "FastStyle of tiny.png" in capsys.readouterr().err


def test_several_photos_go_to_a_folder(model_dir, photos, tmp_path):
    folder = tmp_path / "renders"  # not there yet: made, as README's `-o renders/` expects
    assert main([*map(str, photos), "--model", str(model_dir), "-o", str(folder), "--preserve-colors"]) == 0
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["photo0-tiny-style.png", "photo1-tiny-style.png"]
    with Image.open(folder / "photo1-tiny-style.png") as img:
        assert img.size == (37, 53)  # the photo's own size without --size


def test_an_unreadable_photo_makes_no_output_folder(model_dir, photos, tmp_path, capsys):
    folder = tmp_path / "renders"
    assert main([str(photos[0]), str(tmp_path / "nope.jpg"), "--model", str(model_dir), "-o", str(folder)]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert not folder.exists()


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d, p, t: [str(p[0]), "--model", str(t), "-o", str(t / "o.png")], "not a FastStyle model folder"),
        (lambda d, p, t: [str(p[0]), "--model", "no-such-style", "-o", str(t / "o.png")], "no model called"),
        (lambda d, p, t: [*map(str, p), "--model", str(d), "-o", str(t / "o.png")], "must be a folder"),
        (lambda d, p, t: [str(t / "nope.jpg"), "--model", str(d), "-o", str(t / "o.png")], "nope.jpg"),
        (lambda d, p, t: [str(p[0]), "-o", str(t / "o.png")], "give at least one style image"),
    ],
)
def test_mistakes_get_one_line_and_status_2(model_dir, photos, tmp_path, capsys, make_args, message):
    assert main(make_args(model_dir, photos, tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


def test_gatys_train_is_the_training_command(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    style = tmp_path / "style.png"
    make_image(32, 32).save(style)
    rc = main(["train", str(style), "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m"), "--steps", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no images" in err.lower() or "empty" in err.lower(), err


def test_models_are_found_by_name(model_dir, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "styles").mkdir(parents=True)
    model_dir.rename(home / "styles" / "tiny-style")
    monkeypatch.setenv("GATYS_HOME", str(home))
    assert "tiny-style" in builtin_styles()
    fs = FastStyle.from_pretrained("tiny-style", device="cpu")
    assert fs.config.style_name == "tiny.png"
    with pytest.raises(WeightsError, match="no model called 'tiny-stile'.*tiny-style"):
        FastStyle.from_pretrained("tiny-stile")


def test_hub_push_publishes_a_model_folder(model_dir, tmp_path, capsys):
    from hub.push import main as push_main

    (model_dir / "training").mkdir()
    rc = push_main([str(model_dir), "--repo-id", "someone/tiny-style", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0, out
    for name in ("README.md", "config.json", "model.safetensors", "style.jpg"):
        assert f"someone/tiny-style@main:{name}" in out
    assert "not uploaded: training" in out


#: The project's own models, committed under hub/styles/ (DEVELOPERS.md: fp16, at most 4 MB, trained by
#: gatys' own command in at most 60 minutes, the card stating command, wall time, steps and final losses).
COMMITTED = ("shipwreck", "starry-night")


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_models_are_small_fp16_documented_and_load_by_name(name, monkeypatch, tmp_path):
    from safetensors import safe_open

    monkeypatch.setenv("GATYS_HOME", str(tmp_path))  # only the checkout's hub/styles can answer
    folder = Path(__file__).resolve().parents[1] / "hub" / "styles" / name
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 4 * 1024 * 1024
    with safe_open(str(weights), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118 (not a dict)
    fs = FastStyle.from_pretrained(name, device="cpu")
    training = fs.config.training
    assert training["command"].startswith("gatys train ") and 0 < training["wall_time_s"] <= 3600
    assert training["steps"] == fs.config.recipe["steps"] and set(training["final_losses"]) >= {"total", "style"}
    card = (folder / "README.md").read_text()
    assert training["command"] in card and f"| steps | {training['steps']} |" in card
    out = fs.stylize(torch.rand(1, 3, 30, 41))
    assert out.size == (41, 30)

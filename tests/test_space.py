"""The Hugging Face Space: its README front matter, its pinned requirements, the folder that
``python -m hub.push_space`` assembles and uploads, and that folder booting in a clean virtualenv."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest
from app_server import serve, tiny_weights
from helpers import ROOT, SHARED_IMAGES, make_image
from packaging.version import Version

from hub import push_space

#: The colours the Hub accepts for colorFrom/colorTo.
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def front_matter(path) -> dict:
    import yaml

    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} must start with YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def pins(path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned with =="
            out[name.lower().replace("_", "-")] = version
    return out


def test_space_readme_front_matter():
    import gradio

    from gatys.weights import DEFAULT_HUB_REPO

    meta = front_matter(ROOT / "spaces" / "README.md")
    assert {"title", "emoji", "colorFrom", "colorTo", "license", "short_description"} <= meta.keys()
    assert meta["colorFrom"] in SPACE_COLORS and meta["colorTo"] in SPACE_COLORS
    assert len(meta["short_description"]) <= 60
    assert (meta["sdk"], meta["app_file"], meta["python_version"]) == ("gradio", "app.py", "3.11")
    # The SDK version is the gradio this app is tested with.
    assert meta["sdk_version"] == gradio.__version__ == pins(ROOT / "requirements.txt")["gradio"]
    # The Space has no offline weights: it uses the Hub default, downloaded when the Space is built.
    assert meta["models"] == [DEFAULT_HUB_REPO]
    assert meta["preload_from_hub"] == [f"{DEFAULT_HUB_REPO} config.json,model.safetensors"]


def test_space_requirements_are_the_tested_pins():
    space, tested = pins(ROOT / "spaces" / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert space["torch"] == "2.13.0"
    assert "gradio" not in space  # the Space's SDK provides it, at sdk_version
    for name, version in space.items():
        assert tested.get(name) == version, f"{name}: Space pins {version}, requirements.txt {tested.get(name)}"
        installed = Version(importlib.metadata.version(name)).public  # 2.13.0+cpu is a 2.13.0
        assert installed == version, f"{name}: pinned {version}, installed here {installed}"


def test_dry_run_writes_and_lists_the_space_folder(tmp_path, capsys):
    out = tmp_path / "space"
    assert push_space.main(["--repo-id", "someone/gatys-demo", "--dry-run", "--out", str(out)]) == 0
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"app.py", "README.md", "requirements.txt", "gatys/__init__.py", "gatys/transfer.py"} <= files
    assert not any("__pycache__" in f or f.startswith("tests/") for f in files)
    # Of hub/, only the instant styles: each model's three files.
    shipped = {f for f in files if f.startswith("hub/")}
    committed = {str(p.relative_to(ROOT)) for p in (ROOT / "hub" / "styles").glob("*/*") if p.is_file()}
    assert shipped == committed and any(f.endswith("model.safetensors") for f in shipped)
    assert {f for f in files if f.startswith("gatys/")} == {f"gatys/{p.name}" for p in (ROOT / "gatys").glob("*.py")}
    assert (out / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()
    assert (out / "README.md").read_bytes() == (ROOT / "spaces" / "README.md").read_bytes()
    examples = {f for f in files if f.startswith("examples/")}
    if SHARED_IMAGES.is_dir():
        assert examples == {"examples/tubingen.jpg", "examples/starry_night.jpg", "examples/shipwreck.jpg"}
    printed = capsys.readouterr().out
    assert "dry run: nothing uploaded" in printed and all(f in printed for f in files)

    # A second build replaces the first; a folder that is not a build is left alone.
    assert push_space.main(["--repo-id", "someone/gatys-demo", "--dry-run", "--out", str(out), "--no-examples"]) == 0
    assert not (out / "examples").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert push_space.main(["--repo-id", "someone/gatys-demo", "--dry-run", "--out", str(other)]) == 2
    assert (other / "keep.txt").read_text() == "mine"
    assert "not empty" in capsys.readouterr().err


def test_upload_without_a_token_is_a_one_line_error(monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert push_space.main(["--repo-id", "someone/gatys-demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hf auth login" in err and "HF_TOKEN" in err
    assert push_space.main(["--repo-id", "no namespace!", "--dry-run"]) == 2


def test_upload_creates_the_space_and_uploads_the_folder(monkeypatch, capsys):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))

        def upload_folder(self, *, folder_path, repo_id, **kw):
            from pathlib import Path

            names = {str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file()}
            calls.append(("upload_folder", repo_id, names, kw))
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/spaces/{repo_id}/commit/abc"})()

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test_token")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert push_space.main(["--repo-id", "someone/gatys-demo"]) == 0
    assert calls[0] == ("token", "hf_test_token")
    assert calls[1] == (
        "create_repo",
        "someone/gatys-demo",
        {"repo_type": "space", "space_sdk": "gradio", "private": False, "exist_ok": True},
    )
    _, repo, names, kw = calls[2]
    assert repo == "someone/gatys-demo" and kw["repo_type"] == "space"
    assert {"app.py", "README.md", "requirements.txt", "gatys/transfer.py"} <= names
    out = capsys.readouterr().out
    assert "pushed: https://huggingface.co/spaces/someone/gatys-demo/commit/abc" in out
    assert "hf_test_token" not in out


@pytest.mark.slow
def test_space_folder_boots_in_a_clean_virtualenv(tmp_path):
    """The dry-run folder installs from its own requirements into a fresh virtualenv and serves the app.

    Offline: the fresh virtualenv sees the tested packages the way ``--system-site-packages`` would show a
    base interpreter's (a .pth file), so ``pip install --no-index`` must find every pin already satisfied
    (nothing downloaded, torch exactly 2.13.0). The gatys package comes from the Space folder only.
    """
    space = tmp_path / "space"
    assert push_space.main(["--repo-id", "someone/gatys-demo", "--dry-run", "--out", str(space)]) == 0
    venv = tmp_path / "venv"
    # --without-pip: the venv holds nothing of its own; pip runs from here with --python pointed at it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Only the tested packages' folder, not its .pth files: the project's editable gatys stays out of sight.
    (Path(site) / "tested-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sdk_version = front_matter(space / "README.md")["sdk_version"]
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-index",
            "-r",
            "requirements.txt",
            f"gradio=={sdk_version}",
        ],
        cwd=space,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert "Requirement already satisfied: torch==2.13.0" in pip.stdout
    where = subprocess.run(
        [python, "-c", "import gatys; print(gatys.__file__)"], cwd=space, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert where.startswith(str(space)), where

    weights = tiny_weights(tmp_path / "weights")
    with serve(weights, tmp_path / "space.log", cwd=space, python=python) as (url, _):
        with urllib.request.urlopen(url + "config", timeout=30) as r:
            config = json.dumps(json.load(r), ensure_ascii=False)
        assert "Neural style transfer" in config and "tiny random VGG-16 (tests)" in config
        if SHARED_IMAGES.is_dir():
            assert "Tübingen × The Starry Night" in config  # examples/ shipped with the Space
        from gradio_client import Client, handle_file

        make_image(64, 48, 1).save(tmp_path / "c.png")
        make_image(48, 64, 2).save(tmp_path / "s.png")
        gallery, status, final = Client(url, verbose=False).predict(
            content=handle_file(tmp_path / "c.png"),
            style=handle_file(tmp_path / "s.png"),
            size=64,
            steps=3,
            api_name="/stylize",
        )
        assert status.startswith("**Done**") and final.endswith(".png")

"""Publishing: the dry run, the missing-token message, the calls made to HfApi, and the model card's YAML."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def no_token(tmp_path, monkeypatch):
    """No token anywhere: not in the environment, not in the token file."""
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf" / "stored_tokens"), raising=False)


class RecordingApi:
    """Stands in for HfApi: records calls, touches no network."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, token=None, **kwargs):
        RecordingApi.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        RecordingApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id, **kwargs):
        RecordingApi.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        RecordingApi.calls.append(("upload_folder", kwargs))
        return type("CommitInfo", (), {"commit_url": f"https://hub.test/{kwargs['repo_id']}/commit/abc"})()


@pytest.fixture
def recording_api(monkeypatch):
    import huggingface_hub

    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi


def test_dry_run_lists_files_and_target_without_a_token(tiny_weights_dir, no_token, recording_api, capsys):
    from hub.push import main

    (tiny_weights_dir / "notes.txt").write_text("local only")
    rc = main([str(tiny_weights_dir), "--repo-id", "someone/vgg-tiny", "--revision", "v1", "--private", "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "dry run" in out and "someone/vgg-tiny (model repo, private if created), branch v1" in out
    for name in ("README.md", "config.json", "model.safetensors"):
        assert f"->  someone/vgg-tiny@v1:{name}" in out
    assert "not uploaded: notes.txt" in out
    assert "YOUR-NAME/REPO" in out  # the card's example still needs the repo name: said, not hidden
    assert recording_api.calls == []  # no HfApi at all


def test_no_token_fails_with_one_line_saying_how_to_log_in(tiny_weights_dir, tmp_path):
    """Through `python -m hub.push`, with HF_HOME empty and no HF_TOKEN."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "hub.push", str(tiny_weights_dir), "--repo-id", "someone/vgg-tiny"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: no Hugging Face token found")
    assert "hf auth login" in r.stderr and "HF_TOKEN" in r.stderr


def test_push_creates_repo_branch_and_uploads_only_the_weights_files(
    tiny_weights_dir, recording_api, monkeypatch, capsys
):
    from hub.push import main

    secret = "hf_" + "s3cr3t" * 6
    monkeypatch.setenv("HF_TOKEN", secret)
    (tiny_weights_dir / "scratch.pth").write_bytes(b"never uploaded")
    rc = main([str(tiny_weights_dir), "--repo-id", "someone/vgg-tiny", "--private", "--revision", "v1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    names = [name for name, _ in recording_api.calls]
    assert names == ["init", "create_repo", "create_branch", "upload_folder"]
    calls = dict(recording_api.calls)
    assert calls["init"]["token"] == secret
    assert calls["create_repo"] == {
        "repo_id": "someone/vgg-tiny",
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    assert calls["create_branch"]["branch"] == "v1" and calls["create_branch"]["exist_ok"] is True
    up = calls["upload_folder"]
    assert up["repo_id"] == "someone/vgg-tiny" and up["revision"] == "v1"
    assert sorted(up["allow_patterns"]) == ["README.md", "config.json", "model.safetensors"]
    assert "pushed: https://hub.test/someone/vgg-tiny/commit/abc" in out
    assert secret not in out + err


def test_push_refuses_broken_folders(tmp_path, tiny_weights_dir, no_token, recording_api, capsys):
    from hub.push import main

    (tmp_path / "empty").mkdir()
    f = tiny_weights_dir / "model.safetensors"
    f.write_bytes(f.read_bytes()[:500])
    for folder, message in [
        (tmp_path / "absent", "is not a folder"),
        (tmp_path / "empty", "has no README.md, config.json, model.safetensors"),
        (tiny_weights_dir, "corrupt or truncated"),
    ]:
        assert main([str(folder), "--repo-id", "someone/x", "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main([str(tiny_weights_dir), "--repo-id", "no namespace", "--dry-run"]) == 2
    assert "invalid --repo-id" in capsys.readouterr().err
    assert recording_api.calls == []


# -- the model card ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["torchvision-vgg19", "torchvision-vgg16", "caffe-vgg19", "normalised-vgg19"])
def test_model_card_yaml_parses_with_huggingface_hub(source):
    from huggingface_hub import ModelCard

    from hub.card import model_card
    from hub.convert import SOURCES

    src = SOURCES[source]
    config = src.config("ab" * 32, src.url, "")
    card = ModelCard(model_card(config, repo_id="someone/vgg", dtype="fp16", command=f"python -m hub.convert {source}"))
    data = card.data.to_dict()
    assert data["library_name"] == "gatys" and data["pipeline_tag"] == "image-to-image"
    assert data["license"] == {"torchvision-vgg19": "bsd-3-clause", "torchvision-vgg16": "bsd-3-clause"}.get(
        source, "cc-by-4.0"
    )
    assert {"style-transfer", "vgg", config.architecture} <= set(data["tags"])
    text = card.text
    assert 'StyleTransfer.from_pretrained("someone/vgg")' in text and "from gatys import StyleTransfer" in text
    assert "simonyan2014very" in text and "gatys2015neural" in text
    assert config.source_sha256 in text and src.url in text and f"python -m hub.convert {source}" in text
    assert "float16" in text
    if config.architecture == "vgg16":
        assert "VGG-19" not in text.split("\n## ")[0]  # title and summary name VGG-16 only
    if source == "normalised-vgg19":
        assert "gatys2016image" in text


def test_converted_folder_card_parses(tiny_weights_dir):
    from huggingface_hub import ModelCard

    card = ModelCard.load(tiny_weights_dir / "README.md")
    assert card.data.license == "other" and card.data.library_name == "gatys"  # tiny test config has no licence

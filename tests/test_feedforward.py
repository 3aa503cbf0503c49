"""gatys.feedforward: the transformation network's shapes, FastStyle's save/load round trips and strict loading."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import make_image
from safetensors.torch import load_file, save_file

from gatys.errors import WeightsError
from gatys.feedforward import FastStyle, FastStyleConfig, NetConfig, TransformNet

TINY = NetConfig(width=0.125, residual_blocks=1)


def tiny_style(seed: int = 0) -> FastStyle:
    torch.manual_seed(seed)
    net = TransformNet(TINY)
    with torch.no_grad():  # move the affine norms off their identity init so a wrong load would show
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = FastStyleConfig(net=TINY, style_sha256="0" * 64, style_name="tiny.png", recipe={"size": 32})
    return FastStyle(net, config, device="cpu")


def folder_files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("hw", [(37, 53), (16, 17), (64, 64), (5, 9)])
def test_output_has_the_input_shape_in_the_image_range(hw):
    net = TransformNet(TINY).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *hw))
    assert y.shape == (2, 3, *hw)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_paper_widths_and_blocks():
    net = TransformNet()
    assert net.config.channels == (32, 64, 128) and len(net.residuals) == 5
    assert net.encoder[0][1].kernel_size == (9, 9) and net.decoder[-1][1].kernel_size == (9, 9)
    assert [m[1].stride for m in net.encoder[1:]] == [(2, 2), (2, 2)]


def test_save_then_load_from_a_folder(tmp_path):
    fs = tiny_style()
    out = fs.save_pretrained(tmp_path / "m", style_image=make_image(40, 48, seed=2), sample=make_image(seed=3))
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors",
        "config.json",
        "README.md",
        "style.jpg",
        "sample.jpg",
    }
    assert all(t.dtype == torch.float16 for t in load_file(out / "model.safetensors").values())
    card = (out / "README.md").read_text()
    assert "library_name: gatys" in card and "pipeline_tag: image-to-image" in card and "![style](style.jpg)" in card
    loaded = FastStyle.from_pretrained(out, device="cpu")
    assert loaded.config == fs.config
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert torch.allclose(loaded.net(x), fs.net(x), atol=2e-3)  # fp16 storage
    img = make_image(53, 37, seed=4)
    single, many = loaded.stylize(img), loaded.stylize([img, img], size=32, preserve_colors=True)
    assert single.size == (53, 37) and [m.size for m in many] == [(32, 22), (32, 22)]


def test_save_then_load_through_the_hub(hub, tmp_path):
    fs = tiny_style()
    folder = fs.save_pretrained(tmp_path / "m", dtype=torch.float32)
    sha = hub.commit("gatys/tiny-style", folder_files(folder), tag="v1")
    loaded = FastStyle.from_pretrained("gatys/tiny-style", revision="v1", cache_dir=tmp_path / "cache", device="cpu")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.net(x), fs.net(x))
    assert any(f"/resolve/{sha}/model.safetensors" in p for p in hub.resolves())
    with pytest.raises(WeightsError, match="not found") as e:
        FastStyle.from_pretrained("gatys/absent", cache_dir=tmp_path / "cache")
    assert "\n" not in str(e.value)


def test_strict_loading_rejects_a_wrong_key_and_a_wrong_shape(tmp_path):
    folder = tiny_style().save_pretrained(tmp_path / "m")
    state = load_file(folder / "model.safetensors")
    key = next(iter(state))
    renamed = {("x" + k if k == key else k): v for k, v in state.items()}
    save_file(renamed, str(folder / "model.safetensors"))
    with pytest.raises(WeightsError, match="missing .*unexpected") as e:
        FastStyle.from_pretrained(folder, device="cpu")
    assert "\n" not in str(e.value)
    config = json.loads((folder / "config.json").read_text())
    config["architecture"]["width"] = 0.25
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="has shape"):
        FastStyle.from_pretrained(folder, device="cpu")


def test_a_folder_that_is_no_model_is_refused_in_one_line(tmp_path, tiny_weights_dir):
    (tmp_path / "empty").mkdir()
    cases = {tmp_path / "empty": "not a FastStyle model folder", tmp_path / "absent": "not found"}
    cases[tiny_weights_dir] = "VGG weights"
    for folder, message in cases.items():
        with pytest.raises(WeightsError, match=message) as e:
            FastStyle.from_pretrained(folder)
        assert "\n" not in str(e.value)

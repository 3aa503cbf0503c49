"""The network: layer names, truncation, input convention, pooling, strict loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_config

from gatys.errors import ConfigError, WeightsError
from gatys.vgg import VGGFeatures, conv_layer_names, layer_names, torchvision_key_map


def test_layer_names():
    assert conv_layer_names("vgg19")[-1] == "conv5_4" and len(conv_layer_names("vgg19")) == 16
    assert conv_layer_names("vgg16")[-1] == "conv5_3" and len(conv_layer_names("vgg16")) == 13
    assert layer_names("vgg16")[:3] == ["conv1_1", "conv1_2", "pool1"]


def test_torchvision_key_map_indices():
    m = torchvision_key_map("vgg19")
    assert m["features.0.weight"] == "conv1_1.weight"
    assert m["features.21.weight"] == "conv4_2.weight"  # the paper's content layer
    assert m["features.34.bias"] == "conv5_4.bias"
    m16 = torchvision_key_map("vgg16")
    assert m16["features.19.weight"] == "conv4_2.weight" and m16["features.28.weight"] == "conv5_3.weight"


def test_forward_returns_requested_features_with_shapes(tiny_net):
    x = torch.rand(1, 3, 32, 48)
    out = tiny_net(x, ["conv1_1", "relu2_1", "conv4_2", "pool5"])
    assert set(out) == {"conv1_1", "conv2_1", "conv4_2", "pool5"}
    assert out["conv1_1"].shape == (1, 8, 32, 48)
    assert out["conv2_1"].shape == (1, 16, 16, 24)
    assert out["conv4_2"].shape == (1, 32, 4, 6)
    assert out["pool5"].shape == (1, 32, 1, 1)
    assert (out["conv1_1"] >= 0).all(), "features are rectified responses, as in the paper"


def test_forward_stops_at_deepest_requested_layer(tiny_net, monkeypatch):
    called = []
    for name in tiny_net.conv_names:
        conv = getattr(tiny_net, name)
        monkeypatch.setattr(
            conv,
            "forward",
            (lambda c, n: lambda x: called.append(n) or F.conv2d(x, c.weight, c.bias, padding=1))(conv, name),
        )
    tiny_net(torch.rand(1, 3, 32, 32), ["conv2_1"])
    assert called == ["conv1_1", "conv1_2", "conv2_1"]


def test_unknown_layer_names_valid_ones(tiny_net):
    with pytest.raises(ConfigError, match=r"unknown layer 'conv6_1'.*valid: conv1_1, conv1_2, pool1"):
        tiny_net(torch.rand(1, 3, 32, 32), ["conv6_1"])
    with pytest.raises(ConfigError, match="conv5_4"):
        tiny_net.check_layers(["conv5_4"])  # VGG-16 has no conv5_4


def test_parameters_are_frozen(tiny_net):
    assert all(not p.requires_grad for p in tiny_net.parameters())


def test_input_convention_bgr_caffe():
    net = VGGFeatures.random(
        tiny_config(color_order="BGR", input_range=255.0, mean=(10.0, 20.0, 30.0), std=(1.0, 1.0, 1.0))
    )
    x = torch.rand(1, 3, 4, 4)
    y = net.preprocess(x)
    assert torch.allclose(y[:, 0], x[:, 2] * 255 - 10, atol=1e-4)  # B first
    assert torch.allclose(y[:, 2], x[:, 0] * 255 - 30, atol=1e-4)


def test_input_convention_torchvision():
    net = VGGFeatures.random(tiny_config())
    x = torch.rand(1, 3, 4, 4)
    y = net.preprocess(x)
    assert torch.allclose(y[:, 1], (x[:, 1] - 0.456) / 0.224, atol=1e-5)


def test_avg_and_max_pooling_differ(tiny_net):
    x = torch.rand(1, 3, 32, 32)
    avg = tiny_net(x, ["conv2_1"], pooling="avg")["conv2_1"]
    mx = tiny_net(x, ["conv2_1"], pooling="max")["conv2_1"]
    assert not torch.allclose(avg, mx)
    with pytest.raises(ConfigError, match="pooling"):
        VGGFeatures(tiny_config(), pooling="median")


def test_strict_loading_reports_missing_and_shape(tiny_net):
    state = tiny_net.state_dict()
    net = VGGFeatures(tiny_config())
    bad = dict(state)
    bad.pop("conv3_2.weight")
    with pytest.raises(WeightsError, match="missing conv3_2.weight"):
        net.load_named_state_dict(bad)
    bad = dict(state)
    bad["conv1_1.weight"] = torch.zeros(8, 3, 5, 5)
    with pytest.raises(WeightsError, match=r"conv1_1.weight has shape \(8, 3, 5, 5\)"):
        net.load_named_state_dict(bad)
    bad = dict(state)
    bad["classifier.0.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="unexpected classifier.0.weight"):
        net.load_named_state_dict(bad)


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown architecture"):
        tiny_config(architecture="resnet50")
    with pytest.raises(ConfigError, match="color_order"):
        tiny_config(color_order="GBR")

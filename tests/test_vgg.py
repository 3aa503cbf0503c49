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


# -- padding and blur-pool options (issue 12) ----------------------------------------------------------------


def _border_gradient(net, image, layer="conv1_1"):
    """|∂ Σ F_layer / ∂x| summed over the outermost pixel ring, and the largest interior gradient."""
    x = image.clone().requires_grad_(True)
    net(x, [layer])[layer].sum().backward()
    g = x.grad.abs().sum(1)[0]
    ring = torch.cat([g[0], g[-1], g[:, 0], g[:, -1]])
    return ring, g[1:-1, 1:-1]


def test_padding_default_is_zeros_as_in_the_paper(tiny_net):
    assert tiny_net.padding == "zeros" and all(c.padding_mode == "zeros" for c in tiny_net.convs())


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_constant_image_has_constant_features_and_no_border_gradient_without_zero_padding(mode):
    net = VGGFeatures.random(tiny_config())
    net.set_padding(mode)
    x = torch.full((1, 3, 16, 16), 0.3)
    f = net(x, ["conv1_1", "conv2_1"])
    for feat in f.values():  # every position sees the same patch: the edges look like the interior
        assert torch.allclose(feat, feat[..., :1, :1].expand_as(feat), atol=1e-5)
    # The style loss of a constant image against its own Gram matrix has zero gradient everywhere.
    from gatys.losses import gram_matrix, style_layer_loss

    target = gram_matrix(net(torch.full((1, 3, 16, 16), 0.3), ["conv2_1"])["conv2_1"])
    xr = x.clone().requires_grad_(True)
    style_layer_loss(net(xr, ["conv2_1"])["conv2_1"], target).backward()
    assert xr.grad.abs().max() < 1e-8


def test_zero_padding_makes_the_border_of_a_constant_image_differ(tiny_net):
    x = torch.full((1, 3, 16, 16), 0.3)
    f = tiny_net(x, ["conv1_1"])["conv1_1"]
    assert not torch.allclose(f[..., 0, :], f[..., 8, :], atol=1e-4)  # the zero pad is a step at the edge
    tiny_net.set_padding("replicate")
    f = tiny_net(x, ["conv1_1"])["conv1_1"]
    assert torch.allclose(f[..., 0, :], f[..., 8, :], atol=1e-5)


def test_padding_constructor_and_unknown_mode():
    net = VGGFeatures(tiny_config(), padding="reflect")
    assert net.padding == "reflect" and net.conv3_1.padding_mode == "reflect"
    with pytest.raises(ConfigError, match="padding must be one of zeros, replicate, reflect"):
        net.set_padding("circular")


def test_blur_pool_keeps_shapes_and_passes_constants():
    net = VGGFeatures.random(tiny_config())
    for h, w in ((32, 48), (33, 47)):
        x = torch.rand(1, 3, h, w)
        a, b = net(x, ["pool1", "pool3"]), net(x, ["pool1", "pool3"], pooling="blur")
        assert a["pool1"].shape == b["pool1"].shape and a["pool3"].shape == b["pool3"].shape
    c = torch.full((1, 4, 8, 8), 2.0).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(net._pool(c, "blur"), torch.full((1, 4, 4, 4), 2.0))


def test_blur_pool_attenuates_what_plain_pooling_aliases():
    net = VGGFeatures.random(tiny_config())
    # A period-4 stripe comes out of 2x2 average pooling as a full-contrast period-2 stripe (at the
    # Nyquist rate of the pooled lattice); the [1 3 3 1]/8 blur-pool halves it.
    stripe = torch.tensor([1.0, 1.0, 0.0, 0.0] * 4).expand(1, 4, 16, 16).contiguous()
    plain = F.avg_pool2d(stripe, 2, 2)[..., 1:-1]
    blurred = net._pool(stripe, "blur")[..., 1:-1]
    assert plain.max() - plain.min() == pytest.approx(1.0)
    assert blurred.max() - blurred.min() == pytest.approx(0.5)

"""The peer baseline: the approach of PyTorch's official "Neural Transfer Using PyTorch" tutorial.

https://pytorch.org/tutorials/advanced/neural_style_tutorial.html (Jacq & Herrmann). Kept faithful to the
code people copy: a ``Normalization`` module first, the CNN's children copied one by one into a new
``nn.Sequential`` with ``ContentLoss`` / ``StyleLoss`` modules inserted after the chosen layers, the ReLUs
replaced by out-of-place ones, the model trimmed after the last loss module, ``F.mse_loss`` losses with the
tutorial's Gram normalisation and weights (style 1e6, content 1), L-BFGS with its defaults (``max_iter=20``
evaluations per ``.step``) and the image clamped inside the closure. Default memory format, fp32.

Configured like gatys for a fair comparison, and only where the tutorial leaves a choice open:

* the same network and weights (the CNN passed in is built from gatys' own ``VGGFeatures`` in
  torchvision's ``features`` layout), with the weights' input convention in ``Normalization``;
* the same pooling as gatys' run (average pooling, the paper's; the tutorial's torchvision VGG has max);
* losses on the same layers. The tutorial puts losses after ``conv_i`` (before the ReLU); gatys' ``convX_Y``
  are rectified responses, so they map to the tutorial's ``relu_i`` names (its loop accepts any layer name).

Used only by ``benchmarks.speed``; nothing here is part of the library.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gatys.vgg import VGGFeatures, conv_layer_names, layer_names

# --- the tutorial's modules, as published ----------------------------------------------------------------


class ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor):
        super().__init__()
        # "we 'detach' the target content from the tree used to dynamically compute the gradient"
        self.target = target.detach()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input: torch.Tensor) -> torch.Tensor:
    a, b, c, d = input.size()  # a=batch size(=1), b=number of feature maps, (c,d)=dimensions of a f. map
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature: torch.Tensor):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


class Normalization(nn.Module):
    """The tutorial's ``(img - mean) / std``, plus the weights' colour order and value range."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], bgr: bool, input_range: float):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean).view(-1, 1, 1))  # buffers: .to(device) moves them
        self.register_buffer("std", torch.as_tensor(std).view(-1, 1, 1))
        self.bgr = bgr
        self.input_range = input_range

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            img = img.flip(1)
        return (img * self.input_range - self.mean) / self.std


# --- the CNN the tutorial is given, and its layer names ----------------------------------------------------


def features_sequential(net: VGGFeatures, pooling: str = "avg") -> nn.Sequential:
    """gatys' network as torchvision's ``vgg.features``: Conv2d, ReLU(inplace=True), …, pool after each block."""
    layers: list[nn.Module] = []
    for name in layer_names(net.config.architecture):
        if name.startswith("pool"):
            layers.append(nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2))
            continue
        src = net._modules[name]
        conv = nn.Conv2d(src.in_channels, src.out_channels, 3, padding=1)
        conv.load_state_dict(src.state_dict())
        layers += [conv, nn.ReLU(inplace=True)]
    return nn.Sequential(*layers).eval()


def tutorial_name(net: VGGFeatures, layer: str) -> str:
    """gatys' rectified ``convX_Y`` -> the tutorial's ``relu_i`` (``poolX`` -> ``pool_i``)."""
    layer = net.canonical(layer)
    convs = conv_layer_names(net.config.architecture)
    if layer.startswith("pool"):
        block = int(layer[4:])
        return f"pool_{sum(1 for c in convs if int(c[4:].split('_')[0]) <= block)}"
    return f"relu_{convs.index(layer) + 1}"


# --- the tutorial's model builder and loop ----------------------------------------------------------------


def get_style_model_and_losses(cnn, normalization, style_img, content_img, content_layers, style_layers):
    # The tutorial builds Normalization(mean, std) here; the caller builds it, as it also knows the weights'
    # colour order and value range.
    content_losses = []
    style_losses = []
    model = nn.Sequential(normalization)
    i = 0  # increment every time we see a conv
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu_{i}"
            # The in-place version doesn't play very nicely with the ContentLoss and StyleLoss we insert below.
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            name = f"pool_{i}"
        elif isinstance(layer, nn.BatchNorm2d):
            name = f"bn_{i}"
        else:
            raise RuntimeError(f"Unrecognized layer: {layer.__class__.__name__}")
        model.add_module(name, layer)
        if name in content_layers:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module(f"content_loss_{i}", content_loss)
            content_losses.append(content_loss)
        if name in style_layers:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module(f"style_loss_{i}", style_loss)
            style_losses.append(style_loss)
    # now we trim off the layers after the last content and style losses
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], (ContentLoss, StyleLoss)):
            break
    model = model[: (i + 1)]
    return model, style_losses, content_losses


def run_style_transfer(
    cnn,
    normalization: Normalization,
    content_img,
    style_img,
    input_img,
    content_layers,
    style_layers,
    num_steps=300,
    style_weight=1000000,
    content_weight=1,
    on_eval: Callable[[int, float], None] | None = None,
):
    """The tutorial's loop; ``on_eval(n, loss)`` is called after every closure (one forward + backward)."""
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, normalization, style_img, content_img, content_layers, style_layers
    )
    # We want to optimize the input and not the model parameters so we update all the requires_grad fields
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.LBFGS([input_img])
    run = [0]
    while run[0] <= num_steps:

        def closure():
            # correct the values of updated input image
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0
            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss
            style_score *= style_weight
            content_score *= content_weight
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            if on_eval is not None:
                on_eval(run[0], loss.item())
            return style_score + content_score

        optimizer.step(closure)
    # a last correction...
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img


class _Enough(Exception):
    pass


def time_steps(
    net: VGGFeatures,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    steps: int,
    pooling: str = "avg",
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds of each of the first ``steps`` closure evaluations (steps) of the tutorial's loop.

    ``content`` and ``style`` are RGB images in [0, 1] of the same size, on the device the run should use.
    The first duration includes building the model and the targets; callers drop it. The loop is stopped
    after ``steps`` evaluations (the tutorial's own loop would finish its 20-evaluation L-BFGS ``.step``).
    """
    cfg = net.config
    device = content.device
    cnn = features_sequential(net, pooling).to(device)
    gen = torch.Generator().manual_seed(seed)
    # The tutorial starts from the content image or white noise; gatys' paper preset starts from noise.
    input_img = torch.rand(content.shape, generator=gen).to(device)
    stamps = [clock()]

    def on_eval(n: int, _loss: float) -> None:
        stamps.append(clock())
        if n >= steps:
            raise _Enough

    with contextlib.suppress(_Enough):
        run_style_transfer(
            cnn,
            Normalization(cfg.mean, cfg.std, cfg.color_order == "BGR", cfg.input_range).to(device),
            content,
            style,
            input_img,
            [tutorial_name(net, n) for n in content_layers],
            [tutorial_name(net, n) for n in style_layers],
            num_steps=steps,
            on_eval=on_eval,
        )
    return [b - a for a, b in zip(stamps, stamps[1:])]

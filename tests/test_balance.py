"""Style-layer balance (issue 12): ``style_balance="gradient"`` gives each layer its stated share of the
style gradient at the start, keeps the total, and leaves the paper's settings alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gatys import PRESETS
from gatys import image as im
from gatys._optimize import Targets, balance_style_weights, build_targets, style_gradient_norms
from gatys.errors import ConfigError


def _targets(tiny_net, content_img, style_img, **changes) -> tuple[torch.Tensor, Targets]:
    settings = dataclasses.replace(PRESETS["paper"], **changes)
    content = im.to_tensor(content_img)
    style = im.to_tensor(style_img)
    return content, build_targets(tiny_net, settings, content, [style], [1.0])


@pytest.mark.parametrize("shares", [None, (1.0, 1.0, 2.0, 4.0, 8.0)])
def test_balanced_weights_give_each_layer_its_share_of_the_start_gradient(tiny_net, content_img, style_img, shares):
    x, t = _targets(tiny_net, content_img, style_img, style_layer_weights=shares)
    plain = style_gradient_norms(tiny_net, x, t.grams, t.pooling)
    raw_split = {n: t.style_weights[n] * v for n, v in plain.items()}
    assert max(raw_split.values()) / min(raw_split.values()) > 2  # unbalanced to begin with
    balanced = balance_style_weights(tiny_net, x, t)
    contributions = {n: balanced[n] * plain[n] for n in plain}
    total = sum(contributions.values())
    stated = {n: w / sum(t.style_weights.values()) for n, w in t.style_weights.items()}
    for n in plain:
        assert contributions[n] / total == pytest.approx(stated[n], rel=1e-5)
    assert total == pytest.approx(sum(raw_split.values()), rel=1e-5)  # the sum stays: α/β keeps its meaning


def test_balance_is_applied_per_run_and_changes_the_result(tiny_st, content_img, style_img):
    plain = tiny_st.stylize(content_img, style_img, size=32, steps=5, init="content", seed=0)
    balanced = tiny_st.stylize(
        content_img, style_img, size=32, steps=5, init="content", seed=0, style_balance="gradient"
    )
    a, b = (torch.as_tensor(im.to_tensor(o.image)) for o in (plain, balanced))
    assert not torch.equal(a, b)
    assert balanced.final_losses["loss"] < balanced.losses[0].loss


def test_paper_stays_unbalanced_and_bad_values_are_refused():
    assert PRESETS["paper"].style_balance == "none" and PRESETS["paper-1e-4"].style_balance == "none"
    assert all(p.style_balance == "none" for name, p in PRESETS.items() if name.startswith("fig3-"))
    with pytest.raises(ConfigError, match="style_balance must be one of none, gradient"):
        PRESETS["paper"].with_overrides(style_balance="equal")


# -- the Fourier parameterisation ------------------------------------------------------------------------------


def test_fourier_image_round_trips():
    from gatys._optimize import FourierImage

    x = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(FourierImage(x).image(), x, atol=1e-5)


def test_fourier_steps_damp_the_period_2_lattice():
    """A gradient step on the 1/f-scaled coefficients moves the highest frequencies far less than the lowest."""
    from gatys._optimize import FourierImage

    x = torch.full((1, 1, 64, 64), 0.5)
    param = FourierImage(x)
    r = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(1))  # white: every frequency alike
    (param.image() * r).sum().backward()
    with torch.no_grad():
        delta = FourierImage.__new__(FourierImage)
        delta.__dict__.update(param.__dict__)
        delta.z = param.z - param.z.grad
        step = (delta.image() - param.image())[0, 0]
    spec_step, spec_r = torch.fft.fft2(step).abs(), torch.fft.fft2(r[0, 0]).abs()
    gain = spec_step / spec_r
    assert gain[32, 32] < 1e-2 * gain[1, 0]  # Nyquist (period 2) against the lowest non-zero frequency


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_fourier_parameterization_optimises(tiny_st, content_img, style_img, optimizer):
    out = tiny_st.stylize(
        content_img, style_img, size=32, steps=8, init="content", parameterization="fourier", optimizer=optimizer
    )
    assert out.final_losses["loss"] < out.losses[0].loss
    assert PRESETS["paper"].parameterization == "pixels"

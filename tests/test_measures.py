"""The quality measures of issue 12 (benchmarks.measures) on tiny synthetic images, and the quality harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_image
from PIL import Image

from benchmarks import measures as m


def smooth(h: int = 96, w: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    return np.stack([xx, yy, 0.5 + 0.25 * np.sin(3 * xx + 2 * yy)], -1)


def test_grid_of_a_period_2_checkerboard_is_huge_and_a_gradient_scores_about_one():
    photo = smooth()
    checker = photo.copy()
    yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
    checker += 0.1 * (((yy + xx) % 2) * 2 - 1)[..., None]
    assert m.grid_share(checker) > 0.5
    assert m.grid_ratio(checker, photo) > 50
    assert m.grid_ratio(photo, photo) == pytest.approx(1.0)
    assert 0.5 < m.grid_ratio(smooth() * 0.9 + 0.05, photo) < 2


def test_grid_sees_period_4_and_not_period_7():
    photo = smooth()
    yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
    p4 = photo + 0.05 * np.cos(2 * np.pi * xx / 4)[..., None]
    p7 = photo + 0.05 * np.cos(2 * np.pi * xx / 7)[..., None]
    assert m.grid_ratio(p4, photo) > 20
    assert m.grid_ratio(p7, photo) < 3


def test_lattice_mask_excludes_dc_and_counts_3x3_bins():
    mask = m.lattice_mask((16, 16))
    assert not mask[0, 0] and mask[0, 4] and mask[8, 8] and mask[1, 5]
    assert mask.sum() == 15 * 9  # 15 lattice points x 3x3 bins, disjoint at this size


def test_border_ratio_of_a_bright_edge_strip_is_high():
    photo = smooth()
    noisy = photo.copy()
    rng = np.random.default_rng(0)
    noisy[:4] = rng.random(noisy[:4].shape)  # a strip of coloured dots along the top edge
    assert m.border_ratio(noisy, photo) > 3
    assert m.border_ratio(photo, photo) == pytest.approx(1.0)


def test_measures_accept_pil_and_uint8_and_resize_the_photo():
    photo = make_image(64, 48, seed=3)
    render = photo.resize((32, 24), Image.Resampling.LANCZOS)
    assert m.border_ratio(render, photo) == pytest.approx(1.0, rel=1e-6)
    assert m.grid_ratio(np.asarray(render), photo) == pytest.approx(1.0, rel=1e-6)


def test_style_gradient_split_sums_to_one_and_balanced_weights_equalise(tiny_net):
    torch.manual_seed(0)
    start, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    split = m.style_gradient_split(tiny_net, start, style, {n: 0.2 for n in layers})
    assert sum(split[n] for n in layers) == pytest.approx(1.0)
    assert split["deep"] == pytest.approx(split["conv3_1"] + split["conv4_1"] + split["conv5_1"])
    assert 0 < split["norm_total"] <= 1 + 1e-6
    w = m.balanced_weights(tiny_net, start, style, layers)
    balanced = m.style_gradient_split(tiny_net, start, style, w)
    for n in layers:
        assert balanced[n] == pytest.approx(0.2, rel=1e-3)


def test_quality_harness_runs_on_a_tiny_network(tmp_path, tiny_weights_dir):
    from benchmarks import quality

    photo = make_image(48, 40, seed=1)
    style = make_image(40, 48, seed=2)
    photo.save(tmp_path / "photo.png")
    style.save(tmp_path / "painting.png")
    out = tmp_path / "out"
    rows = quality.main(
        [
            "--weights",
            str(tiny_weights_dir),
            "--size",
            "40",
            "--presets",
            "recommended,quality",
            "--set",
            "steps=2",
            "--set",
            "coarse_steps=1",
            "--set",
            "num_scales=2",
            "--pairs",
            f"{tmp_path / 'photo.png'}:{tmp_path / 'painting.png'}",
            "--out",
            str(out),
        ]
    )
    assert len(rows) == 2 and {r["preset"] for r in rows} == {"recommended", "quality"}
    for r in rows:
        assert np.isfinite(r["border"]) and np.isfinite(r["grid"]) and 0 <= r["deep"] <= 1
    assert (out / "results.md").read_text().count("|") > 10
    sheets = list(out.glob("sheet_*.png"))
    assert len(sheets) == 1 and Image.open(sheets[0]).size[0] > 40 * 3


def test_quality_settings_keep_words_as_words():
    from benchmarks.quality import parse_sets

    sets = parse_sets(["style_balance=none", "pooling=avg", "coarse_steps=none", "style_layer_weights=1,2,3,4,5"])
    assert sets == {
        "style_balance": "none",
        "pooling": "avg",
        "coarse_steps": None,
        "style_layer_weights": (1, 2, 3, 4, 5),
    }

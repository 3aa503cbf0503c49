"""Presets: the paper's settings by name, with provenance, and validation of overrides."""

from __future__ import annotations

import math

import pytest

from gatys import PRESETS, Preset
from gatys.errors import ConfigError
from gatys.presets import FIG3_LAYER_SETS, FIG3_RATIOS, fig3_preset_name, get_preset


def test_paper_preset_is_the_paper():
    p = PRESETS["paper"]
    assert p.content_layers == ("conv4_2",)
    assert p.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert all(math.isclose(w, 0.2) for w in p.layer_weights.values())  # w_l = 1/5
    assert p.alpha_beta == 1e-3 and p.pooling == "avg" and p.init == "noise" and p.optimizer == "lbfgs"
    assert PRESETS["paper-1e-4"].alpha_beta == 1e-4


def test_fig3_grid_complete():
    assert len(FIG3_LAYER_SETS) == 5 and FIG3_RATIOS == (1e-5, 1e-4, 1e-3, 1e-2)
    for letter, layers in FIG3_LAYER_SETS.items():
        for ratio in FIG3_RATIOS:
            p = PRESETS[fig3_preset_name(letter, ratio)]
            assert p.style_layers == layers and p.alpha_beta == ratio
    assert PRESETS["fig3-A-1e-5"].style_layers == ("conv1_1",)
    assert PRESETS["fig3-E-1e-2"].style_layers[-1] == "conv5_1"


def test_every_preset_has_a_source():
    for p in PRESETS.values():
        assert p.source and p.description


def test_overrides_validated():
    p = PRESETS["paper"].with_overrides(steps=10, style_layers=["conv1_1", "conv2_1"])
    assert p.steps == 10 and p.style_layers == ("conv1_1", "conv2_1")
    with pytest.raises(ConfigError, match="steps must be an integer >= 1"):
        PRESETS["paper"].with_overrides(steps=0)
    with pytest.raises(ConfigError, match="alpha_beta must be a non-negative number"):
        PRESETS["paper"].with_overrides(alpha_beta=float("nan"))
    with pytest.raises(ConfigError, match="non-negative"):
        PRESETS["paper"].with_overrides(style_layer_weights=(1, 1, -1, 1, 1))
    with pytest.raises(ConfigError, match="one per layer"):
        PRESETS["paper"].with_overrides(style_layer_weights=(1, 1))
    with pytest.raises(ConfigError, match="unknown setting"):
        PRESETS["paper"].with_overrides(stpes=3)
    with pytest.raises(ConfigError, match="init must be one of noise, content, style"):
        PRESETS["paper"].with_overrides(init="zeros")
    with pytest.raises(ConfigError, match="unknown preset 'nope'; valid: paper"):
        get_preset("nope")


def test_multiscale_schedule():
    q = PRESETS["quality"]
    assert q.scale_sizes() == [256, 512]
    assert q.scale_steps() == [300, 200]
    assert Preset(size=300).scale_sizes() == [300]


def test_every_named_preset_has_a_label():
    for p in PRESETS.values():
        assert p.label
        if "steps)" in p.label:  # the numbers a label shows are the preset's own
            assert f"{p.size} px, {p.steps} steps)" in p.label, p.label
    assert PRESETS["preview"].label == "Quick preview · from the photo (256 px, 150 steps)"
    fig3 = PRESETS[fig3_preset_name("C", 1e-4)].label
    assert fig3 == "Fig. 3 row C (conv1_1…conv3_1) · α/β = 1e-4 (512 px, 500 steps)"
    assert Preset().label == ""


def test_descriptive_fields_are_not_settings():
    paper = PRESETS["paper"]
    relabelled = paper.with_overrides(label="Mine", description="mine")
    assert relabelled.name == "paper" and relabelled.label == "Mine"  # still the paper: nothing that counts changed
    assert paper.with_overrides(steps=10).name == "paper+custom"
    assert paper.with_overrides(steps=10).label == paper.label
    assert relabelled.to_dict()["label"] == "Mine"


def test_default_presets():
    """The library reproduces the paper, the CLI makes a good picture, the app a quick one."""
    import inspect

    from gatys import StyleTransfer
    from gatys.cli import build_parser
    from gatys.presets import APP_DEFAULT_PRESET, CLI_DEFAULT_PRESET, LIBRARY_DEFAULT_PRESET

    assert LIBRARY_DEFAULT_PRESET == "paper"
    assert inspect.signature(StyleTransfer.stylize).parameters["preset"].default == LIBRARY_DEFAULT_PRESET
    assert CLI_DEFAULT_PRESET == "recommended" and PRESETS[CLI_DEFAULT_PRESET].init == "content"
    recommended = PRESETS[CLI_DEFAULT_PRESET]
    # issue 12: balanced style layers at their own α/β, a coarse scale for the painting's large strokes
    assert recommended.style_balance == "gradient" and recommended.alpha_beta < PRESETS["paper"].alpha_beta
    assert recommended.scale_sizes() == [256, 512]
    assert build_parser().get_default("preset") == CLI_DEFAULT_PRESET
    assert APP_DEFAULT_PRESET == "preview" and PRESETS[APP_DEFAULT_PRESET].size == 256


def test_fig3_texts_write_ratios_as_the_labels_do():
    p = PRESETS["fig3-A-1e-5"]
    assert "α/β = 1e-5" in p.description and "α/β = 1e-5" in p.source and "e-05" not in p.description + p.source


def test_coarse_scales_too_small_for_the_images_are_left_out():
    """A 16 px coarse scale before 32 px (a 16 px coarse scale would leave a 4:3 photo 12 px high)."""
    from PIL import Image

    from gatys.transfer import fit_scales

    photo, painting = Image.new("RGB", (400, 300)), Image.new("RGB", (300, 300))
    rec = PRESETS["recommended"].with_overrides(min_scale_size=16)  # the images' limit, not the preset's floor
    assert fit_scales(rec, photo, [painting]) is rec  # 384 px and 512 px both fit
    small = fit_scales(rec.with_overrides(size=32), photo, [painting])
    assert small.scale_sizes() == [32] and small.scale_steps() == [rec.steps]
    assert fit_scales(rec.with_overrides(size=64), photo, [painting]).scale_sizes() == [32, 64]
    # a 2:1 painting at half size (16 x 8 px at the 32 px scale) is what leaves the coarse scale out here
    wide = Image.new("RGB", (600, 300))
    assert fit_scales(rec.with_overrides(size=64, style_scale=0.5), photo, [wide]).scale_sizes() == [64]


def test_the_practical_presets_run_no_coarse_scale_under_256_px():
    """A 128 px coarse scale lost the photo's objects (benchmarks/README.md), so under 512 px they run one scale."""
    for name in ("recommended", "quality"):
        p = PRESETS[name]
        assert p.min_scale_size == 256 and p.num_scales == 2
        assert p.with_overrides(size=256).scale_sizes() == [256] and p.with_overrides(size=256).scale_steps() == [
            p.steps
        ]
        assert p.with_overrides(size=500).scale_sizes() == [500]
        assert p.with_overrides(size=512).scale_sizes() == [256, 512]
        assert p.with_overrides(size=1024).scale_sizes() == [512, 1024]
    three = Preset(size=512, num_scales=3, coarse_steps=7, steps=9, min_scale_size=256)
    assert three.scale_sizes() == [256, 512] and three.scale_steps() == [7, 9]  # 128 px left out
    assert (three.num_scales, three.scales_run) == (3, 2)  # asked for, and run
    assert PRESETS["recommended"].with_overrides(size=511).scales_run == 2  # 511 / 2 rounds to 256: "about 512"
    assert Preset(size=512, num_scales=3).scale_sizes() == [128, 256, 512]  # the default floor: 16 px
    with pytest.raises(ConfigError, match="min_scale_size"):
        Preset(min_scale_size=8).validate()


def test_preview_is_recommended_at_256_px():
    """The app's default makes the picture `recommended` makes at 256 px (one scale there), with the same α/β."""
    import dataclasses

    from gatys.presets import DESCRIPTIVE_FIELDS

    preview, rec = PRESETS["preview"], PRESETS["recommended"].with_overrides(size=PRESETS["preview"].size)
    assert preview.scale_sizes() == rec.scale_sizes() == [256] and preview.scale_steps() == rec.scale_steps()
    scales = {"num_scales", "coarse_steps", "min_scale_size"}  # set only by the two-scale preset
    same = [f.name for f in dataclasses.fields(Preset) if f.name not in DESCRIPTIVE_FIELDS | scales]
    assert {f: getattr(preview, f) for f in same} == {f: getattr(rec, f) for f in same}
    assert preview.alpha_beta == 5e-5 and "α/β = 5e-5" in preview.description

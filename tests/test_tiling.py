"""Tiling: layout and blending, the memory model's budget, tiled optimisation and tiled feed-forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_image

from gatys import tiling
from gatys.errors import ConfigError
from gatys.tiling import Tile, axis_segments, blend_weights, layout, parse_memory


@pytest.fixture
def no_base(monkeypatch):
    """Budgets in these tests count only the run's own bytes, not what the test process already holds."""
    monkeypatch.setattr(tiling, "process_memory", lambda device="cpu": 0)


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "shift"),
    [
        (97, 131, 40, 9, 0.0),
        (97, 131, 40, 9, 0.5),
        (33, 200, 64, 16, 0.25),
        (50, 51, 64, 8, 0.0),
        (1000, 777, 333, 48, 0.5),
    ],
)
def test_tiles_cover_exactly_with_overlap(h, w, tile, overlap, shift):
    tiles = layout(h, w, tile, overlap, shift)
    count = torch.zeros(h, w)
    for t in tiles:
        assert t.top >= 0 and t.left >= 0 and t.top + t.height <= h and t.left + t.width <= w
        assert t.height <= tile and t.width <= tile
        count[t.slices] += 1
    assert (count >= 1).all()  # every pixel covered
    for length in (h, w):
        segments = axis_segments(length, tile, overlap, shift)
        assert segments[0][0] == 0 and sum(segments[-1]) == length
        for (a, n), (b, _) in zip(segments, segments[1:]):
            assert a < b and a + n - b >= overlap  # neighbours share at least the stated overlap


def test_shifted_passes_move_the_borders():
    inner = [{t.left for t in layout(100, 1000, 200, 32, s)} - {0} for s in (0.0, 0.5)]
    assert inner[0] and inner[1] and not inner[0] & inner[1]


@pytest.mark.parametrize(("h", "w", "shift"), [(97, 131, 0.0), (97, 131, 0.5), (40, 40, 0.0)])
def test_blend_weights_sum_to_one(h, w, shift):
    tiles = layout(h, w, 48, 12, shift)
    total = torch.zeros(h, w)
    for t, wt in zip(tiles, blend_weights(tiles, h, w, 12)):
        assert wt.shape == (t.height, t.width) and (wt > 0).all()
        total[t.slices] += wt
    assert torch.allclose(total, torch.ones(h, w), atol=1e-6)


def test_parse_memory():
    assert parse_memory("2GB") == 2 * 2**30
    assert parse_memory("512 MB") == 512 * 2**20
    assert parse_memory("1.5GiB") == int(1.5 * 2**30)
    assert parse_memory("800m") == 800 * 2**20
    assert parse_memory(1000) == 1000
    for bad in ("lots", "2XB", "-1GB", "0", "", "GB", True):
        with pytest.raises(ConfigError, match="max_memory") as e:
            parse_memory(bad)
        assert "\n" not in str(e.value)


def test_global_grams_tiled_match_whole(tiny_net):
    # The margin covers conv5_1's receptive field (about 90 px with blur pooling), so the sum is exact.
    style = torch.rand(1, 3, 256, 288, generator=torch.Generator().manual_seed(0))
    layers = ["conv1_1", "conv3_1", "conv5_1"]
    for pooling in ("avg", "blur"):
        whole, n_whole = tiling.global_grams(tiny_net, style, layers, pooling, tile=1024)
        tiled, n_tiled = tiling.global_grams(tiny_net, style, layers, pooling, tile=256, margin=96)  # 4 x 5 cores
        feats = tiny_net(style, layers, pooling)
        for name in layers:
            assert n_whole[name] == feats[name].shape[2] * feats[name].shape[3] == n_tiled[name]
            assert float((tiled[name] - whole[name]).norm() / whole[name].norm()) < 1e-5


def test_gram_pixels_counts_what_global_grams_runs(tiny_net):
    """The time estimate's count of the Gram passes' pixels is what global_grams feeds the network."""
    seen = []
    forward = tiny_net.forward
    tiny_net.forward = lambda x, *a, **k: seen.append(x.shape[-2] * x.shape[-1]) or forward(x, *a, **k)
    for h, w, tile in ((256, 288, 256), (97, 131, 1024), (300, 420, 240)):
        seen.clear()
        tiling.global_grams(tiny_net, torch.rand(1, 3, h, w), ["conv1_1"], "avg", tile=tile)
        assert sum(seen) == tiling.gram_pixels(h, w, tile) >= h * w


def _full_objective(st, image, content, style, settings):
    """L_total of an output evaluated on the whole image with the same network and targets."""
    from gatys import _optimize
    from gatys.image import resize_longest, to_tensor

    x = to_tensor(image)
    c = to_tensor(resize_longest(content, max(image.size)))
    s = to_tensor(resize_longest(style, max(image.size)))
    targets = _optimize.build_targets(st.model, settings, c, [s], [1.0])
    return float(_optimize.objective(st.model, x, targets)[0])


@pytest.mark.parametrize("parameterization", ["fourier", "pixels"])
def test_tiled_run_matches_untiled_objective(tiny_st, no_base, parameterization):
    content, style = make_image(160, 120, 1), make_image(120, 160, 2)
    # One scale asked for; the tiled run adds whole-image coarse scales of coarse_steps each. α/β 1e-3, as issue 15
    # measured tiling with: at recommended's own 5e-5 the Fourier run passes too, the pixel one lands at 1.8x on
    # this tiny random network after 12 steps (tiles matching a style-heavy objective converge more slowly).
    kw = dict(preset="recommended", size=160, steps=12, num_scales=1, coarse_steps=12, alpha_beta=1e-3, seed=0)
    kw["parameterization"] = parameterization
    untiled = tiny_st.stylize(content, style, **kw)
    assert untiled.tiling is None
    need = tiling.step_bytes(tiny_st.model, untiled.settings, 96 * 96) + int(tiling.WHOLE_IMAGES * 12 * 160 * 120)
    budget = int(need / tiling.HEADROOM)  # 96 px tiles
    plan = tiny_st.check_inputs(content, style, max_memory=budget, **kw)
    schedule = tiny_st.schedule(plan)
    assert schedule.tiled and len(schedule.scales[-1].tiles(0)) >= 4
    tiled = tiny_st.stylize(content, style, max_memory=budget, **kw)
    assert tiled.image.size == untiled.image.size == (160, 120)
    assert tiled.tiling is not None and len(tiled.tiling.last_tiles) >= 4
    assert len(tiled.losses) == schedule.total_steps  # the progress counts tiles x steps
    full_u = _full_objective(tiny_st, untiled.image, content, style, untiled.settings)
    full_t = _full_objective(tiny_st, tiled.image, content, style, tiled.settings)
    assert full_t <= 1.1 * full_u, (full_t, full_u)  # the tolerance
    assert tiling.seam_ratio(tiled.image, tiled.tiling.last_tiles) < 1.3


def test_run_keeps_the_schedule_it_was_shown(tiny_st, monkeypatch):
    """run(plan, schedule) runs the tiling that was described and estimated, though the memory the process holds
    (and so a fresh schedule) has moved since."""
    content, style = make_image(160, 120, 1), make_image(120, 160, 2)
    monkeypatch.setattr(tiling, "process_memory", lambda device="cpu": 0)
    kw = dict(preset="recommended", size=160, steps=2, coarse_steps=2, seed=0)
    probe = tiny_st.check_inputs(content, style, **kw)
    need = tiling.step_bytes(tiny_st.model, probe.settings, 96 * 96) + int(tiling.WHOLE_IMAGES * 12 * 160 * 120)
    plan = tiny_st.check_inputs(content, style, max_memory=int(need / tiling.HEADROOM), **kw)
    shown = tiny_st.schedule(plan)
    monkeypatch.setattr(tiling, "process_memory", lambda device="cpu": need // 8)  # the process grew since
    assert tiny_st.schedule(plan).describe() != shown.describe()
    out = tiny_st.run(plan, shown)
    assert out.tiling is not None and out.tiling.schedule is shown and len(out.losses) == shown.total_steps


def test_budget_too_small_for_one_tile(tiny_st, no_base):
    content, style = make_image(128, 96, 1), make_image(96, 128, 2)
    with pytest.raises(ConfigError, match="too small for even one 64 px tile") as e:
        tiny_st.stylize(content, style, size=128, steps=2, max_memory="10KB")
    assert "\n" not in str(e.value) and "give at least" in str(e.value)


def test_stop_in_a_tiled_run_returns_an_image(tiny_st, no_base):
    content, style = make_image(128, 96, 1), make_image(96, 128, 2)
    need = tiling.step_bytes(tiny_st.model, tiny_st.check_inputs(content, style).settings, 64 * 64) + 10**6
    budget = int(need / tiling.HEADROOM)
    calls = []
    out = tiny_st.stylize(
        content, style, size=128, steps=4, max_memory=budget, callback=lambda i: calls.append(i.step) or len(calls) < 9
    )
    assert out.stopped and out.image.size == (128, 96) and len(out.losses) == 9


def _tiny_transform_net():
    from gatys.feedforward import NetConfig, TransformNet

    torch.manual_seed(0)
    net = TransformNet(NetConfig(width=0.25, residual_blocks=1)).eval()
    with torch.no_grad():  # instance norms with non-trivial affine parameters, as a trained network has
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net


def test_feedforward_tiled_equals_untiled():
    net = _tiny_transform_net()
    x = torch.rand(1, 3, 150, 203, generator=torch.Generator().manual_seed(1))
    x = torch.nn.functional.avg_pool2d(x, 5, 1, 2)  # some structure
    with torch.inference_mode():
        whole = net(x)
        tiled, tiles = tiling.feedforward_tiled(net, x, 64, overlap=16, halo=48, stats_side=256)
        own, _ = tiling.feedforward_tiled(net, x, 64, overlap=16, halo=48, global_stats=False)
    assert len(tiles) >= 9
    err_global = float((tiled - whole).abs().max())
    err_own = float((own - whole).abs().max())
    assert err_global < 2e-3, err_global
    assert err_own > 5 * err_global  # per-tile statistics change the look; the whole image's do not


def test_faststyle_max_memory_tiles(monkeypatch, no_base):
    from gatys import FastStyle

    fs = FastStyle(_tiny_transform_net(), device="cpu")
    img = make_image(400, 300, 3)
    calls = []
    real = tiling.feedforward_tiled
    monkeypatch.setattr(tiling, "feedforward_tiled", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    whole = fs.stylize(img)
    tiled = fs.stylize(img, max_memory="20MB")  # the whole pass needs about 40 MB
    assert not calls[:-1] and calls and calls[-1] >= tiling.MIN_TILE
    from gatys.image import to_tensor

    assert float((to_tensor(whole) - to_tensor(tiled)).abs().mean()) < 1 / 255  # below one grey level on average
    with pytest.raises(ConfigError, match="too small"):
        fs.stylize(img, max_memory="10KB")


def test_tile_helpers():
    t = Tile(2, 3, 4, 5)
    x = torch.arange(100.0).view(1, 1, 10, 10)
    assert t.crop(x).shape == (1, 1, 4, 5)
    img = torch.zeros(1, 3, 32, 32)
    img[..., 16:, :] = 1.0  # a hard edge on the tile border row 16
    tiles = layout(32, 32, 20, 4)
    assert tiling.seam_ratio(img, [Tile(0, 0, 16, 32), Tile(16, 0, 16, 32)], control=None) > 10
    assert tiling.seam_ratio(torch.rand(1, 3, 32, 32), tiles, control=None) == pytest.approx(1.0, abs=0.3)
    big = torch.zeros(1, 3, 96, 96)
    big[..., 48:, :] = 1.0
    assert tiling.seam_ratio(big, [Tile(0, 0, 48, 96), Tile(48, 0, 48, 96)]) > 10  # against lines 16, 32 px away
    noise = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    assert tiling.seam_ratio(noise, layout(96, 96, 40, 8)) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("value", ["lots", "2XB", "0", "1.5.2GB"])
@pytest.mark.parametrize("model", [False, True])
def test_cli_max_memory_errors_are_one_line(tmp_path, capsys, monkeypatch, value, model):
    from gatys.cli import main

    c, s = tmp_path / "c.png", tmp_path / "s.png"
    make_image(48, 40, 1).save(c)
    make_image(40, 48, 2).save(s)
    monkeypatch.setenv("GATYS_WEIGHTS", str(tmp_path / "no-weights-needed"))
    args = [str(c), "--model", "starry-night"] if model else [str(c), str(s)]
    rc = main([*args, "-o", str(tmp_path / "o.png"), "--size", "32", "-q", "--max-memory", value])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("gatys: error: --max-memory")
    assert not (tmp_path / "o.png").exists()


def test_cli_max_memory_tiles_and_estimates(tmp_path, capsys, monkeypatch, tiny_weights_dir, no_base):
    from PIL import Image

    from gatys.cli import main

    c, s = tmp_path / "c.png", tmp_path / "s.png"
    make_image(160, 120, 1).save(c)
    make_image(120, 160, 2).save(s)
    monkeypatch.setenv("GATYS_WEIGHTS", str(tiny_weights_dir))
    out = tmp_path / "o.tif"
    rc = main([str(c), str(s), "-o", str(out), "--size", "160", "--steps", "2", "-q", "--max-memory", "8MB"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "tiles of" in err and "about" in err and Image.open(out).size == (160, 120)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".tiff"])
def test_outputs_carry_the_icc_profile(tmp_path, suffix):
    from PIL import Image, ImageCms

    from gatys.image import icc_profile, save_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "photo.jpg"
    make_image(40, 32, 1).save(src, icc_profile=profile)
    assert icc_profile(src) == profile and icc_profile(make_image(8, 8)) is None
    out = save_image(make_image(40, 32, 2), tmp_path / f"out{suffix}", icc_profile=icc_profile(src))
    with Image.open(out) as img:
        assert img.format == {".jpg": "JPEG", ".webp": "WEBP", ".png": "PNG"}.get(suffix, "TIFF")
        assert img.size == (40, 32) and img.info.get("icc_profile") == profile


def test_coarse_seam_ratio_sees_a_change_of_tone_between_tiles():
    h, w = 512, 512
    tiles = layout(h, w, 160, 32)
    noise = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 0.2
    tones = torch.zeros(1, 3, h, w)
    for i, (t, wt) in enumerate(zip(tiles, blend_weights(tiles, h, w, 32))):
        t.crop(tones).add_(wt * (0.2 + 0.6 * ((i * 7) % 5) / 4))  # each tile its own grey, feather-blended
    drifted = noise + tones
    assert tiling.seam_ratio(drifted, tiles, scale=32) > 1.5 * tiling.seam_ratio(noise + 0.5, tiles, scale=32)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("shape", [(37, 53), (130, 71)])  # (130, 71): TIFF strips of 64 rows, the last short
def test_sixteen_bit_outputs_keep_every_value_and_the_icc_profile(tmp_path, suffix, shape):
    cv2 = pytest.importorskip("cv2")
    from PIL import Image, ImageCms

    from gatys.image import save_image

    h, w = shape
    t = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = save_image(t, tmp_path / f"out{suffix}", icc_profile=profile, bits=16)
    expected = (t[0].permute(1, 2, 0) * 65535).round().to(torch.int32).numpy()
    read = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)  # libpng / libtiff, independent of our writer
    assert read.dtype == np.uint16 and read.shape == (h, w, 3)
    assert np.array_equal(read[..., ::-1].astype(np.int32), expected)
    with Image.open(out) as img:  # Pillow reads it too (as 8 bits), with the profile
        assert img.size == (w, h) and img.info.get("icc_profile") == profile
        assert np.abs(np.asarray(img.convert("RGB"), dtype=np.int32) - expected // 257).max() <= 1


def test_sixteen_bits_only_where_the_format_has_them(tmp_path):
    from gatys.errors import ImageError
    from gatys.image import save_image

    for name, bits in (("out.jpg", 16), ("out.webp", 16), ("out.png", 12)):
        with pytest.raises(ImageError, match="16|bits") as e:
            save_image(torch.rand(1, 3, 8, 8), tmp_path / name, bits=bits)
        assert "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("model", [False, True])
def test_cli_writes_sixteen_bit_files(tmp_path, capsys, monkeypatch, tiny_weights_dir, model):
    cv2 = pytest.importorskip("cv2")
    from gatys.cli import main

    c, s = tmp_path / "c.png", tmp_path / "s.png"
    make_image(48, 40, 1).save(c)
    make_image(40, 48, 2).save(s)
    monkeypatch.setenv("GATYS_WEIGHTS", str(tiny_weights_dir))
    if model:
        from test_feedforward import tiny_style

        args = [str(c), "--model", str(tiny_style().save_pretrained(tmp_path / "m", style_image=make_image(40, 48, 2)))]
    else:
        args = [str(c), str(s), "--steps", "3", "--init", "noise"]
    assert main([*args, "-o", str(tmp_path / "o.jpg"), "--size", "40", "-q", "--bits", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "16 bits" in err and not (tmp_path / "o.jpg").exists()
    out = tmp_path / "o.tif"
    assert main([*args, "-o", str(out), "--size", "40", "-q", "--bits", "16"]) == 0, capsys.readouterr().err
    read = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert read.dtype == np.uint16 and read.shape[1:] == (40, 3) and read.shape[0] in (33, 34)
    assert (read % 257 != 0).any()  # finer steps than an 8-bit image scaled up

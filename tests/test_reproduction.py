"""The reproduction command (python -m reproduction): its measures, contact sheets, report, and the trends."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, make_image
from PIL import Image

from gatys.presets import PAPER_STYLE_LAYERS, PRESETS
from reproduction import runner
from reproduction.__main__ import main
from reproduction.fig1 import FIG1_LAYERS
from reproduction.fig2 import FROM_PHOTO, PAINTINGS, QUALITY, quality_preset
from reproduction.measure import content_loss_at, style_losses, weighted_style_loss
from reproduction.metrics import gaussian_window, is_monotone, luma, psnr, ssim, ssim_map
from reproduction.runs import Settings
from reproduction.sheets import contact_sheet, with_inset


def _noisy(img: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    a = np.asarray(img, float) + np.random.default_rng(seed).normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _ssim_reference(x: np.ndarray, y: np.ndarray, L: float = 255.0) -> float:
    """SSIM written out window by window (Wang et al. 2004, Eqs. 14-15 with a Gaussian window)."""
    w = gaussian_window(11, 1.5)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


# -- PSNR and SSIM -------------------------------------------------------------------------------------------


def test_psnr_known_values():
    a = make_image(40, 32, seed=1)
    assert psnr(a, a) == math.inf
    arr = np.asarray(a).astype(np.int16)
    b = Image.fromarray(np.where(arr < 255, arr + 1, arr - 1).astype(np.uint8))  # every value off by exactly 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-9)  # 48.13 dB
    assert psnr(a, b) == psnr(b, a)
    with pytest.raises(ValueError, match="differ in size"):
        psnr(a, a.resize((20, 16)))


def test_gaussian_window():
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11) and w.sum() == pytest.approx(1.0)
    assert np.allclose(w, w.T) and np.allclose(w, w[::-1, ::-1])
    assert w.argmax() == 60  # the centre


def test_ssim_matches_a_window_by_window_reference():
    x = luma(make_image(23, 19, seed=3))
    y = luma(_noisy(make_image(23, 19, seed=3), 20))
    assert ssim_map(x, y).shape == (9, 13)
    assert float(ssim_map(x, y).mean()) == pytest.approx(_ssim_reference(x, y), rel=1e-9)


def test_ssim_properties():
    a = make_image(48, 40, seed=1)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    b = _noisy(a, 10)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)  # symmetric
    values = [ssim(a, _noisy(a, s)) for s in (2, 8, 20, 50)]
    assert all(-1 <= v < 1 for v in values)
    assert values == sorted(values, reverse=True)  # more noise, less similar
    inverted = Image.fromarray(255 - np.asarray(a))
    assert ssim(a, inverted) < 0  # anti-correlated structure
    # A uniform brightness shift keeps the structure: it costs far less than noise of the same MSE.
    shifted = Image.fromarray(np.clip(np.asarray(a).astype(int) + 20, 0, 255).astype(np.uint8))
    noisy = _noisy(a, 20)
    assert psnr(a, shifted) > psnr(a, noisy) - 1.5
    assert ssim(a, shifted) > ssim(a, noisy) + 0.2
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(make_image(10, 10), make_image(10, 10))


def test_luma_is_bt601():
    img = Image.new("RGB", (2, 1), (255, 0, 0))
    assert luma(img)[0, 0] == pytest.approx(0.299 * 255)


# -- losses measured on finished images ----------------------------------------------------------------------


def test_measured_losses_vanish_on_the_target(tiny_st, content_img, style_img):
    per = style_losses(tiny_st.model, style_img, style_img)
    assert list(per) == list(PAPER_STYLE_LAYERS)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in per.values())
    other = style_losses(tiny_st.model, content_img, style_img)
    assert all(v > 0 for v in other.values())
    assert weighted_style_loss(other) == pytest.approx(sum(other.values()) / 5)
    assert weighted_style_loss(other, ["conv1_1"]) == other["conv1_1"]
    assert content_loss_at(tiny_st.model, content_img, content_img) == 0.0
    assert content_loss_at(tiny_st.model, style_img.resize(content_img.size), content_img) > 0


def test_is_monotone():
    assert is_monotone([1, 2, 3], increasing=True) and not is_monotone([1, 2, 2], increasing=True)
    assert is_monotone([3, 2, 1], increasing=False) and not is_monotone([3, 4, 1], increasing=False)


# -- contact sheets ------------------------------------------------------------------------------------------


def test_contact_sheet_layout():
    red = Image.new("RGB", (40, 30), (255, 0, 0))
    blue = Image.new("RGB", (80, 60), (0, 0, 255))  # scaled down to the 40 px tile
    sheet = contact_sheet(
        [[red, blue], ["missing", None]],
        title="a title",
        col_labels=["one", "two"],
        row_labels=["row 1", "row 2"],
        captions=[["r", "b"], ["", ""]],
        tile=40,
    )
    assert sheet.mode == "RGB"
    a = np.asarray(sheet)
    is_red = (a[..., 0] == 255) & (a[..., 1] == 0) & (a[..., 2] == 0)
    is_blue = (a[..., 0] == 0) & (a[..., 1] == 0) & (a[..., 2] == 255)
    assert is_red.sum() == 40 * 30 and is_blue.sum() == 40 * 30
    assert ((a == 225).all(-1)).sum() > 40 * 10  # the grey placeholder box
    ys, xs = np.nonzero(is_red)
    left = a[:, : xs.min()]
    assert (left < 128).any()  # row labels drawn left of the images
    assert (a[: ys.min()] < 128).any()  # title and column labels above them
    assert sheet.width >= 2 * 40 + xs.min()


def test_contact_sheet_rejects_empty():
    with pytest.raises(ValueError):
        contact_sheet([])


def test_with_inset():
    panel = Image.new("RGB", (64, 48), (0, 255, 0))
    painting = Image.new("RGB", (30, 40), (255, 0, 255))
    out = with_inset(panel, painting)
    assert out.size == panel.size
    assert out.getpixel((3, 45)) == (255, 0, 255)  # lower left: the painting
    assert out.getpixel((60, 3)) == (0, 255, 0)


# -- the command, end to end, on the tiny network -------------------------------------------------------------


@pytest.fixture
def image_dir(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    make_image(64, 48, seed=1).save(d / "tubingen.jpg")
    make_image(60, 48, seed=2).save(d / "starry_night.jpg")
    make_image(56, 40, seed=3).save(d / "shipwreck.jpg")
    return d


def _tiny_args(figure: str, out, image_dir, weights_dir) -> list[str]:
    """A fast command line: 32 px, 2 steps, the tiny weights, on the CPU."""
    where = ["--out", str(out), "--images", str(image_dir), "--weights", str(weights_dir)]
    return [figure, *where, "--size", "32", "--steps", "2", "--device", "cpu"]


def test_command_writes_figures_and_report(tmp_path, image_dir, tiny_weights_dir, capsys):
    out = tmp_path / "out"
    rc = main(_tiny_args("all", out, image_dir, tiny_weights_dir))
    assert rc == 0
    err = capsys.readouterr().err
    assert "estimated total" in err and "checks passed" in err
    assert "Der Schrei" in err and "skipped" in err  # absent paintings are named
    for name in (
        "fig1.png",
        "fig2.png",
        "fig2_from_photo.png",
        "fig2_quality.png",
        "fig3.png",
        "report.md",
        "report.json",
        "fig1/content_conv5_1.png",
        "fig1/style_starry_night_conv1_1-conv5_1.png",
        "fig2/B_shipwreck.png",
        "fig2/quality_C_starry_night.png",
        "fig3/E_1e-5.png",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["weights"] == "tiny random VGG-16 (tests)" and not report["partial"]
    assert [r["layer"] for r in report["fig1"]["content"]] == list(FIG1_LAYERS)
    assert set(report["fig1"]["style"]) == {"starry_night", "tubingen"}
    status = {p["panel"]: p["status"] for p in report["fig2"]["panels"]}
    assert status == {"B": "done", "C": "done", "D": "absent", "E": "absent", "F": "absent", "+": "absent"}
    q = PRESETS["quality"].alpha_beta  # the preset's own α/β for B-D (the paper's 1e-3 is not the balanced one's)
    assert [(e["panel"], e["alpha_beta"]) for e in report["fig2"]["quality"]] == [("B", q), ("C", q)]
    # --size 32 --steps 2: at 16 px the 4:3 photo is too small for the network, so only the final scale, 2 steps
    assert report["fig2"]["quality_sizes"] == [32] and report["fig2"]["quality_steps"] == [2]
    assert report["sheets"]["fig2"] == ["fig2.png", "fig2_from_photo.png", "fig2_quality.png"]
    assert len(report["fig3"]["cells"]) == 20
    assert {c["figure"] for c in report["checks"]} == {"fig1", "fig2", "fig3"}
    assert [c["passed"] for c in report["checks"] if "quality preset" in c["name"]] == [True]
    md = (out / "report.md").read_text()
    for heading in ("## Checks", "## Figure 1", "## Figure 2", "## Figure 3", "PSNR (dB)", "α/β 1e-5"):
        assert heading in md
    photo, quality = md.index("### Started from the photo"), md.index("### With the quality preset")
    assert photo < quality and "](fig2_quality.png)" in md[quality:] and "`quality` preset" in md[quality:]
    with Image.open(out / "fig3.png") as sheet:
        assert sheet.width > 4 * 32


@pytest.mark.parametrize(
    ("figure", "file", "runs", "part"),
    [
        ("fig1", "fig1/content_conv3_1.png", 15, "content"),
        # B and C from white noise, from the photo and with the quality preset
        ("fig2", "fig2/quality_B_shipwreck.png", 6, "quality"),
    ],
)
def test_command_resumes_finished_runs(tmp_path, image_dir, tiny_weights_dir, capsys, figure, file, runs, part):
    out = tmp_path / "out"
    args = _tiny_args(figure, out, image_dir, tiny_weights_dir)
    assert main(args) == 0
    first = json.loads((out / "report.json").read_text())
    before = (out / file).read_bytes()
    assert main([*args, "--resume"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert f"reused from {file}" in capsys.readouterr().err
    assert again["reused_runs"] == again["runs"] == runs
    assert again[figure][part] == first[figure][part]  # same images, same numbers
    assert (out / file).read_bytes() == before
    assert main([*args, "--resume", "--steps", "3"]) == 0  # other settings: nothing reused
    assert json.loads((out / "report.json").read_text())["reused_runs"] == 0


def test_quality_preset_fits_the_run_and_the_images():
    """Fig. 2's quality runs: the preset's scales from --size (none under 256 px), steps capped by --steps."""
    q = PRESETS["quality"]
    photo, square = make_image(64, 48, seed=1), make_image(64, 64, seed=2)
    at256 = quality_preset(256, q.steps, photo, [square])
    assert at256.scale_sizes() == [256] and at256.scale_steps() == [q.steps]  # a 128 px scale would lose objects
    full = quality_preset(512, q.steps, photo, [square])
    assert full.scale_sizes() == q.scale_sizes() == [256, 512] and full.scale_steps() == q.scale_steps()
    fewer = q.steps - 1  # then at most that many at every scale
    coarse = [min(n, fewer) for n in q.scale_steps()[:-1]]
    assert quality_preset(512, fewer, photo, []).scale_steps() == [*coarse, fewer]
    assert quality_preset(512, 2, photo, []).scale_steps() == [2, 2]
    assert quality_preset(32, 2, photo, [square]).scale_sizes() == [32]


def test_fig2_variant_jobs_are_priced_scale_by_scale(tmp_path, image_dir, tiny_st, monkeypatch):
    """A coarse-to-fine run is one job of its final size and all its steps, priced at each scale's size."""
    painting, path = PAINTINGS[0], image_dir / "shipwreck.jpg"
    quality = QUALITY.job(painting, path, lambda **kw: None, ((64, 100), (128, 100), (256, 300)))
    photo = FROM_PHOTO.job(painting, path, lambda **kw: None, ((256, 300),))
    assert (quality.key, quality.size, quality.steps) == ("quality/B", 256, 500)
    assert quality.file == "fig2/quality_B_shipwreck.png" and quality.passes == quality.scales
    assert (photo.key, photo.file, photo.scales, photo.passes) == (
        "from-photo/B",
        "fig2/from_photo_B_shipwreck.png",
        (),
        ((256, 300),),
    )
    monkeypatch.setattr(runner, "calibrate", lambda st, photo, painting, size: size / 1000)
    settings = Settings(
        ("fig2",), tmp_path, image_dir, {"fig2": 256}, {"fig2": 300}, 0, path, "png", "noise", False, True
    )
    repro = runner.Reproduction(st=tiny_st, settings=settings, argv=[])
    assert repro.estimate([quality, photo], make_image(40, 40)) == {64: 0.064, 128: 0.128, 256: 0.256}
    # Both read up to conv5_1, a full step each: no depth discount.
    assert quality.estimate == pytest.approx(100 * 0.064 + 100 * 0.128 + 300 * 0.256)
    assert photo.estimate == pytest.approx(300 * 0.256)


def test_command_says_when_images_are_absent(tmp_path, capsys):
    rc = main(["fig1", "--out", str(tmp_path / "o"), "--images", str(tmp_path / "nowhere")])
    assert rc == 2
    assert "--images" in capsys.readouterr().err


def test_old_command_still_works_and_says_it_is_deprecated():
    """``python -m gatys.reproduce`` forwards to ``python -m reproduction`` for one release, with a warning."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run(
        [sys.executable, "-m", "gatys.reproduce", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "DeprecationWarning" in proc.stderr and "python -m reproduction" in proc.stderr
    assert "usage: python -m reproduction" in proc.stdout and "--images" in proc.stdout


def test_the_library_does_not_import_the_reproduction():
    code = "import sys, gatys, gatys.cli; assert not {'reproduction', 'gatys.reproduce'} & set(sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_images_folder_comes_from_the_environment_or_is_required(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GATYS_IMAGES", raising=False)
    assert main(["fig1", "--out", str(tmp_path / "o")]) == 2
    assert "pass --images DIR (or set GATYS_IMAGES)" in capsys.readouterr().err
    monkeypatch.setenv("GATYS_IMAGES", str(tmp_path / "elsewhere"))
    assert main(["fig1", "--out", str(tmp_path / "o")]) == 2
    assert f"images folder {tmp_path / 'elsewhere'} not found" in capsys.readouterr().err


# -- the real thing, small ---------------------------------------------------------------------------------
# One reproduction with the real default weights, shared by the tests below: the defaults' Fig. 1 and Fig. 3 runs
# (128 px, 300 steps); Fig. 2 at 128 px instead of 256. About 7 min here.
# At 64 px the deep-layer and Fig. 3 style trends drown in the optimiser's noise (measured: 5 of 5 Fig. 3 rows
# not monotone), because the content term weighs (size / 512)^2 as much as in the paper's runs.
SMALL = ["all", "--size", "128", "--steps", "300"]
_runs: dict[str, dict] = {}


def _small_report(hed_weights, shared_images, tmp_path_factory) -> dict:
    if "report" not in _runs:
        out = tmp_path_factory.mktemp("repro")
        rc = main([*SMALL, "--out", str(out), "--images", str(shared_images), "--weights", str(hed_weights), "-q"])
        assert rc == 0
        _runs["report"] = json.loads((out / "report.json").read_text())
        _runs["report"]["_out"] = str(out)
    return _runs["report"]


@pytest.fixture
def small(hed_weights, shared_images, tmp_path_factory):
    return _small_report(hed_weights, shared_images, tmp_path_factory)


def _checks(report: dict, figure: str, contains: str) -> list[dict]:
    found = [c for c in report["checks"] if c["figure"] == figure and contains in c["name"]]
    assert found, f"no {figure} check containing {contains!r}"
    return found


def _assert_pass(checks: list[dict]) -> None:
    failed = [f"{c['name']}: {c['detail']}" for c in checks if not c["passed"]]
    assert not failed, "\n".join(failed)


@pytest.mark.slow
def test_small_reproduction_report(small):
    from pathlib import Path

    out = Path(small["_out"])
    assert small["weights"] == "VGG-16 (HED, offline)" and small["wall_s"] > 0 and not small["partial"]
    assert small["estimate_s"] > 0
    for name in ("fig1.png", "fig2.png", "fig3.png", "report.md"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    for text in (
        "## Checks",
        "### Content reconstructions",
        "### Style reconstructions of starry_night",
        "| panel | painting |",
        "Style loss over conv1_1..conv5_1",
        "VGG-19",
    ):
        assert text in md, text
    assert {p["panel"] for p in small["fig2"]["panels"] if p["status"] == "done"} >= {"B", "C", "E"}
    assert {e["panel"] for e in small["fig2"]["from_photo"]} >= {"B", "C", "E"}
    assert (out / "fig2_from_photo.png").is_file() and "### Started from the photo" in md
    assert {e["panel"] for e in small["fig2"]["quality"]} >= {"B", "C", "E"}
    assert (out / "fig2_quality.png").is_file() and "### With the quality preset" in md
    _assert_pass(_checks(small, "fig2", "started from the photo"))
    assert len(small["fig3"]["cells"]) == 20


@pytest.mark.slow
def test_small_content_reconstructions_are_near_perfect_then_fall_with_depth(small):
    """Fig. 1: conv1_1 and conv2_1 near-perfect; PSNR (and SSIM) fall with every deeper layer."""
    psnrs = [r["psnr_db"] for r in small["fig1"]["content"]]
    assert is_monotone(psnrs, increasing=False), psnrs
    _assert_pass(_checks(small, "fig1", "near-perfect") + _checks(small, "fig1", "PSNR falls"))


@pytest.mark.slow
def test_small_style_reconstructions_lower_the_loss_where_they_match(small):
    """Fig. 1: matching conv2_1 and conv3_1 lowers the loss measured there, for the painting and the photo."""
    _assert_pass(_checks(small, "fig1", "at conv2_1") + _checks(small, "fig1", "at conv3_1"))


@pytest.mark.slow
def test_small_style_reconstructions_lower_the_loss_at_the_deepest_layers(small):
    """At conv4_1 and conv5_1, the sets that match the layer beat the sets of one or two layers.

    Not every set: with the HED VGG-16, conv4_1 and conv5_1 carry under 1 % of L_style at w_l = 1/5, so the
    conv1_1..conv3_1 reconstruction's loss there is within the optimiser's noise of the matched ones (two runs
    of the same command: tubingen at conv4_1, matched at most 3.33 vs conv1_1..conv3_1 4.52 in one, 2.63 vs
    1.33 in the other). Against conv1_1 alone and conv1_1..conv2_1 the margins were 2x-30x in both runs.
    """
    for stem, d in small["fig1"]["style"].items():
        recs = {len(e["layers"]): e["style_loss"] for e in d["reconstructions"]}
        for k, layer in ((4, "conv4_1"), (5, "conv5_1")):
            matched = [recs[j][layer] for j in range(k, 6)]
            shallow = [recs[1][layer], recs[2][layer]]
            assert max(matched) < min(shallow), (stem, layer, matched, shallow)


@pytest.mark.slow
def test_small_fig3_content_loss_rises_as_alpha_beta_falls(small):
    """Fig. 3: in every row, less weight on content (α/β 1e-2 -> 1e-5) keeps less of the photo."""
    _assert_pass(_checks(small, "fig3", "content loss rises"))
    for letter in "ABCDE":
        row = sorted((c for c in small["fig3"]["cells"] if c["row"] == letter), key=lambda c: -c["alpha_beta"])
        assert is_monotone([c["content_loss"] for c in row], increasing=True), row


@pytest.mark.slow
def test_small_fig3_style_loss_falls_as_alpha_beta_falls(small):
    """Fig. 3: in every row, more weight on style (α/β 1e-2 -> 1e-5) matches the painting better.

    From 1e-4 to 1e-5 the content term is already tiny at 128 px and the two style losses differ by less than
    1 % in some rows (measured: row B 1.45e3 vs 1.44e3), so a step may tie within 3 % (the optimiser's noise
    between machines); over the row the style loss must fall by at least 10 %. The report's own check is strict.
    """
    for letter in "ABCDE":
        row = sorted((c for c in small["fig3"]["cells"] if c["row"] == letter), key=lambda c: -c["alpha_beta"])
        style = [c["style_loss"] for c in row]
        assert all(b <= a * 1.03 for a, b in zip(style, style[1:])), (letter, style)
        assert style[-1] < 0.9 * style[0], (letter, style)


def test_resume_tells_coarse_to_fine_runs_apart_by_their_scales():
    """--resume reuses a run only with the same scales: same key, final size and total steps are not enough."""
    from types import SimpleNamespace as NS

    from reproduction.runs import identity

    ctx = NS(
        settings=NS(seed=0, init="noise", fig3_style=None),
        st=NS(weights_name="w"),
        model=NS(config=NS(alpha_beta_scale=1.0)),
    )
    painting, path = PAINTINGS[0], ROOT / "shipwreck.jpg"  # a name only: nothing is read
    two = QUALITY.job(painting, path, lambda **kw: None, ((128, 300), (256, 200)))
    one = QUALITY.job(painting, path, lambda **kw: None, ((256, 500),))
    assert (two.key, two.size, two.steps) == (one.key, one.size, one.steps)
    assert identity(ctx, two) != identity(ctx, one)
    assert identity(ctx, two)["scales"] == [[128, 300], [256, 200]] and identity(ctx, one)["scales"] is None

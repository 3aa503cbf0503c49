"""Slow tests with the real offline default weights (VGG-16 from HED) and the paper's images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

pytestmark = pytest.mark.slow


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = np.asarray(a, float), np.asarray(b, float)
    return float(10 * np.log10(255.0**2 / max(((x - y) ** 2).mean(), 1e-12)))


@pytest.fixture(scope="module")
def st():
    from helpers import need

    from gatys import StyleTransfer
    from gatys.weights import default_local_dir

    need(
        (default_local_dir() / "model.safetensors").is_file(),
        "offline default weights missing; run 'bash setup.sh --no-demo'",
    )
    return StyleTransfer.from_pretrained(str(default_local_dir()))


def test_weights_are_labelled_honestly(st):
    assert st.weights_name == "VGG-16 (HED, offline)"
    assert "19" not in st.weights_name
    assert st.model.config.architecture == "vgg16"


def test_content_reconstruction_psnr_falls_with_depth(st, shared_images):
    """Fig. 1: reconstructions from conv1_1 and conv2_1 are near-perfect; PSNR falls strictly with depth.

    Measured with the HED VGG-16 at 128 px, 200 Adam steps (the library's default for content), seeds 0/1/2:
    conv1_1 37.9/37.9/37.9, conv2_1 26.3/26.2/26.0, conv3_1 13.6/13.5/13.4, conv4_1 12.0/12.0/12.1,
    conv5_1 11.5/11.7/11.4 dB.
    """
    from gatys import image as im

    photo = im.resize_longest(im.load_image(shared_images / "tubingen.jpg"), 128)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    values = [psnr(st.reconstruct_content(photo, layer, size=128, steps=200).image, photo) for layer in layers]
    print("content reconstruction PSNR (dB):", dict(zip(layers, [round(v, 2) for v in values])))
    assert values == sorted(values, reverse=True) and len(set(values)) == 5, values  # strictly falling
    assert values[0] > 35 and values[1] > 24, values  # near-perfect


def test_stylization_moves_towards_style(st, shared_images):

    out = st.stylize(shared_images / "tubingen.jpg", shared_images / "starry_night.jpg", size=96, steps=60, seed=0)
    assert out.losses[-1].style_loss < 0.05 * out.losses[0].style_loss
    assert out.losses[-1].content_loss < out.losses[0].content_loss
    # The result's colour statistics moved towards the painting's (blue/yellow) and away from grey.
    arr = np.asarray(out.image, float)
    assert arr.std() > 20


def test_cli_real_run(tmp_path, shared_images, st):
    from gatys.weights import default_local_dir

    out = tmp_path / "out.png"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatys",
            str(shared_images / "tubingen.jpg"),
            str(shared_images / "starry_night.jpg"),
            "-o",
            str(out),
            "--size",
            "64",
            "--steps",
            "20",
            "-q",
            "--weights",
            str(default_local_dir()),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "VGG-16 (HED, offline)" in r.stderr
    assert Image.open(out).size == (64, 48)


def test_instant_benchmark_reports_fig5_and_the_refine_runs(tmp_path, shared_images, st):
    """`python -m benchmarks.instant` end to end on a shipped model, tiny: every table row and image is written."""
    import json

    from benchmarks import instant

    out = tmp_path / "bench"
    argv = ["--model", "starry-night", "--sections", "fig5,product", "--noise", "--eval-size", "48", "--steps", "4"]
    assert instant.main([*argv, "--photos", "tubingen", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    fig5, product = results["fig5"][0], results["product"][0]
    assert len(fig5["trace"]) == len(fig5["noise_trace"]) == 4 and "from white noise" in report
    assert fig5["noise_trace"][0] > fig5["photo_loss"]  # grey noise is further from the objective than the photo
    assert len(product["trace"]) == 4 and product["photo_start_loss"] == product["trace"][-1]
    reached = product["refine_steps"] is not None
    assert reached == (min(product["refine_trace"]) <= product["photo_start_loss"])
    if reached:  # the run from the network stopped at the first step at or under the photo run's loss
        assert len(product["refine_trace"]) == product["refine_steps"]
    for name in ("fig5_tubingen.jpg", "product_tubingen.jpg"):
        assert Image.open(out / name).size[0] > 4 * 48

"""Whatever a person uploads becomes RGB or a clear one-line error."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from helpers import make_image
from PIL import Image

from gatys import image as im
from gatys.errors import ImageError


def _roundtrip(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return im.load_image(path)


def test_rgba_flattened_on_white(tmp_path):
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red
    out = _roundtrip(rgba, tmp_path / "a.png")
    assert out.mode == "RGB" and out.getpixel((5, 5)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (20, 20), 0)
    p.putpalette([0, 0, 255] * 256)
    p.info["transparency"] = 0
    out = _roundtrip(p, tmp_path / "p.png", transparency=0)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)


def test_grayscale_expanded(tmp_path):
    out = _roundtrip(Image.new("L", (20, 20), 128), tmp_path / "g.png")
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (128, 128, 128)


def test_16bit_grayscale_png(tmp_path):
    arr = np.full((20, 20), 65535 // 2, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = im.load_image(tmp_path / "g16.png")
    assert out.mode == "RGB" and abs(out.getpixel((0, 0))[0] - 127) <= 1


def test_16bit_array_and_float_array():
    assert im.load_image(np.full((20, 20, 3), 65535, np.uint16)).getpixel((0, 0)) == (255, 255, 255)
    assert im.load_image(np.full((20, 20, 3), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    with pytest.raises(ImageError, match="NaN"):
        im.load_image(np.full((20, 20, 3), np.nan, np.float32))
    with pytest.raises(ImageError, match="shape"):
        im.load_image(np.zeros((2, 3, 4, 5)))


def test_cmyk_converted(tmp_path):
    out = _roundtrip(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), tmp_path / "c.jpg")
    r, g, b = out.getpixel((10, 10))
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation_applied(tmp_path):
    img = make_image(40, 20)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert im.load_image(tmp_path / "r.jpg").size == (20, 40)


def test_tensor_input():
    t = torch.rand(1, 3, 20, 24)
    out = im.load_image(t)
    assert out.size == (24, 20)
    assert torch.allclose(im.to_tensor(out), t, atol=1 / 255)


def test_corrupt_and_non_image_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageError, match="not an image file we can read; use PNG, JPEG or WebP"):
        im.load_image(tmp_path / "notes.txt")
    buf = io.BytesIO()
    make_image(64, 64).save(buf, "PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[:200])
    with pytest.raises(ImageError, match="damaged or truncated|not an image"):
        im.load_image(tmp_path / "trunc.png")
    with pytest.raises(ImageError, match="not found"):
        im.load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        im.load_image(tmp_path)
    with pytest.raises(ImageError, match="unsupported type int"):
        im.load_image(42)
    with pytest.raises(ImageError, match="no image given"):
        im.load_image(None)


def test_one_pixel_image_rejected(tmp_path):
    img = _roundtrip(Image.new("RGB", (1, 1)), tmp_path / "one.png")
    with pytest.raises(ImageError, match=r"1x1 px; each side must be at least 16 px"):
        im.resize_longest(img, 1)


def test_huge_image_downscaled_or_refused(tmp_path):
    wide = Image.new("RGB", (20000, 600), (10, 20, 30))
    wide.save(tmp_path / "wide.png")
    img = im.load_image(tmp_path / "wide.png")
    small = im.resize_longest(img, 1024)
    assert small.size == (1024, 31)
    with pytest.raises(ImageError, match="crop a very wide") as e:
        im.resize_longest(img, 256)  # 20000:600 at 256 px leaves 8 px
    assert "a larger output size" in str(e.value) and "--" not in str(e.value)  # the library names no CLI flag


def test_pixel_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "MAX_PIXELS", 1000)
    make_image(40, 40).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="over the 0 MP limit; downscale it first"):
        im.load_image(tmp_path / "big.png")


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")

    def boom(self, fp, format=None, **kw):
        fp.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        im.save_image(make_image(), target)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"], "no temporary file left behind"


def test_output_path_checked(tmp_path):
    with pytest.raises(ImageError, match="unknown suffix"):
        im.check_output_path(tmp_path / "out.gif2")
    with pytest.raises(ImageError, match="does not exist"):
        im.check_output_path(tmp_path / "nope" / "out.png")


def test_luminance_and_chroma_roundtrip():
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(im.yiq_to_rgb(im.rgb_to_yiq(x)), x, atol=1e-5)
    y = im.luminance(x)
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 0], y[:, 2])
    # luminance of x with the chroma of x gives back x (within the clamp)
    assert torch.allclose(im.with_chroma_of(x, x), x.clamp(0, 1), atol=1e-4)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_follow_the_umask_not_the_temporary_files_0600(tmp_path, umask):
    from gatys.image import save_image, write_atomic

    old = os.umask(umask)
    try:
        png = save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png")
        txt = write_atomic(tmp_path / "notes.txt", b"x", fsync=True)
    finally:
        os.umask(old)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask == txt.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out.png"]  # no temporary left
    assert write_atomic(tmp_path / "notes.txt", "é").read_text(encoding="utf-8") == "é"  # text as UTF-8

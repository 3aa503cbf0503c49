"""Every conversion between image files, PIL images, arrays and tensors, and input validation.

Whatever a person uploads (a path, bytes, a PIL image, a NumPy array or a tensor; RGBA, palette,
grayscale, CMYK, 16-bit, EXIF-rotated) becomes an RGB ``PIL.Image`` here, or a one-line ``ImageError``
saying what to do. Tensors are (1, 3, H, W), float32, RGB in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, torch.Tensor]  # noqa: UP007 (a runtime alias on 3.10)

#: Smallest side the network accepts: conv5_1 sits after four 2x poolings, so 16 px leaves it 1 px.
MIN_SIDE = 16
#: Refuse to decode more than this many pixels (about 15000 x 13000); protects memory on shared servers.
MAX_PIXELS = 200_000_000
#: Formats we write, by file suffix.
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def _describe(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    return type(src).__name__


def load_image(src: ImageInput, *, max_side: int | None = None, name: str = "image") -> Image.Image:
    """Read anything image-like into an RGB PIL image.

    Args:
        src: a path, encoded bytes, a PIL image, an (H, W), (H, W, 3|4) array, or a (3, H, W) tensor in [0, 1].
        max_side: when given, large JPEGs are decoded at a reduced size no smaller than this (faster, less memory).
        name: what to call the image in error messages ("content image", "style image 2").

    Returns:
        An RGB image with EXIF orientation applied and any transparency flattened onto white.
    """
    if src is None:
        raise ImageError(f"no {name} given; pass a file path or an image")
    if isinstance(src, Image.Image):
        img = src
    elif isinstance(src, torch.Tensor):
        return _from_tensor(src, name)
    elif isinstance(src, np.ndarray):
        return _from_array(src, name)
    elif isinstance(src, (bytes, bytearray)):
        img = _open(io.BytesIO(src), name, "the given bytes")
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{name} not found: {path}; check the path")
        if path.is_dir():
            raise ImageError(f"{name} {path} is a folder; give an image file")
        img = _open(path, name, str(path))
    else:
        raise ImageError(
            f"{name} has unsupported type {type(src).__name__}; pass a file path, bytes, PIL image, array or tensor"
        )
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name} is {w}x{h} px ({w * h / 1e6:.0f} MP), over the {MAX_PIXELS / 1e6:.0f} MP limit; downscale it first"
        )
    if max_side and img.format == "JPEG" and max(w, h) > 2 * max_side:
        img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale; never below max_side
    try:
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{name} {_describe(src)} is damaged or truncated ({e}); re-export it as PNG or JPEG") from e


def _open(fp: Any, name: str, where: str) -> Image.Image:
    try:
        img = Image.open(fp)
        img.size  # noqa: B018 - header parsed
        return img
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name} {where} is too large to decode safely ({e}); downscale it first") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{name} {where} is not an image file we can read; use PNG, JPEG or WebP") from e


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        img.load()
        return img
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _from_array(np.asarray(img), "image")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        if img.mode == "RGB":
            return img
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"{name} array has shape {a.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if a.size == 0:
        raise ImageError(f"{name} is empty")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        f = a.astype(np.float64)
        if not np.isfinite(f).all():
            raise ImageError(f"{name} contains NaN or infinite values")
        if np.issubdtype(a.dtype, np.floating) and f.max(initial=0) <= 1.0:
            f = f * 255.0  # float images in [0, 1]
        elif f.max(initial=0) > 255.0:
            f = f / 257.0  # 16-bit: 65535 -> 255
        a = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(a))
    return _to_rgb(img)


def _from_tensor(t: torch.Tensor, name: str) -> Image.Image:
    t = t.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ImageError(f"{name} tensor has shape {tuple(t.shape)}; expected (3, H, W) or (1, 3, H, W)")
    if t.dtype == torch.uint8:
        return _from_array(t.permute(1, 2, 0).numpy(), name)
    return _from_array(t.float().clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32), name)


def check_size(img: Image.Image, name: str = "image") -> None:
    """Raise ImageError if an image is too small for the network."""
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(
            f"{name} is {w}x{h} px; each side must be at least {MIN_SIDE} px after resizing "
            "(use a larger image, a larger output size, or crop a very wide/tall image)"
        )


def longest_side_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """The (width, height) that :func:`resize_longest` gives an image of ``shape`` (width, height)."""
    w, h = shape
    scale = size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_longest(img: Image.Image, size: int, name: str = "image") -> Image.Image:
    """Resize so the longest side is ``size`` px, keeping the aspect ratio; checks the result's size."""
    new = longest_side_shape(img.size, size)
    out = img if new == img.size else img.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    check_size(out, name)
    return out


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float32 in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(t: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> RGB PIL image (values clipped)."""
    t = t.detach()
    if t.ndim == 4:
        t = t[0]
    arr = (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def check_output_path(path: str | os.PathLike) -> Path:
    """Validate an output path before any compute: known suffix, writable folder."""
    p = Path(path)
    if p.suffix.lower() not in WRITE_FORMATS:
        raise ImageError(f"cannot write {p.name}: unknown suffix; use one of {', '.join(sorted(WRITE_FORMATS))}")
    check_output_folder(p)
    return p


def check_output_folder(path: Path) -> None:
    """The folder ``path`` would be written to exists and is writable; else a one-line ImageError."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ImageError(f"output folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise ImageError(f"output folder {parent} is not writable")


def _umask() -> int:
    mask = os.umask(0o022)  # Python has no way to read the umask without setting it; restored at once
    os.umask(mask)
    return mask


def write_atomic(
    path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], Any], *, fsync: bool = False
) -> Path:
    """Write ``data`` (text as UTF-8, bytes, or a function that writes to a binary file) to a temporary file
    beside ``path``, then rename it over ``path``: a reader never sees half a file, and an error or Ctrl-C
    leaves the old one.

    The file gets the permissions any new file would (0666 less the umask), not mkstemp's private 0600.
    ``fsync`` flushes it to disk before the rename (checkpoints).
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (str, bytes)):
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                data(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


#: Encoder options per format: JPEG and WebP at print quality (Pillow's default JPEG quality is 75), TIFF
#: compressed losslessly (an uncompressed 4096 x 3072 TIFF is 36 MB).
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "TIFF": {"compression": "tiff_deflate"},
}


def icc_profile(src: ImageInput) -> bytes | None:
    """The ICC colour profile embedded in an image file (path or bytes) or PIL image; None when there is none.

    Outputs carry the content's profile (:func:`save_image`), since their pixels are in the content's colour
    space. EXIF orientation needs no carrying: :func:`load_image` has already turned the pixels upright.
    """
    try:
        if isinstance(src, Image.Image):
            return src.info.get("icc_profile") or None
        if isinstance(src, (bytes, bytearray)):
            with Image.open(io.BytesIO(src)) as img:
                return img.info.get("icc_profile") or None
        if isinstance(src, (str, os.PathLike)):
            with Image.open(src) as img:
                return img.info.get("icc_profile") or None
    except (OSError, ValueError, SyntaxError):
        return None
    return None


#: Formats that take 16 bits per channel (:func:`save_image` with ``bits=16``).
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")


def check_bits(path: str | os.PathLike, bits: int) -> None:
    """``bits`` is 8 or 16, and 16 only for a PNG or TIFF ``path``; else a one-line ImageError."""
    if bits not in (8, 16):
        raise ImageError(f"bits must be 8 or 16, got {bits}")
    fmt = WRITE_FORMATS.get(Path(path).suffix.lower())
    if bits == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise ImageError(f"cannot write 16 bits per channel to {Path(path).name}; use a .png, .tif or .tiff file")


def save_image(
    img: Image.Image | torch.Tensor, path: str | os.PathLike, *, icc_profile: bytes | None = None, bits: int = 8
) -> Path:
    """Write atomically (see :func:`write_atomic`), in the format the suffix names (PNG, JPEG, WebP, TIFF, BMP).

    Args:
        img: an RGB PIL image, or a (1, 3, H, W) / (3, H, W) tensor in [0, 1].
        icc_profile: embed this colour profile (PNG, JPEG, WebP and TIFF; BMP has no place for one).
        bits: 8, or 16 per channel (PNG and TIFF only): from a tensor, the values rounded to 1/65535 rather
            than 1/255, which keeps smooth gradients (skies) free of banding in print workflows.
    """
    p = check_output_path(path)
    check_bits(p, bits)
    fmt = WRITE_FORMATS[p.suffix.lower()]
    if bits == 16:
        t = img if isinstance(img, torch.Tensor) else to_tensor(img)
        arr = _to_uint16(t)
        write = _write_png16 if fmt == "PNG" else _write_tiff16
        return write_atomic(p, lambda f: f.write(write(arr, icc_profile)))
    if isinstance(img, torch.Tensor):
        img = to_pil(img)
    options = dict(_SAVE_OPTIONS.get(fmt, {}))
    if icc_profile and fmt != "BMP":
        options["icc_profile"] = icc_profile
    return write_atomic(p, lambda f: img.save(f, format=fmt, **options))


def _to_uint16(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint16 (values clipped)."""
    t = t.detach()
    if t.ndim == 4:
        t = t[0]
    scaled = (t.float().clamp(0, 1) * 65535.0).round().to(torch.int32)
    return np.ascontiguousarray(scaled.permute(1, 2, 0).cpu().numpy().astype(np.uint16))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _write_png16(arr: np.ndarray, icc_profile: bytes | None) -> bytes:
    """A 48-bit RGB PNG (PNG spec 1.2: colour type 2, bit depth 16, big-endian samples) with an iCCP chunk.

    Pillow has no 16-bit RGB mode, so the file is assembled here: every row uses the Sub filter (each byte
    less the byte 6 before it, the same channel of the pixel to the left), which compresses smooth images.
    """
    h, w, _ = arr.shape
    rows = arr.astype(">u2").view(np.uint8).reshape(h, w * 6)
    filtered = np.empty((h, w * 6 + 1), np.uint8)
    filtered[:, 0] = 1  # Sub
    filtered[:, 1:7] = rows[:, :6]
    filtered[:, 7:] = rows[:, 6:] - rows[:, :-6]  # uint8 arithmetic wraps modulo 256, as the filter defines
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))]
    if icc_profile:
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    data = zlib.compress(filtered.tobytes(), 6)
    for i in range(0, max(len(data), 1), 1 << 20):  # IDAT chunks of 1 MiB, as encoders commonly write
        out.append(_png_chunk(b"IDAT", data[i : i + (1 << 20)]))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _write_tiff16(arr: np.ndarray, icc_profile: bytes | None) -> bytes:
    """A 48-bit RGB baseline TIFF (little-endian, chunky), Deflate-compressed in strips of 64 rows with the
    horizontal-differencing predictor, and the ICC profile in tag 34675."""
    h, w, _ = arr.shape
    diff = arr.copy()
    diff[:, 1:] -= arr[:, :-1]  # predictor 2: each sample less its left neighbour's, modulo 2^16
    raw = diff.astype("<u2")
    strips = [zlib.compress(raw[y : y + 64].tobytes(), 6) for y in range(0, h, 64)]
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value (4 bytes inline or data)
    SHORT, LONG, UNDEFINED = 3, 4, 7

    def short(tag: int, *values: int) -> None:
        entries.append((tag, SHORT, len(values), struct.pack(f"<{len(values)}H", *values)))

    def long(tag: int, *values: int) -> None:
        entries.append((tag, LONG, len(values), struct.pack(f"<{len(values)}I", *values)))

    long(256, w)
    long(257, h)
    short(258, 16, 16, 16)  # BitsPerSample
    short(259, 8)  # Compression: Deflate (Adobe)
    short(262, 2)  # PhotometricInterpretation: RGB
    long(273, *([0] * len(strips)))  # StripOffsets: written below, once the data's position is known
    short(277, 3)  # SamplesPerPixel
    long(278, 64)  # RowsPerStrip
    long(279, *[len(s) for s in strips])  # StripByteCounts
    short(284, 1)  # PlanarConfiguration: chunky
    short(317, 2)  # Predictor: horizontal differencing
    if icc_profile:
        entries.append((34675, UNDEFINED, len(icc_profile), icc_profile))
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = 8 + ifd_size
    extras: list[bytes] = []
    for tag, _, _, value in entries:  # values over 4 bytes live after the IFD (word-aligned)
        if len(value) > 4 and tag != 273:
            extras.append(value + b"\x00" * (len(value) % 2))
    strip_offsets_at = extra_at + sum(len(e) for e in extras)
    data_at = strip_offsets_at + (4 * len(strips) if len(strips) > 1 else 0)
    positions, at = [], data_at
    for s in strips:
        positions.append(at)
        at += len(s)
    ifd = [struct.pack("<H", len(entries))]
    cursor = extra_at
    for tag, typ, count, value in entries:
        if tag == 273:
            value = struct.pack(f"<{len(strips)}I", *positions)
            if len(strips) > 1:
                ifd.append(struct.pack("<HHII", tag, typ, count, strip_offsets_at))
                continue
        if len(value) > 4:
            ifd.append(struct.pack("<HHII", tag, typ, count, cursor))
            cursor += len(value) + len(value) % 2
        else:
            ifd.append(struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00"))
    ifd.append(struct.pack("<I", 0))  # no next IFD
    offsets = struct.pack(f"<{len(strips)}I", *positions) if len(strips) > 1 else b""
    return b"".join([b"II*\x00", struct.pack("<I", 8), *ifd, *extras, offsets, *strips])


# -- colour -------------------------------------------------------------------------------------------------
# YIQ (NTSC), the space Gatys et al. 2016 ("Preserving color in neural artistic style transfer") use.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def rgb_to_yiq(t: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB2YIQ.to(t), t)


def yiq_to_rgb(t: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _YIQ2RGB.to(t), t)


def luminance(t: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 3, H, W) gray image holding the luminance Y in every channel."""
    y = rgb_to_yiq(t)[:, :1]
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """Shift and scale the style's luminance to the content's mean and std (Gatys et al. 2016, Sec. 2.2)."""
    s_mean, s_std = style_y.mean(), style_y.std().clamp_min(1e-6)
    return ((style_y - s_mean) * (content_y.std() / s_std) + content_y.mean()).clamp(0, 1)


def with_chroma_of(luma_rgb: torch.Tensor, color_source: torch.Tensor) -> torch.Tensor:
    """Combine the luminance of ``luma_rgb`` with the I/Q chroma of ``color_source`` (same size)."""
    y = rgb_to_yiq(luma_rgb)[:, :1]
    iq = rgb_to_yiq(color_source)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], 1)).clamp(0, 1)

"""Reading and writing video files with PyAV (FFmpeg's libraries, shipped in the ``av`` wheels).

Private: :mod:`gatys.video` streams frames through here one at a time, so memory stays bounded whatever the
video's length. Every failure becomes a one-line :class:`gatys.errors.ImageError` or ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ConfigError, ImageError
from .image import check_output_folder, write_atomic

#: Containers we write, by suffix, and the FFmpeg muxer for each; frames are H.264 in yuv420p (plays anywhere).
WRITE_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
VIDEO_CODEC = "libx264"
#: x264's constant-rate factor: 18 is "visually lossless" in x264's documentation.
CRF = "18"


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError("video needs PyAV; install it with: pip install 'gatys[video]'") from None
    return av


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame size, frame rate, frame count (as the container states it), audio."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int  # the container's count; 0 when it does not say (decoding tells)
    has_audio: bool


def _open(path: Path) -> Any:
    av = _av()
    if not path.is_file():
        raise ImageError(f"video {path} does not exist; give a video file such as .mp4")
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0]
        raise ImageError(f"cannot read {path} as a video ({reason}); give a video file such as .mp4") from e


def probe(path: str | os.PathLike) -> VideoInfo:
    """The :class:`VideoInfo` of a video file, or a one-line ``ImageError`` (missing, not a video, no frames)."""
    p = Path(path)
    with _open(p) as c:
        if not c.streams.video:
            raise ImageError(f"{p} has no video stream (or no frames); give a video with at least one frame")
        v = c.streams.video[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate or Fraction(25)
        width, height = v.codec_context.width, v.codec_context.height
        frames = int(v.frames or 0)
        has_audio = bool(c.streams.audio)
    if not width or not height:
        raise ImageError(f"{p} has a video stream without frames; give a video with at least one frame")
    return VideoInfo(p, int(width), int(height), Fraction(rate), frames, has_audio)


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a video as (H, W, 3) uint8 RGB arrays, decoded one at a time."""
    av = _av()
    p = Path(path)
    with _open(p) as c:
        if not c.streams.video:
            raise ImageError(f"{p} has no video stream; give a video file such as .mp4")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in c.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise ImageError(f"{p} is damaged: decoding stopped ({str(e).splitlines()[0]})") from e


def check_output(path: str | os.PathLike) -> Path:
    """Validate an output video path before any compute: a suffix we can write, an existing writable folder."""
    p = Path(path)
    if p.suffix.lower() not in WRITE_CONTAINERS:
        raise ConfigError(f"cannot write {p.name}: unknown video suffix; use one of {', '.join(WRITE_CONTAINERS)}")
    check_output_folder(p)
    return p


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: Fraction, *, audio_from: Path | None = None
) -> str:
    """Encode RGB frames (all of one even size) as H.264 into ``path`` atomically; copy ``audio_from``'s first
    audio track when given.

    Returns:
        What became of the audio: ``"copied"``, ``"none"`` or ``"dropped (<reason>)"``.
    """
    av = _av()
    p = check_output(path)
    audio = {"state": "none"}

    def write(f: BinaryIO) -> None:
        with av.open(f, mode="w", format=WRITE_CONTAINERS[p.suffix.lower()]) as out:
            v = None
            a_in, a_out, src = None, None, None
            if audio_from is not None:
                src = av.open(str(audio_from), mode="r")
                if src.streams.audio:
                    a_in = src.streams.audio[0]
                    try:
                        a_out = out.add_stream_from_template(a_in)
                    except (av.FFmpegError, ValueError) as e:
                        audio["state"] = f"dropped ({str(e).splitlines()[0]})"
            try:
                for arr in frames:
                    if v is None:
                        v = out.add_stream(VIDEO_CODEC, rate=fps, options={"crf": CRF})
                        v.height, v.width = arr.shape[:2]
                        v.pix_fmt = "yuv420p"
                    for packet in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                        out.mux(packet)
                if v is None:
                    raise ImageError(f"no frames to write into {p}")
                for packet in v.encode():
                    out.mux(packet)
                if a_in is not None and a_out is not None and src is not None:
                    # The audio is remuxed as it is (no re-encoding, so no loss); packets without a timestamp
                    # (flush packets) cannot be placed and are left out.
                    for packet in src.demux(a_in):
                        if packet.dts is None:
                            continue
                        packet.stream = a_out
                        out.mux(packet)
                    audio["state"] = "copied"
            finally:
                if src is not None:
                    src.close()

    write_atomic(p, write)
    return audio["state"]

"""Optical flow, warping and the occlusion mask of Ruder, Dosovitskiy & Brox (2016), and their consistency measure.

Private: :mod:`gatys.video` re-exports the public names. Frames are (H, W, C) NumPy arrays; flows (H, W, 2) float32
(dx, dy) in pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .errors import ConfigError

# Sundaram, Brox & Keutzer (2010)'s consistency check, with the constants Ruder et al. use.
_DISOCCLUSION = (0.01, 0.5)  # |w~ + w^|² > 0.01 (|w~|² + |w^|²) + 0.5
_MOTION_BOUNDARY = (0.01, 0.002)  # |∇u^|² + |∇v^|² > 0.01 |w^|² + 0.002


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError("video needs OpenCV; install it with: pip install 'gatys[video]'") from None
    return cv2


def optical_flow(frame_from: np.ndarray, frame_to: np.ndarray) -> np.ndarray:
    """Dense flow from one RGB uint8 frame to another, (H, W, 2) float32 (dx, dy): ``frame_to[p] ≈
    frame_from[p + flow[p]]`` reads as "where pixel p of ``frame_to`` came from" when called (t, t-1).

    OpenCV's DIS flow (Kroeger et al. 2016), preset MEDIUM: a maintained, fast CPU method; the paper used
    DeepFlow and EpicFlow, which are slower and not on PyPI.
    """
    cv2 = _cv2()
    a = cv2.cvtColor(np.ascontiguousarray(frame_from), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(np.ascontiguousarray(frame_to), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None).astype(np.float32)


def _sample(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` read at ``p + flow[p]`` for every pixel p (bilinear, borders replicated)."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(
        np.ascontiguousarray(img, dtype=np.float32),
        gx + flow[..., 0],
        gy + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def warp(image: np.ndarray, backward_flow: np.ndarray) -> np.ndarray:
    """Frame t-1 (H, W, C) float, moved to frame t along ``backward_flow`` (flow from t to t-1)."""
    out = _sample(image, backward_flow)
    return out if out.ndim == image.ndim else out[..., None]


def consistency_mask(forward_flow: np.ndarray, backward_flow: np.ndarray) -> np.ndarray:
    """c in Ruder et al.'s temporal loss, (H, W) float32: 0 where pixel p of frame t is disoccluded, on a motion
    boundary, or came from outside frame t-1; 1 elsewhere.

    Args:
        forward_flow: flow from t-1 to t. backward_flow: flow from t to t-1.
    """
    h, w = backward_flow.shape[:2]
    fw_at = _sample(forward_flow, backward_flow)  # w~(p) = w(p + w^(p))
    a, b = _DISOCCLUSION
    disoccluded = ((fw_at + backward_flow) ** 2).sum(-1) > a * ((fw_at**2).sum(-1) + (backward_flow**2).sum(-1)) + b
    du = np.gradient(backward_flow[..., 0])
    dv = np.gradient(backward_flow[..., 1])
    grad2 = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    a, b = _MOTION_BOUNDARY
    boundary = grad2 > a * (backward_flow**2).sum(-1) + b
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = gx + backward_flow[..., 0], gy + backward_flow[..., 1]
    outside = (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


@dataclasses.dataclass
class Motion:
    """From frame t-1 to frame t: both flows and the consistency mask."""

    forward: np.ndarray  # t-1 -> t
    backward: np.ndarray  # t -> t-1
    mask: np.ndarray  # (H, W), 1 where the flow is reliable

    @classmethod
    def between(cls, previous: np.ndarray, current: np.ndarray) -> Motion:
        """The motion between two RGB uint8 content frames, by :func:`optical_flow`."""
        fw, bw = optical_flow(previous, current), optical_flow(current, previous)
        return cls(fw, bw, consistency_mask(fw, bw))

    def warp(self, image: np.ndarray) -> np.ndarray:
        return warp(image, self.backward)


def temporal_error(current: np.ndarray, previous: np.ndarray, motion: Motion) -> float:
    """The paper's temporal consistency measure for one frame pair: mean of (s_t - warp(s_{t-1}))² over the pixels
    (and channels) that ``motion.mask`` keeps, images as floats in [0, 1]."""
    diff = (np.asarray(current, np.float32) - motion.warp(np.asarray(previous, np.float32))) ** 2
    m = motion.mask[..., None]
    return float((diff * m).sum() / max(m.sum() * diff.shape[-1], 1.0))

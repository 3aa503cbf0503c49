"""gatys: neural style transfer after Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015).

Example:
    >>> from gatys import StyleTransfer
    >>> st = StyleTransfer.from_pretrained()
    >>> st.stylize("photo.jpg", "painting.jpg", size=256).image.save("out.png")
"""

from .errors import ConfigError, GatysError, ImageError, WeightsError
from .feedforward import FastStyle
from .presets import PRESETS, Preset
from .transfer import Plan, Snapshot, StepInfo, StyleTransfer, StylizeOutput

__all__ = [
    "StyleTransfer",
    "FastStyle",
    "StylizeOutput",
    "Plan",
    "StepInfo",
    "Snapshot",
    "Preset",
    "PRESETS",
    "GatysError",
    "ImageError",
    "WeightsError",
    "ConfigError",
]
__version__ = "0.1.0"

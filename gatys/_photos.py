"""Training photos: any folder of images, recursive; random crops and flips, reproducible by step.

Every random choice (the order of photos in an epoch, each crop, each flip) is a function of the seed and the
sample's global index, never of a generator's running state. So a run resumed from step k sees exactly the
batches an uninterrupted run sees, and N processes that each take their slice of a global batch see what one
process with the whole batch sees.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch

from .errors import ConfigError, ImageError
from .image import load_image, resize_longest, to_tensor
from .weights import natural_key

#: File suffixes treated as photos; other files in the folder (manifests, notes) are ignored, not counted.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
#: Crops are taken after scaling the shorter side to between 1x and this times the crop size: more distinct
#: crops from a few hundred photos (the paper had 80k COCO images and resized each to 256x256 once).
MAX_ZOOM = 1.5


@dataclasses.dataclass(frozen=True)
class PhotoSet:
    """The readable photos of a folder, in a fixed order, and the files that could not be read."""

    root: Path
    files: tuple[Path, ...]
    unreadable: tuple[Path, ...]


def image_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` with an image suffix, sorted naturally by relative path."""
    found = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(found, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def scan(folder: str | os.PathLike, *, exclude: tuple[Path, ...] = ()) -> PhotoSet:
    """Find and test-decode the photos under ``folder`` (small, fast JPEG drafts); raise if none is usable.

    Args:
        folder: a folder of images, searched recursively.
        exclude: files to leave out (the held-out sample photos).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"data folder {root} not found; give a folder of photos (--data)")
    skip = {p.resolve() for p in exclude}
    candidates = [p for p in image_files(root) if p.resolve() not in skip]
    if not candidates:
        raise ConfigError(f"data folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); add photos")
    good, bad = [], []
    for p in candidates:
        try:
            load_image(p, max_side=32)
            good.append(p)
        except ImageError:
            bad.append(p)
    if not good:
        raise ConfigError(f"data folder {root}: none of its {len(bad)} image files can be read; are they damaged?")
    return PhotoSet(root, tuple(good), tuple(bad))


def _generator(*keys: int) -> torch.Generator:
    # Mix the keys into one 63-bit seed; distinct (seed, epoch) or (seed, sample) pairs give distinct streams.
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h ^ (k + 0x632BE59BD9B4E5B)) * 0x100000001B3 % (1 << 63)
    return torch.Generator().manual_seed(h)


class Batches:
    """Batches of random square crops for a step, the same for any process count and across resumes.

    Example:
        >>> batches = Batches(scan("photos"), size=256, seed=0, global_batch=4)  # doctest: +SKIP
        >>> x, skipped = batches.get(step=0, rank=0, world=1)  # doctest: +SKIP
    """

    def __init__(self, photos: PhotoSet, *, size: int, seed: int, global_batch: int):
        self.photos, self.size, self.seed, self.global_batch = photos, size, seed, global_batch
        self._perm: tuple[int, torch.Tensor] | None = None

    def _photo_index(self, sample: int) -> int:
        n = len(self.photos.files)
        epoch, pos = divmod(sample, n)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, torch.randperm(n, generator=_generator(self.seed, 1, epoch)))
        return int(self._perm[1][pos])

    def crop(self, path: Path, sample: int) -> torch.Tensor:
        """A random square crop of ``path``, randomly flipped, (3, size, size) in [0, 1]."""
        gen = _generator(self.seed, 2, sample)
        u = torch.rand(4, generator=gen).tolist()
        img = load_image(path, name="training photo")
        w, h = img.size
        short = self.size * (1.0 + (MAX_ZOOM - 1.0) * u[0])
        img = resize_longest(img, max(self.size, math.ceil(max(w, h) * short / min(w, h))), "training photo")
        w, h = img.size
        x = to_tensor(img)[0]
        left, top = int(u[1] * (w - self.size + 1)), int(u[2] * (h - self.size + 1))
        x = x[:, top : top + self.size, left : left + self.size]
        if x.shape[-2:] != (self.size, self.size):  # a very wide photo's short side rounds below size
            x = torch.nn.functional.interpolate(x[None], size=(self.size, self.size), mode="bilinear")[0]
        return x.flip(-1) if u[3] < 0.5 else x

    def get(self, *, step: int, rank: int, world: int) -> tuple[torch.Tensor, int]:
        """This process's slice of the global batch of ``step``, and how many photos failed to load."""
        per = self.global_batch // world
        crops, skipped = [], 0
        n = len(self.photos.files)
        for k in range(rank * per, (rank + 1) * per):
            sample = step * self.global_batch + k
            index = self._photo_index(sample)
            for attempt in range(n):  # a photo that fails now (deleted, damaged since the scan) is replaced
                try:
                    crops.append(self.crop(self.photos.files[(index + attempt) % n], sample))
                    break
                except ImageError:
                    skipped += 1
            else:
                raise ImageError(f"no photo under {self.photos.root} can be read any more")
        return torch.stack(crops), skipped

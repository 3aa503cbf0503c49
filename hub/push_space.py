"""Assemble the Hugging Face Space (app.py, gatys, hub/styles, spaces/README.md and requirements.txt) and upload it.

    python -m hub.push_space --repo-id NAME                      # create or update the Space
    python -m hub.push_space --repo-id NAME --dry-run [--out DIR]  # write the folder locally and list it

The Space runs ``app.py`` on the SDK version pinned in ``spaces/README.md``; its weights are the Hub default
(``timm/vgg19.tv_in1k``), fetched at build time by ``preload_from_hub``. When ``../shared/images`` is present the
three example images (Tübingen, The Starry Night, The Shipwreck of the Minotaur) go into ``examples/``.
The token comes from ``HF_TOKEN`` or ``hf auth login``; it is never printed or written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from hub.push import LOGIN_HINT, repo_id_problem

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "images"
#: The example rows app.py offers, by file name (they need tubingen.jpg; the others pair with it).
EXAMPLE_IMAGES = ("tubingen.jpg", "starry_night.jpg", "shipwreck.jpg")
DEFAULT_OUT = ROOT / "space_build"


def assemble(out: Path, *, examples: bool = True) -> list[Path]:
    """Write the Space folder to ``out`` (replacing an earlier build there) and return its files, relative."""
    if out.exists() and any(out.iterdir()):
        if not ((out / "app.py").is_file() and (out / "gatys").is_dir()):
            raise ValueError(f"{out} is not empty and not an earlier Space build; give an empty or new --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "app.py", out / "app.py")
    shutil.copy2(ROOT / "spaces" / "README.md", out / "README.md")
    shutil.copy2(ROOT / "spaces" / "requirements.txt", out / "requirements.txt")
    (out / "gatys").mkdir()
    for src in sorted((ROOT / "gatys").glob("*.py")):
        shutil.copy2(src, out / "gatys" / src.name)
    # The project's instant styles (fp16, about 0.5 MB each): found by name beside the gatys package.
    for model in sorted(p.parent for p in (ROOT / "hub" / "styles").glob("*/config.json")):
        shutil.copytree(model, out / "hub" / "styles" / model.name)
    if examples and all((SHARED_IMAGES / name).is_file() for name in EXAMPLE_IMAGES):
        (out / "examples").mkdir()
        for name in EXAMPLE_IMAGES:
            shutil.copy2(SHARED_IMAGES / name, out / "examples" / name)
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())


def listing(out: Path, files: list[Path]) -> str:
    lines = []
    for rel in files:
        size = (out / rel).stat().st_size
        lines.append(f"  {str(rel):<32} {size / 1e3:>8.1f} kB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.push_space", description=__doc__.split("\n")[0])
    parser.add_argument("--repo-id", required=True, help="NAMESPACE/NAME of the Space on the Hub")
    parser.add_argument("--dry-run", action="store_true", help="write the Space folder and list it; upload nothing")
    parser.add_argument("--out", type=Path, help=f"where --dry-run writes the folder [{DEFAULT_OUT.relative_to(ROOT)}]")
    parser.add_argument(
        "--private", action="store_true", help="create the Space private (an existing one keeps its visibility)"
    )
    parser.add_argument("--no-examples", action="store_true", help="leave the example images out")
    parser.add_argument("--commit-message", help="commit message")
    args = parser.parse_args(argv)

    from huggingface_hub import get_token
    from huggingface_hub.utils import HfHubHTTPError

    if (problem := repo_id_problem(args.repo_id)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    token = None
    if not args.dry_run:
        token = get_token()
        if not token:
            print(f"error: {LOGIN_HINT}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="gatys-space-") as tmp:
        out = (args.out or DEFAULT_OUT) if args.dry_run else (args.out or Path(tmp))
        try:
            files = assemble(out, examples=not args.no_examples)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"Space folder {out} ({len(files)} files) for https://huggingface.co/spaces/{args.repo_id}:")
        print(listing(out, files))
        if args.dry_run:
            print(f"dry run: nothing uploaded. Try it with: cd {out} && python app.py")
            return 0
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        try:
            api.create_repo(args.repo_id, repo_type="space", space_sdk="gradio", private=args.private, exist_ok=True)
            info = api.upload_folder(
                folder_path=str(out),
                repo_id=args.repo_id,
                repo_type="space",
                # Files this build no longer has (a removed module, say) are deleted from the Space.
                delete_patterns=["*.py", "gatys/*", "examples/*"],
                commit_message=args.commit_message or "Update the Space (gatys hub.push_space)",
            )
        except (HfHubHTTPError, OSError, ValueError) as e:
            # Hub errors are multi-line and never contain the token; the first line says what failed.
            print(f"error: upload to {args.repo_id} failed: {str(e).strip().splitlines()[0]}", file=sys.stderr)
            return 1
    print(f"pushed: {getattr(info, 'commit_url', info)}")
    print(f"the Space builds and starts at https://huggingface.co/spaces/{args.repo_id} in a few minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

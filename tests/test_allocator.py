"""gatys.allocator: the process-wide glibc malloc tuning, its switch (argument and GATYS_TUNE_MALLOC) and its effect."""

from __future__ import annotations

import pytest
import torch

from gatys import allocator


def test_tune_allocator_is_idempotent_and_harmless():
    first = allocator.tune_allocator()
    assert allocator.tune_allocator() is first
    assert allocator.is_tuned() is first
    assert allocator.enabled() or not first
    a = torch.arange(10_000_000, dtype=torch.float32)  # 40 MB: above glibc's largest mmap threshold
    assert a.sum().item() == pytest.approx(49999995000000.0, rel=1e-6)
    del a
    allocator.release_memory()
    allocator.release_memory()
    b = torch.ones(10_000_000)
    assert b.sum().item() == 10_000_000


def test_tuned_allocator_reuses_large_blocks():
    """In a fresh process (what earlier tests allocated must not decide it), 64 MB tensors reuse heap pages."""
    import json
    import subprocess
    import sys

    code = """
import json, resource, torch
from gatys import allocator
ok = allocator.tune_allocator()
faults = []
for _ in range(4):  # 64 MB, above glibc's mmap threshold: untuned, every one is mapped afresh
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16_000_000).sum()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"ok": ok, "faults": faults}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        pytest.skip("malloc tuning needs glibc and no GATYS_TUNE_MALLOC=0")
    faults = result["faults"]
    pages = 16_000_000 * 4 // 4096
    assert min(faults[1:]) < pages // 4, faults  # reused from the heap: (almost) no page faults


def test_allocator_opt_out(monkeypatch):
    monkeypatch.setattr(allocator, "_tuned", False)
    monkeypatch.setenv(allocator.ENV_VAR, "0")
    assert not allocator.enabled()
    assert allocator.tune_allocator() is False
    allocator.release_memory()  # a no-op when not tuned
    monkeypatch.setenv(allocator.ENV_VAR, "1")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert not allocator.enabled()  # the user's own malloc tunables win


def test_stylize_tunes_allocator_on_cpu(tiny_st, content_img, style_img):
    tiny_st.stylize(content_img, style_img, size=32, steps=2)
    assert allocator.is_tuned() or not allocator.enabled()


def test_allocator_switch_argument_beats_env(monkeypatch):
    monkeypatch.setenv(allocator.ENV_VAR, "0")
    assert not allocator.enabled() and not allocator.enabled(False)
    assert allocator.enabled(True) == (allocator._libc() is not None)
    monkeypatch.setenv(allocator.ENV_VAR, "1")
    assert not allocator.enabled(False)


@pytest.mark.parametrize("tune_malloc", [None, False, True])
def test_style_transfer_passes_its_malloc_switch(tiny_net, content_img, style_img, monkeypatch, tune_malloc):
    from gatys import StyleTransfer

    asked = []
    monkeypatch.setattr(allocator, "tune_allocator", lambda requested=None: asked.append(requested) or False)
    st = StyleTransfer(tiny_net, device="cpu", tune_malloc=tune_malloc)
    st.stylize(content_img, style_img, size=32, steps=1)
    st.reconstruct_content(content_img, "conv1_1", size=32, steps=1)
    assert asked == [tune_malloc, tune_malloc]

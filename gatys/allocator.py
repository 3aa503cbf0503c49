"""glibc malloc settings that let large CPU tensors be reused instead of re-mapped every step.

PyTorch has no caching allocator on CPU: every tensor comes from ``malloc``. glibc serves any request over
its largest dynamic mmap threshold (32 MB on 64-bit) with a fresh ``mmap`` and unmaps it on ``free``, so
each optimisation step at 512 px maps, zero-fills on first touch (a page fault per 4 KiB page) and unmaps
the same activations again: up to 40 % of a step on a 2-core CPU (see ``benchmarks/README.md``).

:func:`tune_allocator` makes glibc serve large requests from its heap (``M_MMAP_MAX = 0``) and keep freed
memory for the next step (a huge ``M_TRIM_THRESHOLD``), the runtime equivalent of
``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736``. Peak memory stays the
same; what is no longer given back between steps is handed back at the end of a run by
:func:`release_memory` (``malloc_trim``), so an idle app does not sit on a run's peak.

:class:`gatys.StyleTransfer` calls both for CPU runs unless told not to: ``StyleTransfer(...,
tune_malloc=False)`` for one instance, ``GATYS_TUNE_MALLOC=0`` for every instance that leaves ``tune_malloc``
unset. Malloc options you set yourself in ``GLIBC_TUNABLES`` are always left alone. The settings are
process-wide and, once applied, stay in effect for the rest of the process (nothing here undoes them).
Elsewhere than glibc (macOS, Windows, musl) both functions do nothing.

Limits, measured: the heap keeps 5-15 % more than the peak live memory (glibc cannot always reuse a freed
block for an aligned request of the same size), which settles after a few steps; and in a thread other than
the main one, glibc still maps requests above its 64 MiB per-thread heap size afresh, so a web app's worker
threads gain less at sizes whose activations exceed 64 MiB (512 px squares and up).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

#: Environment variable that switches the tuning off when set to 0, false, no or off (the default is on).
ENV_VAR = "GATYS_TUNE_MALLOC"

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# The largest value mallopt's int takes (2 GiB): above what a step frees at the top of the heap up to
# 1024 px, i.e. "do not trim between steps". (GLIBC_TUNABLES takes size_t, hence 64 GiB there.)
_TRIM_THRESHOLD = 2**31 - 1

_lock = threading.Lock()
_tuned = False


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def requested_by_env() -> bool:
    """Whether ``GATYS_TUNE_MALLOC`` asks for the tuning: yes unless it is 0, false, no or off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def enabled(requested: bool | None = None) -> bool:
    """Whether the tuning is to be applied here: requested, glibc, and no malloc ``GLIBC_TUNABLES`` of the user's.

    Args:
        requested: True or False decide; None (the default) asks ``GATYS_TUNE_MALLOC``.
    """
    if not (requested_by_env() if requested is None else requested):
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return _libc() is not None


def tune_allocator(requested: bool | None = None) -> bool:
    """Serve large allocations from glibc's heap and keep freed memory for reuse; once per process.

    Args:
        requested: as for :func:`enabled`; False leaves the allocator as it is (it does not undo an earlier
            call: the settings are process-wide).

    Returns:
        True when the settings are in effect (now or from an earlier call), False when not applied
        (opted out, not glibc, or glibc refused).
    """
    global _tuned
    with _lock:
        if _tuned:
            return True
        if not enabled(requested):
            return False
        libc = _libc()
        assert libc is not None
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        # mallopt returns 1 on success.
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
        _tuned = ok
        return ok


def release_memory() -> None:
    """Give free heap memory back to the OS (``malloc_trim(0)``); a no-op unless :func:`tune_allocator` ran."""
    if not _tuned:
        return
    libc = _libc()
    if libc is not None:
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim(0)


def is_tuned() -> bool:
    """Whether :func:`tune_allocator` has taken effect in this process."""
    return _tuned

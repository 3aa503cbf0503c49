"""Deprecated: ``python -m gatys.reproduce`` is now ``python -m reproduction``, run from a checkout.

Kept for one release: running this module warns (DeprecationWarning, on stderr) and forwards its arguments
to :func:`reproduction.__main__.main`. The library does not import it, nor the reproduction package.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

MESSAGE = (
    "python -m gatys.reproduce is deprecated and will be removed in the next release; "
    "run python -m reproduction from the repository root instead (same arguments)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Warn, then run ``python -m reproduction`` with ``argv``; returns its exit status."""
    warnings.warn(MESSAGE, DeprecationWarning, stacklevel=2)
    try:
        from reproduction.__main__ import main as reproduction_main
    except ModuleNotFoundError as e:
        if e.name != "reproduction":
            raise
        print(
            "gatys.reproduce: error: the reproduction package is not importable; it ships with the "
            "repository, not with the installed library: run python -m reproduction from a checkout",
            file=sys.stderr,
        )
        return 2
    return reproduction_main(argv)


if __name__ == "__main__":
    sys.exit(main())

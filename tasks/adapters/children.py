"""Child processes that die with their parent: a ``kill -9`` of ``bua run`` runs no exit handler,
so each child asks the kernel (Linux PR_SET_PDEATHSIG) for SIGKILL when the thread that started it
ends. Elsewhere this is a no-op and children end when their work does."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Call in the child (``preexec_fn``, or first thing in a spawned worker)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # pragma: no cover - no libc: nothing to ask for
        pass

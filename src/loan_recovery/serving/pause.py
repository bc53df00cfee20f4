"""The documented test hook: pause a build at a named step so a test can kill it there.

``LOAN_RECOVERY_PAUSE_AT=<step>[,<step>...]`` makes the build print
``LOAN_RECOVERY_PAUSED step=<step> pid=<pid> ...`` on stderr and sleep
``LOAN_RECOVERY_PAUSE_SECONDS`` (default 600) at that point. Points:
``dbt`` (dbt has created the build file and is frozen with SIGSTOP),
``finalize`` (build_info written, not yet checkpointed), ``verify``
(finalized, not yet verified), ``swap`` (the served build is linked as
``S.previous.partial``, the new one not yet renamed into place) and
``rollback`` (the same point of a rollback).
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_ENV = "LOAN_RECOVERY_PAUSE_AT"
PAUSE_SECONDS_ENV = "LOAN_RECOVERY_PAUSE_SECONDS"
PAUSE_MARKER = "LOAN_RECOVERY_PAUSED"


def wants_pause(step: str) -> bool:
    """Whether the environment asks to pause at ``step``."""
    return step in {name.strip() for name in os.environ.get(PAUSE_ENV, "").split(",")}


def pause_point(step: str, detail: str = "") -> None:
    """Announce and sleep at ``step`` when asked to; otherwise do nothing."""
    if not wants_pause(step):
        return
    print(f"{PAUSE_MARKER} step={step} pid={os.getpid()} {detail}".rstrip(), file=sys.stderr)
    sys.stderr.flush()
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "600")))

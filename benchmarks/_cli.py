"""The real ``mmfuse`` command line, run in a subprocess by the benchmark scripts of this folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def mmfuse(*args: object, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run ``mmfuse ARGS`` with this interpreter (``python -m mmfuse``); returns ``(stdout, wall seconds)``.

    Raises:
        SystemExit: the command failed; the message holds its exit status and the end of its stderr.
    """
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mmfuse", *map(str, args)], capture_output=True, text=True, env=env or dict(os.environ)
    )
    if proc.returncode != 0:
        raise SystemExit(f"mmfuse {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, time.perf_counter() - t0

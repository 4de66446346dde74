"""Where a streaming sentence's time goes: one debug line per step, off by default.

The driver calls `event(stream, what, **fields)` at each step of a sentence (opened, preview
submitted, preview or final decoded and shown or dropped, and why). Nothing is formatted unless
the `voxscope.trace` logger is enabled at DEBUG: `VOXSCOPE_TRACE=1` in the server's environment
does that (or `--log-level debug`). Each line is `trace {json}` with `t` on the monotonic clock,
which on Linux is shared by processes, so a client on the same machine (benchmarks/
bench_first_partial.py --trace) can line the server's steps up with what it sent and received.
"""

from __future__ import annotations

import json
import logging
import os
import time

log = logging.getLogger("voxscope.trace")
if os.environ.get("VOXSCOPE_TRACE", "").lower() in ("1", "true", "yes"):
    log.setLevel(logging.DEBUG)  # the root's handlers still write it: they have no level


def enabled() -> bool:
    return log.isEnabledFor(logging.DEBUG)


def event(stream: int, what: str, **fields: object) -> None:
    """One step of a stream's sentence; cheap when tracing is off (one level check)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    log.debug("trace %s", json.dumps({"t": round(time.monotonic(), 4), "stream": stream,
                                      "ev": what, **fields}, ensure_ascii=False, default=str))


def parse(line: str) -> dict | None:
    """A trace line of a server log back as a dict (None for other lines)."""
    i = line.find("trace {")
    if i < 0:
        return None
    try:
        return json.loads(line[i + 6:])
    except ValueError:
        return None

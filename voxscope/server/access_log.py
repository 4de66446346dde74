"""Keeps temporary tokens out of the logs: uvicorn's access and WebSocket lines print the request
path with its query string, and browsers pass their token as `?token=` on WebSockets."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"((?:^|[?&])(?:token|api_key|key)=)[^&\s\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET.sub(r"\1***", text)


class RedactQuery(logging.Filter):
    """Rewrites string arguments of a log record (the path is one of them) before formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Call after uvicorn configured its loggers (uvicorn.Config does that)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())

"""Client JSON, parsed safely: size capped while the body streams in, nesting depth bounded.

Every place that parses JSON sent by a client (REST bodies, WebSocket text frames) goes through
`loads`, so a malformed, over-deep (`[` x 100 000) or over-large document is one clear
ValueError the protocol turns into its normal error, never a RecursionError or a 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

MAX_DEPTH = 64  # DashScope documents nest a few levels; nothing legitimate comes near this


class JSONInputError(ValueError):
    """The client's JSON cannot be accepted; the message says why."""


class BodyTooLarge(Exception):
    """The request body is larger than the endpoint accepts."""


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse client JSON; JSONInputError (a ValueError) for anything malformed or too deep."""
    try:
        value = json.loads(data)
    except RecursionError:
        # the C scanner gives up at the interpreter's recursion limit: report it, stay up
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JSONInputError(str(exc)) from None
    _check_depth(value, max_depth)
    return value


def _check_depth(value: Any, max_depth: int) -> None:
    # Iterative: code that later walks the document recursively must not meet what the scanner
    # accepted below the recursion limit (about 1000 levels).
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def has_body(request: Request) -> bool:
    """Whether the request announces a body (a Content-Length above 0, or chunked)."""
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def is_json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and
                                            media.endswith("+json"))


def capped_request(request: Request, max_bytes: int) -> Request:
    """The same request whose body stream raises BodyTooLarge once more than max_bytes arrived.

    Content-Length is checked before anything is read; a chunked body is counted as it arrives,
    so a client streaming gigabytes costs at most max_bytes of memory (Starlette's own body and
    multipart readers have no limit).
    """
    length = request.headers.get("content-length")
    if length and length.strip().isdigit() and int(length) > max_bytes:
        raise BodyTooLarge
    received = 0
    receive: Callable[[], Awaitable[dict[str, Any]]] = request.receive

    async def limited() -> dict[str, Any]:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLarge
        return message

    return Request(request.scope, limited)


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed max_bytes."""
    return await capped_request(request, max_bytes).body()

"""Reading typed optional parameters out of DashScope request objects, with DashScope errors."""

from __future__ import annotations

from typing import Any

from voxscope.protocols import errors
from voxscope.protocols.errors import ProtocolError


def opt_bool(params: dict[str, Any], key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ProtocolError(errors.INVALID_PARAMETER, f"parameter '{key}' must be a boolean")
    return value


def opt_number(params: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ProtocolError(errors.INVALID_PARAMETER,
                            f"parameter '{key}' must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)

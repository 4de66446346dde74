"""The service-layer consolidation's static rules: the Runtime is reached through one typed accessor
(`voxscope.protocols.app_runtime.runtime_of`), never as the untyped `app.state.runtime`; the 16 kHz
sample rate outside engine/ is one constant, not redefined per module."""

from __future__ import annotations

import re
from pathlib import Path

from voxscope.protocols.app_runtime import runtime_of
from voxscope.service.runtime import Runtime

PACKAGE = Path(__file__).resolve().parents[2] / "voxscope"
ACCESSOR = PACKAGE / "protocols" / "app_runtime.py"


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != ACCESSOR)


def test_runtime_is_read_through_the_typed_accessor():
    spelled = [f"{p.relative_to(PACKAGE)}:{i}" for p in _sources()
               for i, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"state\b.{0,3}runtime|\"runtime\"", line)]
    assert not spelled, f"app.state.runtime spelled outside app_runtime.py: {spelled}"
    assert runtime_of.__annotations__["return"] in ("Runtime", Runtime)

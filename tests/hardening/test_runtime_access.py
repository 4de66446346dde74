"""The service-layer consolidation's static rules: the Runtime is reached through one typed accessor
(`voxscope.protocols.app_runtime.runtime_of`), never as the untyped `app.state.runtime`; the 16 kHz
sample rate outside engine/ is one constant, not redefined per module."""

from __future__ import annotations

import ast
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


def test_one_sample_rate_constant_outside_the_engine():
    """Outside engine/ (which keeps its own), 16 kHz is defined once: audio/pcm.py TARGET_RATE."""
    home = PACKAGE / "audio" / "pcm.py"
    defined = []
    for path in _sources():
        if path == home or (PACKAGE / "engine") in path.parents:
            continue
        for node in ast.parse(path.read_text()).body:  # module-level names only
            if (isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant)
                    and node.value.value == 16000):
                defined.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not defined, f"16 kHz defined again (import voxscope.audio.pcm.TARGET_RATE): {defined}"

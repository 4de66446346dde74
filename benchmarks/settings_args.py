"""`KEY=VALUE` server settings given to a benchmark on its command line (`--set`, `--variant`)."""

from __future__ import annotations

import yaml


def parse_settings(pairs: list[str]) -> dict:
    """KEY=VALUE pairs as `server:` settings (values read as YAML: 1, 0.5, true, text)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def split_env(overrides: dict) -> tuple[dict, dict]:
    """(environment, settings): `VOXSCOPE_*` keys are a server's environment (constants read at
    import, e.g. VOXSCOPE_PREVIEW_CHECK_WORDS), the rest its `server:` settings."""
    env = {k: v for k, v in overrides.items() if k.startswith("VOXSCOPE_")}
    return env, {k: v for k, v in overrides.items() if k not in env}

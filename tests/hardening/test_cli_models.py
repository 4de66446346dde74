"""`voxscope models` keeps its table aligned whatever the content (README/packaging point of
issue 9): a profile with many sample rates, a long profile name and a long model name."""

from __future__ import annotations

import subprocess
import sys

import yaml

LONG_PROFILE = "custom-profile-with-a-rather-long-name-v1"
LONG_MODEL = "my-very-long-local-model-name"
MANY_RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]


def test_models_table_columns_line_up(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "models": {LONG_MODEL: {"path": str(tmp_path / "no-such-model")}},
        "profiles": {LONG_PROFILE: {"kind": "recognition", "model": LONG_MODEL,
                                    "sample_rates": MANY_RATES}}}))
    res = subprocess.run([sys.executable, "-m", "voxscope.cli", "models", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    table = lines[: lines.index("")]
    header, rows = table[0], table[1:]
    cols = {name: header.index(name) for name in ("PROFILE", "KIND", "RATES", "MODEL", "STATUS")}
    assert len(rows) >= 10, res.stdout
    for row in rows:
        for name, pos in cols.items():
            if pos:  # every column starts after a blank, at the header's position
                assert row[pos - 1] == " " and row[pos] != " ", (name, row, header)
        assert row[cols["STATUS"]:].startswith(("installed", "MISSING")), (row, header)
    mine = next(row for row in rows if row.startswith(LONG_PROFILE + " "))
    assert mine[cols["RATES"]:].split()[0] == ",".join(map(str, MANY_RATES)), mine
    assert mine[cols["MODEL"]:].split()[0] == LONG_MODEL, mine
    assert mine[cols["STATUS"]:].startswith("MISSING"), mine

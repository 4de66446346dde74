"""What each full-window recheck of a traced server was for, and what it changed.

Reads `VOXSCOPE_TRACE=1` server logs (bench_overload.py --trace keeps each server's log path in its
JSON as runs.<name>.log) and prints one line per recheck: the last preview shown before it (script
and language), whether a language check preview came back on the sentence, the short final and
whether the full window's text differed (letters only). Then the counts behind RESULTS "Overload,
session 10": how many rechecks followed previews in another script than the final, and how many of
those changed the text.

    python benchmarks/trace_rechecks.py /tmp/voxscope-test-*/server.log
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxscope.engine.recognizer import SCRIPT_SHARE  # noqa: E402
from voxscope.engine.streaming.results import latin_share  # noqa: E402
from voxscope.engine.streaming.trace import parse  # noqa: E402
from voxscope.engine.text import letters  # noqa: E402


def rechecks(log: str) -> list[dict]:
    """One row per `recheck_result` event of a server log."""
    shown: dict[tuple, list[dict]] = defaultdict(list)
    detect: dict[tuple, set[int]] = defaultdict(set)  # preview seqs decoded with detection
    checked: set[tuple] = set()
    rows = []
    for e in filter(None, map(parse, log.splitlines())):
        key = (e["stream"], e.get("seg"))
        if e["ev"] == "preview_submit" and e.get("language") is None:
            detect[key].add(e["seq"])
        elif (e["ev"] == "preview_result" and e["seq"] in detect[key]
              and e["outcome"] not in ("superseded", "empty")):
            checked.add(key)
        elif e["ev"] == "partial_out":
            shown[key].append(e)
        elif e["ev"] == "recheck_result":
            last = shown[key][-1] if shown[key] else None
            short, full = e["short"] or "", e["full"] or ""
            other_script = last is not None and (
                (latin_share(last["text"]) >= SCRIPT_SHARE) != (latin_share(short) >= SCRIPT_SHARE))
            rows.append({"preview": last["text"] if last else None,
                         "preview_language": last["language"] if last else None,
                         "checked": key in checked, "short": short,
                         "changed": letters(short) != letters(full),
                         "other_script": other_script})
    return rows


def main() -> None:
    rows = [r for path in sys.argv[1:] for r in rechecks(Path(path).read_text(errors="replace"))]
    for r in rows:
        print(f"changed={r['changed']!s:5} other_script={r['other_script']!s:5} "
              f"checked={r['checked']!s:5} preview={(r['preview'] or '')[:30]!r} "
              f"({r['preview_language']}) short={r['short'][:30]!r}")
    other = [r for r in rows if r["other_script"]]
    skippable = [r for r in other if not r["checked"]]
    print(f"{len(rows)} rechecks, {sum(r['changed'] for r in rows)} changed the text; "
          f"previews in another script: {len(other)} ({sum(r['changed'] for r in other)} changed), "
          f"of which language never checked: {len(skippable)} "
          f"({sum(r['changed'] for r in skippable)} changed)")


if __name__ == "__main__":
    main()

"""benchmarks/trace_finals.py reads a traced server log right: a final's delay split into the pause,
its queue wait (behind the batch in flight, behind a promoted preview) and its own decode. A
hand-written log, no server."""

from __future__ import annotations

import json

import pytest

from benchmarks.trace_finals import explain, summary


def _line(t: float, stream: int, ev: str, **fields: object) -> str:
    return "DEBUG voxscope.trace trace " + json.dumps({"t": t, "stream": stream, "ev": ev,
                                                       **fields})


def _batch(start: float, decode_s: float, priority: str, seqs: list[int]) -> str:
    return _line(start + decode_s, 0, "batch", start=start, decode_s=decode_s, priority=priority,
                 size=len(seqs), full=False, file_lane=False, seqs=seqs)


LOG = "\n".join([
    "INFO something else",
    _line(9.9, 0, "submit", seq=0, priority="partial"),
    _line(9.9, 2, "preview_submit", seg=1, seq=1, at_s=1.0, audio_s=1.0),
    _line(10.0, 0, "submit", seq=1, priority="partial"),
    _line(10.0, 3, "preview_submit", seg=1, seq=1, at_s=1.0, audio_s=1.0),
    _line(10.4, 3, "promote", seg=1),  # stream 3's queued preview now has a final's priority
    _line(10.5, 0, "submit", seq=2, priority="final"),
    _line(10.5, 1, "speculate", seg=1, end_s=2.0),  # stream 1's final, asked for at a pause
    _batch(10.1, 1.0, "partial", [0]),  # in flight when stream 1's final was queued
    _batch(11.1, 0.5, "final", [1]),  # the promoted preview goes first
    _batch(11.6, 0.8, "final", [2]),
    _line(11.8, 1, "close", seg=1, end_s=2.0, speculative_hit=True, speech_end_t=10.3),
    _line(12.4, 1, "final_out", seg=1, text="Hello."),
])


def test_a_final_split_into_its_parts():
    (row,) = explain(LOG)
    assert row["stream"] == 1 and row["speculative_hit"]
    assert row["delay"] == pytest.approx(2.1)
    assert row["pause"] == pytest.approx(1.5)
    assert row["queued_after_close"] == pytest.approx(-1.3)
    assert row["queue_wait"] == pytest.approx(1.1)
    assert row["waited_behind"] == {"in_flight_partial": pytest.approx(0.6),
                                    "promoted_previews": pytest.approx(0.5)}
    assert row["decode"] == pytest.approx(0.8) and row["batch_size"] == 1
    assert row["order_wait"] == pytest.approx(0.0)
    s = summary([row])
    assert s["finals"] == 1 and s["mean_all"]["behind_promoted_previews"] == pytest.approx(0.5)

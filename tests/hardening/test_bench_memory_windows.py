"""bench_replica_memory.py --windows packs the clips into file-task windows Whisper can take whole.

Model-free. The first draft joined whole clips, and shared/audio's 35.5 s English clip made a
36.5 s window: beyond Whisper's 30 s, so that variant measured a truncated decode.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench_replica_memory import _windows
from tests.support import clip_pcm, manifest


def _clips() -> list[np.ndarray]:
    return [np.frombuffer(clip_pcm(c["id"]), "<i2").astype(np.float32) / 32768
            for c in manifest() if c["lang"] in ("en", "zh")]


def test_every_window_fits_whisper_and_no_audio_is_dropped():
    clips = _clips()
    assert max(c.size for c in clips) > 30 * 16000  # the case that broke the first draft
    windows = _windows(clips)
    assert len(windows) >= 4  # enough for two callers or a batch of two, twice
    assert all(w.size <= 30 * 16000 for w in windows), [w.size / 16000 for w in windows]
    # every clip sample is in some window (plus one 1 s pause after each piece)
    speech = sum(c.size for c in clips)
    pauses = sum(w.size for w in windows) - speech
    assert pauses >= 0 and pauses % 16000 == 0

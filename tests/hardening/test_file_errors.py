"""File decoding errors that plain faster-whisper does not make (issue 12, Files: error target).

Found by `benchmarks/diag_file_errors.py` (bench_file_throughput's files, clip by clip against
sequential faster-whisper). The merge of recovered words is checked model-free, with the words and
regions the real model gave for the Mandarin file's window at 140.3-167.2 s (seconds from the
file's start); the tail echo with the real model on the English file's window where it happened.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxscope.engine.offline import SR, _after_recovered, _sentences
from voxscope.engine.types import Word


def words(spec: str) -> list[Word]:
    """"甚@149.48-153.54 至@153.54-157.48" -> Words."""
    out = []
    for item in spec.split():
        text, times = item.split("@")
        a, b = times.split("-")
        out.append(Word(float(a), float(b), text, "", text))
    return out


# Whisper skipped the sentence at ~150.6-155.6 s; the aligner stretched the two characters written
# after the skip ("甚至") back over it. _recover_gaps decoded the two regions of that sentence again.
MAIN = words("还@148.62-148.86 好@148.86-149.04 用@149.04-149.48 甚@149.48-153.54 至@153.54-157.48 "
             "出@157.48-157.72 现@157.72-158.00 交@158.00-158.28")
RECOVERED = [words("我@150.87-151.13 认为@151.13-151.37 跑@151.37-151.59 步@151.59-151.75 "
                   "最@151.75-151.91 重要@151.91-152.11 的@152.11-152.29 就是@152.29-152.59"),
             words("给@153.27-153.53 我@153.53-153.73 带@153.73-153.91 来了@153.91-154.11 "
                   "身@154.11-154.33 体@154.33-154.49 健@154.49-154.65 康@154.65-154.89")]
REGIONS = [(int(a * SR), int(b * SR)) for a, b in
           ((146.11, 149.59), (150.67, 152.94), (153.27, 155.18), (156.95, 160.52))]


def merged() -> list[Word]:
    """As transcribe_chunks merges a window's words with the recovered ones."""
    return sorted(_after_recovered(MAIN, RECOVERED, REGIONS)
                  + [x for ws in RECOVERED for x in ws], key=lambda x: x.start)


def test_words_after_a_skipped_stretch_follow_its_recovered_text():
    text = "".join(w.raw for w in merged())
    # Before: sorted by start time, "甚" went before the recovered sentence and "至" into it
    # ("还好用甚我认为跑步最重要的就是给我至带来了身体健康出现交").
    assert text == "还好用我认为跑步最重要的就是给我带来了身体健康甚至出现交", text


def test_the_moved_words_start_the_next_sentence():
    breaks = [a[1] / SR for a, b in zip(REGIONS, REGIONS[1:], strict=False) if b[0] - a[1] >= 0.5 * SR]
    texts = [s.text for s in _sentences(merged(), "zh", breaks, punctuation=False)]
    assert texts == ["还好用", "我认为跑步最重要的就是给我带来了身体健康", "甚至出现交"], texts


def test_words_away_from_recovered_stretches_keep_their_times():
    assert _after_recovered(MAIN, [], REGIONS) == MAIN
    moved = _after_recovered(MAIN, RECOVERED, REGIONS)
    assert moved[:3] == MAIN[:3] and moved[5:] == MAIN[5:]


@pytest.fixture(scope="module")
def backend():
    from voxscope.engine.model_store import ModelStore
    from voxscope.engine.whisper_backend import WhisperBackend

    return WhisperBackend(ModelStore().resolve("whisper-base"))


@pytest.mark.timeout(600)
def test_a_tail_decode_does_not_write_the_window_end_again(backend):
    """bench_file_throughput's English file, its VAD window at 299.35-327.18 s: Whisper stops with
    more than TAIL_MIN_S of audio after its last timestamp; the tail, prompted with the window's
    text, wrote its last sentence again ("The blind man counted his old coins." twice)."""
    from benchmarks.bench_file_throughput import build
    from voxscope.engine.types import DecodeOptions

    pcm, _reference, _seconds = build("en", 5, 1.0)
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    window = audio[4789632:5234816].copy()  # the window's exact samples (a few ms off: no echo)
    file_task = DecodeOptions(beam_size=5, full_window=True, word_timestamps=True,
                              temperature_fallback=False)
    tr = backend.decode_batch([(window, file_task)])[0]
    assert tr.text.count("blind man counted his old coins") == 1, tr.text
    assert tr.text.count("old coins") == 1 and "gold ring" in tr.text, tr.text

"""Endpointing without the model: scripted VAD probabilities in, sentence boundary events out.

Frames are 512 samples (32 ms at 16 kHz), as from Silero VAD; times below are in samples.
"""

from __future__ import annotations

from voxscope.engine.streaming.segmenter import (
    Closed,
    EndpointConfig,
    Event,
    Opened,
    Paused,
    Resumed,
    Segmenter,
)

FRAME = 512
SPEECH, SILENCE = 0.9, 0.05


def ms(x: float) -> int:
    return int(x * 16)


class Script:
    """Feeds a segmenter frame by frame, keeping the audio extent as the recognizer does."""

    def __init__(self, latency_s: float = 0.0, **config) -> None:
        self.seg = Segmenter(EndpointConfig(**config), final_latency_s=lambda: latency_s)
        self.frames = 0
        self.log: list[tuple[int, Event]] = []  # (frame index, event)

    def feed(self, p: float, n: int = 1) -> list[Event]:
        out: list[Event] = []
        for _ in range(n):
            fs = self.frames * FRAME
            self.frames += 1
            self.seg.audio_end = fs + FRAME
            events = self.seg.feed(p, fs, fs + FRAME)
            self.log += [(self.frames - 1, e) for e in events]
            out += events
        return out

    def speech(self, seconds: float) -> list[Event]:
        return self.feed(SPEECH, round(seconds * 1000 / 32))

    def silence(self, seconds: float) -> list[Event]:
        return self.feed(SILENCE, round(seconds * 1000 / 32))

    @property
    def end(self) -> int:
        return self.frames * FRAME

    def of(self, kind: type) -> list:
        return [e for _, e in self.log if isinstance(e, kind)]


# -- onset ------------------------------------------------------------------------------------------
def test_silence_and_blips_open_nothing():
    s = Script()
    assert s.silence(5) == []
    assert s.feed(SPEECH, 2) == []  # 64 ms: under min_speech_ms (96 ms)
    assert s.silence(1) == []
    assert s.feed(0.45, 10) == []  # under the threshold, even if close to it
    assert s.seg.open is None and s.seg.segments == 0


def test_onset_opens_after_min_speech_with_preroll():
    s = Script()
    s.silence(0.64)  # 20 frames
    assert s.feed(SPEECH, 2) == []
    assert s.feed(SPEECH) == [Opened(1, 20 * FRAME - ms(300))]
    assert s.seg.open is not None and s.seg.open.speech_end == 23 * FRAME


def test_preroll_never_reaches_into_the_previous_sentence():
    s = Script(max_sentence_silence_ms=200, speculative_silence_ms=100)
    s.speech(1)
    s.silence(0.3)
    (closed,) = s.of(Closed)
    s.silence(0.05)  # the next onset is closer to that end than the pre-roll
    s.speech(0.5)
    assert s.of(Opened)[1].start == closed.end


def test_hysteresis_weaker_frames_continue_speech_but_do_not_start_it():
    s = Script()
    assert s.feed(0.4, 10) == []  # between threshold - 0.15 and the threshold: no onset
    s.speech(0.5)
    voiced_end = s.end
    s.feed(0.4, 5)  # continues the speech ...
    assert s.seg.open.speech_end == voiced_end + 5 * FRAME
    s.feed(SILENCE)
    s.feed(0.4, 3)  # ... but not after an unvoiced frame
    assert s.seg.open.speech_end == voiced_end + 5 * FRAME


# -- pauses, speculation, max silence ------------------------------------------------------------------
def test_a_short_pause_speculates_then_speech_resumes():
    s = Script(latency_s=1.0)  # decodes take 1 s: speculate at the floor (240 ms)
    s.speech(1)
    speech_end = s.end
    events = s.feed(SILENCE, 7)  # 224 ms
    assert events == []
    (paused,) = s.feed(SILENCE)  # 256 ms >= 240 ms
    assert paused == Paused(1, speech_end + ms(200), speech_end, check=False)
    s.silence(0.5)  # 0.76 s in all: under max_sentence_silence (1.3 s)
    assert s.feed(SPEECH) == [Resumed(1)]
    assert s.of(Closed) == [] and s.seg.open is not None


def test_a_pause_of_max_sentence_silence_closes_at_the_speculated_end():
    s = Script(latency_s=1.0)
    s.speech(2)
    speech_end = s.end
    s.silence(1.2)
    assert s.of(Closed) == []
    s.silence(0.2)
    (paused,) = s.of(Paused)
    (closed,) = s.of(Closed)
    assert closed == Closed(1, paused.end, "pause") and paused.end == speech_end + ms(200)
    closing_frame = next(i for i, e in s.log if isinstance(e, Closed))
    assert (closing_frame + 1) * FRAME - speech_end >= ms(1300) > closing_frame * FRAME - speech_end
    assert s.seg.open is None and s.seg.last_closed_end == closed.end


def test_speculation_waits_longer_when_decodes_are_fast():
    """The final decode starts `1.3 × decode latency + 100 ms` before the pause reaches its limit,
    never before the floor: a fast machine wastes no decode on a breath."""
    def pause_frames(latency: float) -> int:
        s = Script(latency_s=latency)
        s.speech(1)
        first = s.frames
        s.silence(1.5)
        return next(i for i, e in s.log if isinstance(e, Paused)) - first + 1

    fast, slow, slowest = pause_frames(0.0), pause_frames(0.5), pause_frames(5.0)
    assert fast * 32 >= 1300 - 100 > (fast - 1) * 32
    assert slow * 32 >= 1300 - 750 > (slow - 1) * 32
    assert slowest == 8  # the 240 ms floor
    assert fast > slow > slowest


def test_repeated_pauses_speculate_again_and_misses_are_reported_once():
    s = Script(latency_s=1.0)
    for _ in range(3):
        s.speech(0.5)
        s.silence(0.5)
    assert len(s.of(Paused)) == 3
    assert len(s.of(Resumed)) == 2  # the third pause is still open
    s.speech(0.3)
    assert len(s.of(Resumed)) == 3


def test_multi_threshold_lets_long_sentences_end_on_shorter_pauses():
    def closes_after_700ms_pause(multi: bool, length_s: float) -> bool:
        s = Script(latency_s=1.0, multi_threshold=multi)
        s.speech(length_s)
        s.silence(0.7)
        return bool(s.of(Closed))

    assert not closes_after_700ms_pause(False, 12)
    assert not closes_after_700ms_pause(True, 5)
    assert closes_after_700ms_pause(True, 12)  # over 10 s: 600 ms is enough

    s = Script(latency_s=1.0, multi_threshold=True)
    s.speech(21)
    s.silence(0.35)  # over 20 s: 300 ms
    assert [e.reason for e in s.of(Closed)] == ["pause"]


# -- semantic punctuation ---------------------------------------------------------------------------
def test_semantic_mode_asks_at_every_pause_and_closes_only_when_told():
    s = Script(semantic_punctuation=True)
    s.speech(1)
    s.silence(0.3)
    (ask,) = s.of(Paused)
    assert ask.check
    assert s.seg.semantic_answer(ask.segment, ask.end, ends_sentence=False) == []
    s.silence(1.5)  # past max_sentence_silence: semantic mode still waits for the text
    assert s.of(Closed) == []
    s.speech(1)
    s.silence(0.3)
    second = s.of(Paused)[1]
    # An answer about the first pause is stale now.
    assert s.seg.semantic_answer(ask.segment, ask.end, ends_sentence=True) == []
    assert s.seg.semantic_answer(second.segment, second.end, ends_sentence=True) == [
        Closed(1, second.end, "semantic")]
    assert s.seg.open is None
    assert s.seg.semantic_answer(second.segment, second.end, ends_sentence=True) == []


def test_semantic_mode_closes_on_a_long_silence_without_an_answer():
    s = Script(semantic_punctuation=True)
    s.speech(1)
    s.silence(2.9)
    assert s.of(Closed) == []
    s.silence(0.2)  # max(2 × 1.3 s, 3 s)
    assert [e.reason for e in s.of(Closed)] == ["long_silence"]


# -- the 30 s window -----------------------------------------------------------------------------------
def test_forced_cut_at_the_best_pause_carries_the_rest_into_a_new_sentence():
    s = Script(latency_s=1.0)
    s.silence(0.32)
    s.speech(24)
    pause_start = s.end
    s.feed(0.1, 4)  # a 128 ms breath: too short to speculate on
    pause_end = s.end
    s.speech(0.5)
    s.feed(0.3, 2)  # a shorter one later: the longest wins
    s.speech(8)
    opened = s.of(Opened)
    closed = s.of(Closed)
    assert [e.reason for e in closed] == ["cut"]
    cut = closed[0].end
    assert cut == (pause_start + pause_end) // 2
    assert opened == [Opened(1, opened[0].start), Opened(2, cut)]
    cut_frame = next(i for i, e in s.log if isinstance(e, Closed))
    assert (cut_frame + 1) * FRAME - opened[0].start >= int(29.5 * 16000)
    # the carried sentence has the speech after the cut and ends like any other
    assert s.seg.open.index == 2 and s.seg.open.speech_end == s.end
    s.silence(1.5)
    assert [e.reason for e in s.of(Closed)] == ["cut", "pause"]


def test_forced_cut_without_a_pause_takes_the_least_speech_like_frame():
    s = Script(latency_s=1.0, max_sentence_s=10.0)
    probs = [0.9] * 400  # the window (10 s) is full at frame 312
    probs[240] = 0.6
    probs[200] = 0.55  # the least speech-like frame, but the earlier of two candidates ...
    probs[280] = 0.55  # ... equals go to the latest
    probs[20] = 0.1  # a pause, but in the first second of the sentence: never a cut
    for p in probs:
        s.feed(p)
    (closed,) = s.of(Closed)
    assert closed.reason == "cut" and closed.end == 280 * FRAME + FRAME // 2
    assert s.of(Opened)[1] == Opened(2, closed.end)


def test_forced_cut_with_nothing_said_after_the_pause_opens_nothing():
    s = Script(latency_s=5.0, max_sentence_s=5.0)
    s.speech(4.9)
    s.feed(0.3, 5)  # the window fills during a pause shorter than the speculation floor
    assert [e.reason for e in s.of(Closed)] == ["cut"]
    assert s.seg.open is None and len(s.of(Opened)) == 1


# -- end of stream, stop, heartbeat ------------------------------------------------------------------
def test_finish_closes_the_open_sentence_after_a_short_tail():
    s = Script()
    s.speech(1)
    speech_end = s.end
    s.silence(0.3)
    assert s.seg.finish(s.end) == [Closed(1, speech_end + ms(200), "end")]
    assert s.seg.finish(s.end) == []

    s = Script()
    s.speech(1)
    assert s.seg.finish(s.end - 100) == [Closed(1, s.end - 100, "end")]  # never past the audio


def test_stop_drops_the_sentence_and_opens_no_more():
    s = Script()
    s.speech(1)
    s.seg.stop()
    s.silence(2)
    assert s.speech(2) == [] and s.seg.finish(s.end) == []
    assert s.of(Closed) == []


def test_last_voice_tracks_voiced_frames_only_for_heartbeat():
    """The session's silence clock (heartbeat, idle timeout) restarts on frames at or above the
    threshold only: not on silence, not on hysteresis frames, but also after a stop."""
    s = Script()
    s.silence(1)
    assert s.seg.last_voice_end is None
    s.speech(0.5)
    voiced = s.end
    assert s.seg.last_voice_end == voiced
    s.feed(0.4, 3)  # continues the sentence, is not a voice
    s.silence(2)
    assert s.seg.last_voice_end == voiced
    s.seg.stop()
    s.feed(SPEECH)
    assert s.seg.last_voice_end == s.end


def test_the_recognizer_config_drives_it_live():
    """The driver hands its RecognizerConfig over: a change mid-stream applies to the next frame."""
    from voxscope.engine.recognizer import RecognizerConfig

    cfg = RecognizerConfig()
    seg = Segmenter(cfg)
    for i in range(40):
        seg.feed(SPEECH, i * FRAME, (i + 1) * FRAME)
    cfg.max_sentence_silence_ms = 200
    events = [e for i in range(40, 60) for e in seg.feed(SILENCE, i * FRAME, (i + 1) * FRAME)]
    assert [type(e) for e in events] == [Paused, Closed]

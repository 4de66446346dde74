"""The streaming recognizer's async driver without the model: scripted VAD, a scheduler stand-in.

The audio's sample values *are* the speech probabilities (`FakeVad` averages each 32 ms frame), and
decodes stay pending until a test resolves them, so speculation hits and misses, boundary callbacks
and result order are checked in milliseconds. What the model makes of audio is covered by
tests/engine/test_engine.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from voxscope.engine.recognizer import RecognizerConfig, SentenceResult, StreamingRecognizer
from voxscope.engine.types import DecodeOptions, Priority, Transcript, Word

SR, FRAME = 16000, 512


class FakeVadStream:
    def __init__(self) -> None:
        self.pending = np.zeros(0, np.float32)

    def process(self, pcm: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, pcm])
        n = self.pending.size // FRAME
        probs = self.pending[: n * FRAME].reshape(n, FRAME).mean(axis=1)
        self.pending = self.pending[n * FRAME:]
        return probs

    def flush(self) -> np.ndarray:
        if not self.pending.size:
            return np.zeros(0, np.float32)
        return self.process(np.zeros(FRAME - self.pending.size, np.float32))


class FakeVad:
    def stream(self) -> FakeVadStream:
        return FakeVadStream()


@dataclass
class Request:
    audio: np.ndarray
    options: DecodeOptions
    priority: Priority
    key: object
    future: cf.Future

    @property
    def final(self) -> bool:
        return self.priority == Priority.FINAL and self.options.task == "transcribe"


class FakeScheduler:
    """Queues decodes; a test answers them with `resolve`."""

    def __init__(self) -> None:
        self.stats = SimpleNamespace(final_latency_ema_s=1.0, partial_latency_ema_s=0.3)
        self.requests: list[Request] = []

    def submit(self, audio, options, priority=Priority.FINAL, key=None, first=False,
               any_lane=False) -> cf.Future:
        if priority == Priority.PARTIAL:
            self.drop_partials(key)  # coalesced: the newer preview replaces a queued one
        self.requests.append(Request(audio, options, priority, key, cf.Future()))
        return self.requests[-1].future

    def drop_partials(self, key) -> None:
        for r in self.requests:
            if r.key == key and r.priority == Priority.PARTIAL and not r.future.done():
                r.future.set_result(None)

    def promote(self, key) -> None:
        for r in self.requests:
            if r.key == key and not r.future.done():
                r.priority = Priority.FINAL

    def pending(self, final: bool | None = None) -> list[Request]:
        return [r for r in self.requests if not r.future.done()
                and (final is None or r.final == final)]

    @staticmethod
    def resolve(r: Request, text: str) -> None:
        """Answer with `text`, its words spread over the request's audio."""
        if not r.future.set_running_or_notify_cancel():
            return  # cancelled: a real scheduler skips it
        dur = r.audio.size / SR
        toks = text.split()
        words = [Word(i * dur / len(toks), (i + 1) * dur / len(toks), t.rstrip(".,?"),
                      t[len(t.rstrip(".,?")):], " " + t) for i, t in enumerate(toks)]
        r.future.set_result(Transcript(text, words, "en", 0.99, 0.01))


def speech(s: float) -> np.ndarray:
    return np.full(int(s * SR), 0.9, np.float32)


def silence(s: float) -> np.ndarray:
    return np.full(int(s * SR), 0.02, np.float32)


class Session:
    def __init__(self, **config) -> None:
        self.sched = FakeScheduler()
        self.results: list[SentenceResult] = []
        self.boundaries: list[tuple[str, int, int]] = []

        async def emit(r: SentenceResult) -> None:
            self.results.append(r)

        self.rec = StreamingRecognizer(self.sched, FakeVad(), RecognizerConfig(**config), emit,
                                       lambda kind, seg, ms: self.boundaries.append((kind, seg, ms)))

    async def feed(self, audio: np.ndarray, chunk_s: float = 0.1) -> None:
        step = int(chunk_s * SR)
        for pos in range(0, audio.size, step):
            self.rec.feed(audio[pos:pos + step])
            await settle()

    @property
    def finals(self) -> list[SentenceResult]:
        return [r for r in self.results if r.final]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_the_speculative_decode_is_the_final():
    async def main() -> None:
        s = Session(partials=False)
        await s.feed(np.concatenate([silence(0.512), speech(1.504)]))  # on the 32 ms frame grid
        await s.feed(silence(0.4))
        (spec,) = s.sched.pending(final=True)  # asked for while the pause is being measured
        s.sched.resolve(spec, "Hello there.")
        await settle()
        assert s.finals == []  # the pause is not long enough yet
        await s.feed(silence(1.2))
        assert [r.text for r in s.finals] == ["Hello there."]
        assert s.sched.pending() == [] and len([r for r in s.sched.requests if r.final]) == 1
        assert (s.rec.stats.speculative_hits, s.rec.stats.speculative_misses) == (1, 0)
        assert [b[0] for b in s.boundaries] == ["start", "pause", "end"]
        start_ms, end_ms = s.boundaries[0][2], s.boundaries[2][2]
        assert start_ms == 512 - 300 and s.finals[0].begin_ms == start_ms  # pre-roll
        assert end_ms == 2016 + 200 == s.finals[0].current_ms  # speech end + tail
        s.rec.close()

    asyncio.run(main())


def test_speech_after_a_pause_cancels_the_speculative_decode():
    async def main() -> None:
        s = Session(partials=False)
        await s.feed(np.concatenate([speech(1.0), silence(0.5)]))
        (stale,) = s.sched.pending(final=True)
        await s.feed(speech(1.0))
        assert stale.future.cancelled()
        assert s.rec.stats.speculative_misses == 1
        await s.feed(silence(0.5))
        (spec,) = s.sched.pending(final=True)
        assert spec.audio.size > stale.audio.size  # the whole sentence, the resumed speech too
        s.sched.resolve(spec, "One sentence with a breath.")
        await s.feed(silence(1.0))
        assert [r.text for r in s.finals] == ["One sentence with a breath."]
        assert (s.rec.stats.speculative_hits, s.rec.stats.speculative_misses) == (1, 1)
        s.rec.close()

    asyncio.run(main())


def test_previews_wait_for_the_previous_final_and_never_follow_their_own():
    async def main() -> None:
        s = Session(max_sentence_silence_ms=600, partial_interval_s=0.3)
        await s.feed(speech(1.5))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "first")
        await settle()
        assert [(r.sentence_id, r.final, r.text) for r in s.results] == [(1, False, "first")]
        await s.feed(silence(1.0))  # sentence 1 closes; its final decode is not answered yet
        await s.feed(speech(1.5))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "second sentence")
        await settle()
        assert all(r.sentence_id == 1 for r in s.results), "sentence 2 overtook sentence 1's final"
        for r in s.sched.pending(final=True):
            s.sched.resolve(r, "First sentence.")
        await settle()
        assert s.finals and s.finals[0].text == "First sentence."
        await s.feed(speech(0.6))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "second sentence goes on")
        await s.feed(silence(1.0))
        for r in s.sched.pending(final=False):
            s.sched.resolve(r, "second sentence goes on and")
        for r in s.sched.pending(final=True):
            s.sched.resolve(r, "Second sentence goes on.")
        await s.rec.finish()
        seen_final: set[int] = set()
        for r in s.results:
            assert r.sentence_id not in seen_final, f"a result of sentence {r.sentence_id} after its final"
            if r.final:
                seen_final.add(r.sentence_id)
        assert [r.sentence_id for r in s.finals] == [1, 2]
        assert any(not r.final and r.sentence_id == 2 for r in s.results)
        s.rec.close()

    asyncio.run(main())


def test_semantic_mode_closes_when_the_decoded_text_ends_a_sentence():
    async def main() -> None:
        s = Session(partials=False, semantic_punctuation=True)
        await s.feed(np.concatenate([speech(1.0), silence(0.4)]))
        (spec,) = s.sched.pending(final=True)
        s.sched.resolve(spec, "and then we")
        await s.feed(silence(1.5))  # past max_sentence_silence: the text says it goes on
        assert s.finals == [] and s.boundaries[-1][0] == "pause"
        await s.feed(np.concatenate([speech(1.0), silence(0.4)]))
        (spec,) = s.sched.pending(final=True)
        s.sched.resolve(spec, "And then we left.")
        await settle()
        assert [r.text for r in s.finals] == ["And then we left."]
        assert s.boundaries[-1][0] == "end"
        s.rec.close()

    asyncio.run(main())


def test_one_sentence_mode_stops_after_its_sentence():
    async def main() -> None:
        s = Session(partials=False, max_sentences=1)
        await s.feed(np.concatenate([speech(1.0), silence(1.6)]))
        for r in s.sched.pending(final=True):
            s.sched.resolve(r, "Only this.")
        await settle()
        assert s.rec.done and [r.text for r in s.finals] == ["Only this."]
        await s.feed(np.concatenate([speech(1.0), silence(1.6)]))  # ignored
        await s.rec.finish()
        assert len(s.finals) == 1 and s.sched.pending() == []
        assert [b[0] for b in s.boundaries] == ["start", "pause", "end"]
        s.rec.close()

    asyncio.run(main())


def test_abandon_drops_the_open_sentence_but_delivers_closed_ones():
    async def main() -> None:
        s = Session(partials=False)
        await s.feed(np.concatenate([speech(1.0), silence(1.6), speech(1.0)]))
        (final,) = s.sched.pending(final=True)
        abandon = asyncio.get_running_loop().create_task(s.rec.abandon())
        await settle()
        s.sched.resolve(final, "Kept.")
        await abandon
        assert [r.text for r in s.results] == ["Kept."]
        s.rec.feed(speech(1.0))  # after abandon: ignored
        assert len(s.sched.requests) == 1

    asyncio.run(main())


def test_final_window_follows_the_setting():
    # Settings.final_window ("short" by default since session 9) reaches the final's decode through
    # Settings.stream_options; previews are short windows either way.
    from voxscope.config import load_settings

    async def main(final_window: str) -> tuple[set[bool], set[bool]]:
        s = Session(**load_settings(final_window=final_window).stream_options())
        await s.feed(np.concatenate([silence(0.512), speech(1.504), silence(0.4)]))
        windows = ({r.options.full_window for r in s.sched.requests if r.final},
                   {r.options.full_window for r in s.sched.requests
                    if r.priority == Priority.PARTIAL})
        s.rec.close()
        return windows

    assert asyncio.run(main("full")) == ({True}, {False})
    assert asyncio.run(main("short")) == ({False}, {False})

"""No text from audio without speech: silence, noise and music must not produce any result text.

Whisper is known to "hear" words in silence and noise ("Thank you.", "you", subtitles credits,
repetition loops) and to transcribe music as lyrics or "♪". The realtime path must filter all of
that: VAD gating, no-speech probability, the repetition guard. Each synthetic 10 s clip (generated
here with fixed seeds) is sent through the official SDK in callback mode, as 16 kHz s16le PCM, to
`paraformer-realtime-v2` and `fun-asr-realtime`, both at real-time pace (100 ms frames every
100 ms, as a microphone would: previews get decoded along the way) and as one burst (12 800-byte
frames back to back, as `call()` does). Not a single final sentence and not a single non-empty
partial may come back, and the task must complete normally. Each case also runs with the most
permissive VAD setting the protocol offers (`speech_noise_threshold=-1.0`).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from dashscope.audio.asr import Recognition, RecognitionCallback, RecognitionResult

from tests.support import ServerProcess, sdk_at, sdk_start_waits

SR = 16000
SECONDS = 10.0
MODELS = ("paraformer-realtime-v2", "fun-asr-realtime")
PACES = ("realtime", "burst")
# VAD sensitivity: the default, and the most permissive documented setting
# (speech_noise_threshold=-1.0: "more noise becomes speech").
VADS = {"default": None, "permissive": -1.0}


# -- synthetic audio -----------------------------------------------------------------------------
def _to_pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _rms_to(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * (10 ** (dbfs / 20) / np.sqrt(np.mean(x ** 2)))


def silence() -> np.ndarray:
    return np.zeros(int(SECONDS * SR))


def white_noise() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return _rms_to(rng.standard_normal(int(SECONDS * SR)), -24.0)


def pink_noise() -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain."""
    rng = np.random.default_rng(5678)
    n = int(SECONDS * SR)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    return _rms_to(np.fft.irfft(spectrum, n), -24.0)


def music() -> np.ndarray:
    """Four chords (C, Am, F, G) of harmonic tones with attack/decay, over a kick/snare/hat beat."""
    rng = np.random.default_rng(42)
    n = int(SECONDS * SR)
    t = np.arange(n) / SR
    out = np.zeros(n)
    chords = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63),
              (196.00, 246.94, 293.66)]
    chord_len = SECONDS / len(chords)
    for i, chord in enumerate(chords):
        lo, hi = int(i * chord_len * SR), int((i + 1) * chord_len * SR)
        tt = t[lo:hi] - t[lo]
        env = np.minimum(tt / 0.02, 1.0) * np.exp(-tt * 0.8)
        for f in chord:
            for h, amp in ((1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)):
                out[lo:hi] += amp * np.sin(2 * np.pi * f * h * tt) * env
        # an arpeggio on top, one note every 1/8 of the chord
        step = (hi - lo) // 8
        for k in range(8):
            a, b = lo + k * step, lo + (k + 1) * step
            ta = t[a:b] - t[a]
            note = chord[k % 3] * 2
            out[a:b] += 0.6 * np.sin(2 * np.pi * note * ta) * np.exp(-ta * 6)
    out = _rms_to(out, -20.0)
    beat = 0.5  # 120 bpm
    for k in range(int(SECONDS / beat)):
        start = int(k * beat * SR)
        length = min(int(0.25 * SR), n - start)
        tt = np.arange(length) / SR
        if k % 2 == 0:  # kick: a falling low sine
            freq = 50 + 100 * np.exp(-tt * 30)
            out[start:start + length] += 0.5 * np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-tt * 12)
        else:  # snare: a noise burst
            out[start:start + length] += 0.3 * rng.standard_normal(length) * np.exp(-tt * 25)
        hat = min(int(0.05 * SR), n - start - int(beat * SR / 2))
        if hat > 0:  # hi-hat on the off-beat
            h0 = start + int(beat * SR / 2)
            out[h0:h0 + hat] += 0.08 * rng.standard_normal(hat) * np.exp(-np.arange(hat) / SR * 80)
    return out / max(1.0, np.abs(out).max() / 0.8)


CLIPS = {"silence": silence, "white_noise": white_noise, "pink_noise": pink_noise, "music": music}


# -- running ---------------------------------------------------------------------------------------
class Collector(RecognitionCallback):
    def __init__(self) -> None:
        self.finals: list[dict] = []
        self.partials: list[dict] = []
        self.errors: list[tuple] = []
        self.completed = threading.Event()

    def on_event(self, result) -> None:
        sentence = result.get_sentence()
        if RecognitionResult.is_sentence_end(sentence):
            self.finals.append(sentence)
        else:
            self.partials.append(sentence)

    def on_error(self, result) -> None:
        self.errors.append((result.status_code, result.code, result.message))

    def on_complete(self) -> None:
        self.completed.set()


def _run(model: str, pcm: bytes, pace: str, vad: str) -> Collector:
    cb = Collector()
    rec = Recognition(model=model, format="pcm", sample_rate=SR, callback=cb,
                      speech_noise_threshold=VADS[vad])
    sdk_start_waits(rec)  # the SDK's start race (tests/support.py)
    rec.start()
    if pace == "realtime":
        frame = SR * 2 // 10  # 100 ms
        t0 = time.monotonic()
        for i, pos in enumerate(range(0, len(pcm), frame)):
            rec.send_audio_frame(pcm[pos:pos + frame])
            delay = t0 + (i + 1) * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    else:
        for pos in range(0, len(pcm), 12800):
            rec.send_audio_frame(pcm[pos:pos + 12800])
    rec.stop()  # sends finish-task and waits for task-finished (or the failure)
    return cb


@pytest.fixture(scope="module")
def outcomes():
    # Default idle timeouts (60 s): 10 s of paced silence is a normal task, not an idle one.
    srv = ServerProcess(config={"server": {"max_sessions": 64}}).start()
    try:
        pcm = {name: _to_pcm(make()) for name, make in CLIPS.items()}
        jobs = [(name, model, pace, vad) for name in CLIPS for model in MODELS for pace in PACES
                for vad in VADS]
        with sdk_at(srv), ThreadPoolExecutor(len(jobs)) as pool:
            futures = {job: pool.submit(_run, job[1], pcm[job[0]], *job[2:]) for job in jobs}
            results = {job: f.result(timeout=180) for job, f in futures.items()}
        decoded = sum(m["decoded"] for m in srv.health()["models"].values())
    finally:
        srv.stop()
    print("\n== hallucination runs: clip / model / pace / vad -> finals, non-empty partials, errors "
          f"(Whisper decodes on the server: {decoded})")
    for (name, model, pace, vad), cb in results.items():
        texts = [s.get("text") for s in cb.finals + cb.partials if s.get("text")]
        print(f"{name:12} {model:24} {pace:8} {vad:10} finals={len(cb.finals)} "
              f"partials={len(cb.partials)} texts={texts} errors={cb.errors}")
    return results


@pytest.mark.parametrize("vad", list(VADS))
@pytest.mark.parametrize("pace", PACES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("clip_name", list(CLIPS))
def test_no_text_without_speech(outcomes, clip_name, model, pace, vad):
    cb = outcomes[(clip_name, model, pace, vad)]
    assert not cb.errors, f"the task failed: {cb.errors}"
    assert cb.completed.is_set(), "no task-finished (on_complete) after stop()"
    assert not cb.finals, f"final sentence(s) for {clip_name}: {[s.get('text') for s in cb.finals]}"
    texts = [s.get("text") for s in cb.partials if s.get("text")]
    assert not texts, f"non-empty partial(s) for {clip_name}: {texts}"


def test_the_synthetic_clips_are_what_they_claim():
    # Guard the generators themselves: deterministic, 10 s, levels as intended, no clipping.
    for make in CLIPS.values():
        a, b = make(), make()
        assert np.array_equal(a, b) and a.size == int(SECONDS * SR)
        assert np.abs(a).max() <= 1.0
    assert not np.any(silence())
    for make in (white_noise, pink_noise, music):
        rms_db = 20 * np.log10(np.sqrt(np.mean(make() ** 2)))
        assert -30 < rms_db < -10, (make.__name__, rms_db)

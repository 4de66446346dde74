"""Accuracy through the realtime path, against plain offline faster-whisper on the same clips.

Every clip of the shared audio folder goes through the official SDK's `Recognition.call()` (model
`paraformer-realtime-v2`, raw s16le PCM at the clip's native sample rate, which the SDK sends in
12 800-byte frames back to back), and through `faster_whisper.WhisperModel(...).transcribe()` with
default options on the same model folder. Both are scored with `tests.support.error_rate` (English
and other space-delimited languages: WER after lower-casing and removing punctuation; Mandarin and
Japanese: CER on simplified characters without spaces or punctuation, both sides normalised alike).

Asserted: mean English WER <= 12 %, mean Mandarin CER <= 15 %, and for each of the two the realtime
mean is at most 2 points (absolute) worse than offline faster-whisper measured in this same run.
Japanese, German and French are measured and printed only. Run with `-s` to see the table.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dashscope.audio.asr import Recognition

from tests.support import AUDIO_DIR, error_rate, manifest, pcm16, sdk_at

MODEL = "paraformer-realtime-v2"
# Languages the paraformer-realtime-v2 profile serves (voxscope/profiles.yaml). Spanish is not one
# of them: detection is restricted to the profile's languages and language_hints=['es'] is refused,
# so the Spanish clip is only decoded offline (printed, not compared).
PROFILE_LANGUAGES = {"zh", "yue", "en", "ja", "ko", "de", "fr", "ru"}
MAX_MEAN = {"en": 0.12, "zh": 0.15}
MAX_GAP = 0.02  # realtime mean may be at most this much worse than offline faster-whisper
CLIENT_THREADS = 3


def _realtime_text(c: dict, workdir: Path) -> tuple[str, float, str | None]:
    """(final text, wall seconds, failure) for one clip; a failed task counts as no text."""
    rate = int(c["sample_rate"])
    path = workdir / f"{c['id']}.pcm"
    path.write_bytes(pcm16(str(AUDIO_DIR / c["path"]), rate))
    start = time.monotonic()
    rec = Recognition(model=MODEL, format="pcm", sample_rate=rate, callback=None)
    res = rec.call(str(path))
    if res.status_code != 200:
        return "", time.monotonic() - start, f"status {res.status_code} {res.code}: {res.message}"
    sentences = res.get_sentence() or []
    if isinstance(sentences, dict):  # no final at all: output is the task-finished output
        sentences = []
    return " ".join(s["text"] for s in sentences).strip(), time.monotonic() - start, None


def _offline_text(model, c: dict) -> str:
    segments, _info = model.transcribe(str(AUDIO_DIR / c["path"]))
    return " ".join(s.text.strip() for s in segments).strip()


@pytest.fixture(scope="module")
def results(server):
    return measure(server)


def measure(server) -> list[dict]:
    """Realtime and offline texts and error rates for every clip (prints the table)."""
    from faster_whisper import WhisperModel

    from voxscope.engine.model_store import ModelStore

    clips = manifest()
    realtime: dict[str, tuple[str, float, str | None]] = {}
    t0 = time.monotonic()
    with sdk_at(server), tempfile.TemporaryDirectory(prefix="voxscope-acc-") as tmp, \
            ThreadPoolExecutor(CLIENT_THREADS) as pool:
        futures = {c["id"]: pool.submit(_realtime_text, c, Path(tmp)) for c in clips
                   if c["lang"] in PROFILE_LANGUAGES}
        realtime = {cid: f.result() for cid, f in futures.items()}
    t_realtime = time.monotonic() - t0

    t0 = time.monotonic()
    model = WhisperModel(str(ModelStore().resolve("whisper-base")), device="cpu",
                         compute_type="int8")
    offline = {c["id"]: _offline_text(model, c) for c in clips}
    del model
    t_offline = time.monotonic() - t0

    rows = []
    for c in clips:
        rt_text, rt_s, rt_failure = realtime.get(c["id"], (None, None, None))
        rows.append({
            "id": c["id"], "lang": c["lang"], "reference": c["reference"],
            "realtime": rt_text, "offline": offline[c["id"]], "rt_s": rt_s,
            "rt_failure": rt_failure,
            "rt_err": None if rt_text is None else error_rate(c["lang"], c["reference"], rt_text),
            "off_err": error_rate(c["lang"], c["reference"], offline[c["id"]]),
        })
    _print_table(rows, t_realtime, t_offline)
    return rows


def _mean(rows: list[dict], lang: str, key: str) -> float:
    vals = [r[key] for r in rows if r["lang"] == lang and r[key] is not None]
    return statistics.fmean(vals) if vals else float("nan")


def _print_table(rows: list[dict], t_realtime: float, t_offline: float) -> None:
    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    print(f"\n== accuracy: realtime ({MODEL}, SDK call(), native-rate pcm) vs offline faster-whisper "
          f"== realtime {t_realtime:.1f} s, offline {t_offline:.1f} s")
    print(f"{'clip':32} {'lang':4} {'realtime':>8} {'offline':>8} {'rt wall':>8}")
    for r in rows:
        wall = f"{r['rt_s']:.1f} s" if r["rt_s"] is not None else "-"
        print(f"{r['id']:32} {r['lang']:4} {pct(r['rt_err']):>8} {pct(r['off_err']):>8} {wall:>8}")
        print(f"    ref: {r['reference']}")
        print(f"    rt : {r['realtime'] if r['realtime'] is not None else '(not sent: see module doc)'}"
              + (f"  TASK FAILED: {r['rt_failure']}" if r["rt_failure"] else ""))
        print(f"    off: {r['offline']}")
    print("means:")
    for lang in dict.fromkeys(r["lang"] for r in rows):
        print(f"  {lang}: realtime {pct(_mean(rows, lang, 'rt_err') if lang in PROFILE_LANGUAGES else None)}"
              f"  offline {pct(_mean(rows, lang, 'off_err'))}")


@pytest.mark.parametrize("lang", sorted(MAX_MEAN))
def test_realtime_mean_error_rate(results, lang):
    mean = _mean(results, lang, "rt_err")
    assert mean <= MAX_MEAN[lang], (
        f"{lang}: realtime mean error {mean:.3f} > {MAX_MEAN[lang]}: "
        + "; ".join(f"{r['id']}={r['rt_err']:.2f} {r['realtime']!r}" for r in results
                    if r["lang"] == lang))


@pytest.mark.parametrize("lang", sorted(MAX_MEAN))
def test_realtime_close_to_offline_faster_whisper(results, lang):
    rt, off = _mean(results, lang, "rt_err"), _mean(results, lang, "off_err")
    assert rt <= off + MAX_GAP, (
        f"{lang}: realtime mean {rt:.3f} is more than {MAX_GAP} worse than offline {off:.3f}: "
        + "; ".join(f"{r['id']}: rt={r['rt_err']:.2f} off={r['off_err']:.2f}" for r in results
                    if r["lang"] == lang))


def test_every_clip_in_the_profile_languages_was_recognised(results):
    # Also the measured-only languages: every task completes and returns text for its real clip.
    failed = {r["id"]: r["rt_failure"] for r in results if r["rt_failure"]}
    assert not failed, f"realtime tasks failed: {failed}"
    empty = [r["id"] for r in results if r["realtime"] is not None and not r["realtime"].strip()]
    assert not empty, f"no final text for {empty}"

"""Hot-word recall with and without a vocabulary, and the latency translation adds (Gummy).

Starts a real `voxscope serve` and uses the official SDK:

1. For each clip of the hot-word set (real speech from shared/audio; the words are terms of the
   reference), `Recognition.call` without and with a `vocabulary_id`: recall of the hot words,
   and the error rate of clips that do *not* contain them with an unrelated vocabulary attached
   (biasing must not hurt them).
2. `TranslationRecognizerRealtime` on a Mandarin stream at real-time pace, translation off and
   on (`translation_target_languages=['en']`): delay from the end of each sentence's speech to
   its final result.

    python benchmarks/bench_hotwords.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_streaming import build_stream, send_paced  # noqa: E402
from tests.support import ServerProcess, clip, clip_pcm, error_rate, wav_bytes  # noqa: E402

# clip -> hot words that occur in its reference (the base model misses some of them).
HOTWORD_SET = {
    "zh_funasr_asr_example": ["达摩院", "语音识别"],
    "zh_BAC009S0764W0121": ["停滞", "交易"],
    "en_ldc93s1": ["greasy", "wash water"],
    "en_ljspeech_LJ001-0001": ["Exhibition", "crafts"],
    "en_librispeech_1995-1837-0001": ["fantasy", "sorrow"],
}
# clips without those words, recognised with the whole set attached.
CONTROL = ["en_jfk_inaugural", "en_beckett", "en_fleurs_000", "zh_paddlespeech_zh",
           "zh_cosyvoice_zero_shot_prompt"]
ZH_STREAM = ["zh_funasr_asr_example", "zh_paddlespeech_zh", "zh_BAC009S0764W0121",
             "zh_cosyvoice_zero_shot_prompt"]


def recognise(path: str, vocabulary_id: str | None) -> str:
    from dashscope.audio.asr import Recognition

    kw = {"vocabulary_id": vocabulary_id} if vocabulary_id else {}
    r = Recognition(model="paraformer-realtime-v2", format="wav", sample_rate=16000,
                    callback=None, **kw).call(path)
    assert r.status_code == 200, (r.code, r.message)
    return "".join(s["text"] for s in r.get_sentence() or [])


def found(word: str, text: str) -> bool:
    return word.lower().replace(" ", "") in text.lower().replace(" ", "")


def gummy_delays(pcm: bytes, regions, translate: bool) -> list[float]:
    from dashscope.audio.asr import TranslationRecognizerCallback, TranslationRecognizerRealtime

    events: list[tuple[float, int]] = []

    class CB(TranslationRecognizerCallback):
        def on_event(self, request_id, transcription_result, translation_result, usage) -> None:
            if transcription_result is not None and transcription_result.is_sentence_end:
                events.append((time.monotonic(), transcription_result.end_time))

    t = TranslationRecognizerRealtime(model="gummy-realtime-v1", format="pcm", sample_rate=16000,
                                      transcription_enabled=True, translation_enabled=translate,
                                      translation_target_languages=["en"], callback=CB())
    t.start()
    t0 = send_paced(t.send_audio_frame, pcm)
    t.stop()
    delays = []
    for _, end in regions:
        finals = [at - t0 for at, e in events if abs(e / 1000 - end) < 1.5]
        if finals:
            delays.append(min(finals) - end)
    return delays


def main() -> None:
    import dashscope
    from dashscope.audio.asr import VocabularyService

    srv = ServerProcess().start(timeout=300)
    dashscope.api_key = "bench"
    dashscope.base_http_api_url = srv.http + "/api/v1"
    dashscope.base_websocket_api_url = srv.ws_inference
    tmp = Path(tempfile.mkdtemp(prefix="voxscope-bench-hw-"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}")
    try:
        service = VocabularyService()
        words = [w for ws in HOTWORD_SET.values() for w in ws]
        vid = service.create_vocabulary(target_model="paraformer-realtime-v2", prefix="bench",
                                        vocabulary=[{"text": w, "weight": 4} for w in words])
        hits = {"without": 0, "with": 0}
        per_clip = []
        for name, hws in HOTWORD_SET.items():
            path = tmp / f"{name}.wav"
            path.write_bytes(wav_bytes(clip_pcm(name)))
            row = {"clip": name}
            for label, v in (("without", None), ("with", vid)):
                text = recognise(str(path), v)
                got = [w for w in hws if found(w, text)]
                hits[label] += len(got)
                row[label] = {"found": got, "text": text}
            per_clip.append(row)
        control = {"without": [], "with": []}
        for name in CONTROL:
            path = tmp / f"{name}.wav"
            path.write_bytes(wav_bytes(clip_pcm(name)))
            ref = clip(name)
            for label, v in (("without", None), ("with", vid)):
                control[label].append(error_rate(ref["lang"], ref["reference"],
                                                 recognise(str(path), v)))
        for row in per_clip:
            print(json.dumps(row, ensure_ascii=False))
        print(json.dumps({
            "hotwords": len(words),
            "recall_without_vocabulary": round(hits["without"] / len(words), 3),
            "recall_with_vocabulary": round(hits["with"] / len(words), 3),
            "control_error_rate_without": round(float(np.mean(control["without"])), 4),
            "control_error_rate_with": round(float(np.mean(control["with"])), 4),
        }))

        pcm, regions = build_stream(0, ZH_STREAM)
        off = gummy_delays(pcm, regions, translate=False)
        on = gummy_delays(pcm, regions, translate=True)
        print(json.dumps({
            "sentences": len(regions),
            "final_delay_s_median_transcription_only": round(float(np.median(off)), 2),
            "final_delay_s_median_with_translation": round(float(np.median(on)), 2),
            "added_by_translation_s": round(float(np.median(on) - np.median(off)), 2),
        }))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

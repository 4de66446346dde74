"""Issue 9 item 16: the forced cut of a sentence at Whisper's 30 s window loses no words.

Continuous read speech longer than 30 s (the OSR clip: ten sentences, short pauses; and clips
joined with 0.25 s pauses) at `max_sentence_silence` settings no pause reaches, so only the forced
cut ends sentences, sent as fast as the SDK's `call()` sends a file and once at real-time pace.
Every reference word must come back: at most one deleted word (whisper-base's own slips) and the
words around the cut ("She called his name" in the OSR clip) present.
"""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
from dashscope.audio.asr import Recognition

from tests.protocols.inference_helpers import stream_recognition
from tests.support import clip, clip_pcm, norm_words, sdk_at, wav_bytes

OSR = "en_osr_us_000_0034_8k"
JOINED = ["en_ljspeech_LJ001-0001", "en_librispeech_1995-1837-0001", "en_jfk_inaugural",
          "en_fleurs_000"]


def _joined() -> tuple[bytes, str]:
    gap = np.zeros(int(0.25 * 16000), dtype="<i2")
    parts = []
    for cid in JOINED:
        parts += [np.frombuffer(clip_pcm(cid), "<i2"), gap]
    return np.concatenate(parts).tobytes(), " ".join(clip(c)["reference"] for c in JOINED)


AUDIO = {"osr": (clip_pcm(OSR), clip(OSR)["reference"]), "joined": _joined()}


def _check(text: str, reference: str, sentences: list[str]) -> None:
    ref, hyp = " ".join(norm_words(reference)), " ".join(norm_words(text))
    out = jiwer.process_words(ref, hyp)
    info = (f"deletions {out.deletions}, WER {out.wer:.3f}\n" + "\n".join(sentences))
    assert len(sentences) >= 2, info  # the audio is longer than one window: it was cut
    assert out.deletions <= 1, info
    assert out.wer <= 0.1, info


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("name", "silence", "semantic"), [
    ("osr", 6000, False), ("osr", 2000, True), ("joined", 6000, False), ("joined", 1000, False)])
def test_forced_cut_keeps_every_word(server, tmp_path, name, silence, semantic):
    pcm, reference = AUDIO[name]
    path = tmp_path / f"{name}.wav"
    path.write_bytes(wav_bytes(pcm))
    with sdk_at(server):
        r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None,
                        max_sentence_silence=silence, semantic_punctuation_enabled=semantic)
        res = r.call(str(path))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    sentences = [s["text"] for s in res.get_sentence() or []]
    _check(" ".join(sentences), reference, sentences)
    if name == "osr":
        assert "she called his name" in " ".join(norm_words(" ".join(sentences))), sentences


@pytest.mark.timeout(300)
def test_forced_cut_keeps_every_word_at_real_time_pace(server):
    pcm, reference = AUDIO["osr"]
    with sdk_at(server):
        run = stream_recognition(pcm, max_sentence_silence=6000, pace=0.1)
    sentences = [c.sentence["text"] for c in run.recorder.finals()]
    assert not run.recorder.errors(), run.recorder.summary()
    _check(" ".join(sentences), reference, sentences)
    assert "she called his name" in " ".join(norm_words(" ".join(sentences))), sentences

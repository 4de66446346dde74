"""A transcription batched with a translation of the same audio stays in its own language.

Gummy submits a sentence's translate-task decode beside its final, so the two can share a batch.
The translate task suppresses tokens that start a CJK character (engine/english_only.py); one
generate call had one suppressed set, taken from its first item, so a Mandarin final batched
behind its translation came out in English ("I think the most important thing ...")."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.support import clip_pcm
from voxscope.engine.model_store import ModelStore
from voxscope.engine.types import DecodeOptions
from voxscope.engine.whisper_backend import WhisperBackend

HAN = re.compile("[\u4e00-\u9fff]")


@pytest.mark.timeout(300)
def test_each_item_keeps_its_task_whatever_shares_its_batch():
    backend = WhisperBackend(ModelStore().resolve("whisper-base"))
    audio = np.frombuffer(clip_pcm("zh_paddlespeech_zh"), "<i2").astype(np.float32) / 32768
    common = {"language": "zh", "beam_size": 5, "full_window": True, "word_timestamps": True}
    translate = (audio, DecodeOptions(task="translate", **common))
    transcribe = (audio, DecodeOptions(task="transcribe", **common))
    for items in ([translate, transcribe], [transcribe, translate]):
        texts = {opts.task: tr.text for (_, opts), tr in zip(items, backend.decode_batch(items),
                                                              strict=True)}
        assert HAN.search(texts["transcribe"]), texts  # Mandarin, as transcribed alone
        assert not HAN.search(texts["translate"]) and re.search("[A-Za-z]", texts["translate"]), texts

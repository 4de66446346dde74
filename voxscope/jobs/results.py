"""The result documents served at `transcription_url` (REST §2.6), from stored sentences.

Sentences are stored as they come out of the engine (seconds); the two documented shapes are
built from them: Qwen filetrans (sentence ids from 0, words only with enable_words) and
Paraformer / Fun-ASR (ids from 1, always words, content duration).

The documents are served by unauthenticated signed links, so they name an uploaded input by its
file name only, never by its internal `oss://` key (the task status, behind the API key, still
shows the URL as submitted). Paraformer's `properties.audio_format` is the codec as DashScope
reports it (`pcm_s16le`, `mp3`, `aac`, `opus`, ...), Qwen's `audio_info.format` the container.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from voxscope.engine.offline import Sentence
from voxscope.engine.text import is_cjk


def billed_seconds(files: Iterable[Any]) -> float:
    """A finished task's audio seconds: the sum over its files (the task's `usage`, rounded up,
    and what its usage record counts)."""
    return sum(f.duration_s for f in files)


def stored_sentence(s: Sentence, offset: float) -> dict[str, Any]:
    return {"begin": round(s.begin + offset, 3), "end": round(s.end + offset, 3), "text": s.text,
            "language": s.language,
            "words": [[round(w.start + offset, 3), round(w.end + offset, 3), w.text, w.punctuation]
                      for w in s.words]}


def shared_file_url(url: str) -> str:
    """The input as a shared document names it: an upload's file name instead of its key."""
    if url[:6].lower() == "oss://":
        return url.rstrip("/").rsplit("/", 1)[-1]
    return url


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _words(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"begin_time": _ms(a), "end_time": max(_ms(b), _ms(a)), "text": t, "punctuation": p}
            for a, b, t, p in s["words"]]


def _join(sentences: list[dict[str, Any]]) -> str:
    out = ""
    for s in sentences:
        text = s["text"].strip()
        if out and not (is_cjk(s["language"]) and is_cjk(sentences[0]["language"])):
            out += " "
        out += text
    return out


def qwen_document(file_url: str, info: dict[str, Any], channels: dict[int, list[dict]],
                  enable_words: bool) -> dict[str, Any]:
    transcripts = []
    for channel, sentences in channels.items():
        items = []
        for i, s in enumerate(sentences):
            item = {"sentence_id": i, "begin_time": _ms(s["begin"]),
                    "end_time": max(_ms(s["end"]), _ms(s["begin"]) + 1), "text": s["text"],
                    "language": s["language"]}
            if enable_words:
                item["words"] = _words(s)
            items.append(item)
        transcripts.append({"channel_id": channel, "text": _join(sentences), "sentences": items})
    return {"file_url": shared_file_url(file_url),
            "audio_info": {"format": info["format"], "sample_rate": info["sample_rate"]},
            "transcripts": transcripts}


def paraformer_document(file_url: str, info: dict[str, Any],
                        channels: dict[int, list[dict]]) -> dict[str, Any]:
    transcripts = []
    for channel, sentences in channels.items():
        items = [{"begin_time": _ms(s["begin"]),
                  "end_time": max(_ms(s["end"]), _ms(s["begin"]) + 1), "text": s["text"],
                  "sentence_id": i + 1, "words": _words(s)} for i, s in enumerate(sentences)]
        speech = sum(max(s["end"] - s["begin"], 0.0) for s in sentences)
        transcripts.append({"channel_id": channel, "content_duration_in_milliseconds": _ms(speech),
                            "text": _join(sentences), "sentences": items})
    return {"file_url": shared_file_url(file_url),
            "properties": {"audio_format": info.get("codec") or info["format"],
                           "channels": list(channels),
                           "original_sampling_rate": info["sample_rate"],
                           "original_duration_in_milliseconds": _ms(info["duration"])},
            "transcripts": transcripts}

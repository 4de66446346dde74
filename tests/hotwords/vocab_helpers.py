"""Helpers for the hot-word acceptance tests (rest-transcription.md §5, matrix rows 14, 66-72).

The client is the official SDK: `dashscope.audio.asr.VocabularyService` (REST, §5.1),
`dashscope.audio.asr.AsrPhraseManager` (legacy fine-tune endpoints, §5.2), and `Recognition` /
`TranslationRecognizerRealtime` with `vocabulary_id` (inference-websocket.md §4.2). Raw `httpx`
requests are used only for bodies the SDK never sends (malformed JSON, unknown actions).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from dashscope.audio.asr import VocabularyService
from dashscope.audio.asr.vocabulary import VocabularyServiceException

from tests.support import norm_chars, norm_words

VOCAB_ID = re.compile(r"vocab-(?P<prefix>[a-z0-9]{1,9})-[0-9a-f]{32}")
CUSTOMIZATION = "/api/v1/services/audio/asr/customization"




# -- errors ----------------------------------------------------------------------------------------
@dataclass
class VocabError:
    request_id: str | None
    status: int
    code: str
    message: str


def vocab_error(exc: VocabularyServiceException) -> VocabError:
    # SDK 2.0.2 keeps the fields in private attributes only (REST §5.1: request_id, status, code,
    # message from the error envelope, §7.1)
    return VocabError(exc._request_id, exc._status_code, exc._code, exc._error_message)  # noqa: SLF001


@contextlib.contextmanager
def refused(*statuses: int) -> Iterator[list[VocabError]]:
    """The block must raise VocabularyServiceException with one of `statuses` (default 400), a
    non-empty code and message; the parsed error is appended to the yielded list."""
    statuses = statuses or (400,)
    box: list[VocabError] = []
    with pytest.raises(VocabularyServiceException) as info:
        yield box
    err = vocab_error(info.value)
    box.append(err)
    assert err.status in statuses, (err, statuses)
    assert isinstance(err.code, str) and err.code, err
    assert isinstance(err.message, str) and err.message, err


def check_envelope(resp: httpx.Response, *statuses: int) -> dict:
    """A DashScope error envelope (REST §7.1): JSON `{request_id, code, message}`, 4xx status."""
    assert resp.status_code in statuses, (resp.status_code, resp.text[:500])
    assert "application/json" in resp.headers.get("content-type", ""), (resp.headers, resp.text[:500])
    body = resp.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("request_id"), str) and body["request_id"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# -- vocabularies a test created, deleted afterwards ----------------------------------------------
@dataclass
class Vocabs:
    """A VocabularyService (one API key) that remembers what it created and deletes it at the end."""

    api_key: str | None = None
    service: VocabularyService = field(init=False)
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.service = VocabularyService(api_key=self.api_key)

    def create(self, vocabulary: list[dict], prefix: str = "testpfx",
               target_model: str = "fun-asr-realtime") -> str:
        vid = self.service.create_vocabulary(target_model=target_model, prefix=prefix,
                                             vocabulary=vocabulary)
        assert isinstance(vid, str) and vid, vid
        self.created.append(vid)
        return vid

    def list_all(self, prefix: str | None = None, page_size: int = 10) -> list[dict]:
        """Every page of list_vocabularies until a short page."""
        out: list[dict] = []
        for page in range(100):
            items = self.service.list_vocabularies(prefix=prefix, page_index=page, page_size=page_size)
            assert isinstance(items, list), items
            out.extend(items)
            if len(items) < page_size:
                return out
        raise AssertionError(f"more than 100 pages: {len(out)} items")

    def cleanup(self) -> None:
        for vid in self.created:
            with contextlib.suppress(VocabularyServiceException):
                self.service.delete_vocabulary(vid)
        self.created.clear()


# -- hot-word matching -----------------------------------------------------------------------------
def has_hotword(lang: str, text: str, word: str) -> bool:
    """`word` occurs in `text`: Chinese/Japanese on simplified characters without punctuation;
    other languages as a whole-word sequence after lower-casing and removing punctuation."""
    if lang in ("zh", "ja"):
        return norm_chars(word) in norm_chars(text)
    w, t = norm_words(word), norm_words(text)
    return any(t[i : i + len(w)] == w for i in range(len(t) - len(w) + 1))

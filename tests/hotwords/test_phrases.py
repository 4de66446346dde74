"""Matrix row 72: the legacy `AsrPhraseManager` (fine-tune endpoints, rest-transcription.md §5.2).

voxscope does not implement phrase resources; it answers every legacy call with a clear 4xx
DashScope error envelope (`{request_id, code, message}`, the message pointing to
VocabularyService), never a 5xx or an HTML page. The SDK (2.0.2) does not raise for these: each
method returns its response object with the HTTP status, code and message (checked here), and the
raw requests it makes are replayed with httpx to check the envelope itself.
"""

from __future__ import annotations

import httpx
import pytest
from dashscope.audio.asr import AsrPhraseManager

from tests.hotwords.vocab_helpers import check_envelope

pytestmark = pytest.mark.timeout(60)

PHRASE_ID = "phrase-" + "0" * 32
FOUR_XX = tuple(range(400, 500))


def _check_refused(resp) -> None:
    info = (getattr(resp, "status_code", None), getattr(resp, "code", None),
            getattr(resp, "message", None))
    assert isinstance(resp.status_code, int) and 400 <= resp.status_code < 500, info
    assert isinstance(resp.code, str) and resp.code, info
    assert isinstance(resp.message, str) and resp.message, info
    assert "vocabulary" in resp.message.lower(), info  # points to VocabularyService
    assert resp.output is None, (info, resp.output)


def test_row72_create_phrases(dashscope_at):
    _check_refused(AsrPhraseManager.create_phrases(model="paraformer-realtime-v1",
                                                   phrases={"Bailian": 90}))


def test_row72_update_phrases(dashscope_at):
    _check_refused(AsrPhraseManager.update_phrases(model="paraformer-realtime-v1", phrase_id=PHRASE_ID,
                                                   phrases={"Qwen": 80}))


def test_row72_query_phrases(dashscope_at):
    _check_refused(AsrPhraseManager.query_phrases(phrase_id=PHRASE_ID))


def test_row72_list_phrases(dashscope_at):
    _check_refused(AsrPhraseManager.list_phrases(page=1, page_size=10))


def test_row72_delete_phrases(dashscope_at):
    _check_refused(AsrPhraseManager.delete_phrases(phrase_id=PHRASE_ID))


# the requests the SDK makes (REST §5.2), raw: JSON envelope, 4xx, never 5xx/HTML
CREATE_BODY = {"model": "paraformer-realtime-v1", "training_file_ids": [], "validation_file_ids": [],
               "hyper_parameters": {"phrase_list": {"Bailian": 90}}, "training_type": "compile_asr_phrase"}
RAW = [
    ("POST", "/api/v1/fine-tunes", CREATE_BODY),
    ("POST", "/api/v1/fine-tunes", {**CREATE_BODY, "finetuned_output": PHRASE_ID}),
    ("GET", f"/api/v1/fine-tunes/outputs/{PHRASE_ID}", None),
    ("GET", "/api/v1/fine-tunes/outputs?page_no=1&page_size=10", None),
    ("DELETE", f"/api/v1/fine-tunes/outputs/{PHRASE_ID}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), RAW, ids=["create", "update", "query", "list",
                                                                "delete"])
def test_row72_raw_envelope(server, method, path, body):
    resp = httpx.request(method, server.http + path, json=body, timeout=10,
                         headers={"Authorization": "Bearer test-key"})
    envelope = check_envelope(resp, *FOUR_XX)
    assert "vocabulary" in envelope["message"].lower(), envelope


def test_row72_malformed_body_still_4xx(server):
    resp = httpx.post(server.http + "/api/v1/fine-tunes", content=b"{not json", timeout=10,
                      headers={"Authorization": "Bearer test-key", "Content-Type": "application/json"})
    check_envelope(resp, *FOUR_XX)

"""Hot-word vocabularies through the official SDK: matrix rows 66-71 and the service's limits.

`dashscope.audio.asr.VocabularyService` against a real `voxscope serve`
(`POST /api/v1/services/audio/asr/customization`, rest-transcription.md §5.1): create / list /
query / update / delete, every documented limit (prefix, entry count, text length, weight, lang,
target_model, vocabularies per key), list paging and prefix filtering, per-key isolation and 401 on
a server with API keys, and raw bodies the SDK never sends (malformed JSON, unknown action).

Every test deletes what it created (`Vocabs.cleanup`), so the per-key limit test can count.
"""

from __future__ import annotations

import httpx
import pytest
from dashscope.audio.asr import Recognition, VocabularyService

from tests.conftest import FAST_ENV
from tests.hotwords.vocab_helpers import (
    CUSTOMIZATION,
    VOCAB_ID,
    Vocabs,
    check_envelope,
    refused,
)
from tests.protocols.inference_helpers import check_failed_call
from tests.support import ServerProcess, clip, sdk_at

pytestmark = pytest.mark.timeout(60)

BAILIAN = [{"text": "Bailian", "weight": 4, "lang": "zh"}]
DEFAULT_MAX_VOCABULARIES = 10


@pytest.fixture()
def vocabs(dashscope_at):
    v = Vocabs()
    yield v
    v.cleanup()


# -- rows 66-70: the life cycle ------------------------------------------------------------------------
def test_rows66_to_70_life_cycle(vocabs):
    s = vocabs.service
    # row 66: create
    vid = vocabs.create(BAILIAN, prefix="testpfx", target_model="fun-asr-realtime")
    assert VOCAB_ID.fullmatch(vid) and VOCAB_ID.fullmatch(vid)["prefix"] == "testpfx", vid
    created_request = s.get_last_request_id()
    assert isinstance(created_request, str) and created_request, created_request

    # row 67: list with and without prefix
    for items in (s.list_vocabularies(prefix="testpfx"), s.list_vocabularies()):
        assert isinstance(items, list) and all(isinstance(i, dict) for i in items), items
        mine = [i for i in items if i.get("vocabulary_id") == vid]
        assert len(mine) == 1, items
        assert set(mine[0]) >= {"vocabulary_id", "gmt_create", "gmt_modified", "status"}, mine
        assert mine[0]["status"] == "OK", mine
    assert s.get_last_request_id() and s.get_last_request_id() != created_request

    # row 68: query
    q = s.query_vocabulary(vid)
    assert isinstance(q, dict), q
    assert q["vocabulary"] == BAILIAN, q
    assert q["target_model"] == "fun-asr-realtime", q
    assert q["prefix"] == "testpfx", q
    assert q["status"] == "OK", q
    assert q.get("gmt_create") and q.get("gmt_modified"), q

    # row 69: update, then the query shows the new list
    assert s.update_vocabulary(vid, [{"text": "Qwen", "weight": 4}]) is None
    q2 = s.query_vocabulary(vid)
    assert q2["vocabulary"] == [{"text": "Qwen", "weight": 4}], q2
    assert q2["target_model"] == "fun-asr-realtime" and q2["prefix"] == "testpfx", q2
    assert q2["gmt_create"] == q["gmt_create"], (q, q2)
    assert q2.get("gmt_modified"), q2

    # row 70: delete, then query / update / delete fail with a 4xx (404: not found)
    assert s.delete_vocabulary(vid) is None
    vocabs.created.remove(vid)
    with refused(404) as err:
        s.query_vocabulary(vid)
    assert "notfound" in err[0].code.lower().replace("_", "").replace(".", ""), err
    with refused(404):
        s.update_vocabulary(vid, [{"text": "Qwen"}])
    with refused(404):
        s.delete_vocabulary(vid)
    assert all(i.get("vocabulary_id") != vid for i in vocabs.list_all()), "deleted id still listed"


@pytest.mark.parametrize("vid", ["vocab-testpfx-" + "0" * 32, "nonsense", "vocab-x"])
def test_unknown_vocabulary_id_is_404(vocabs, vid):
    with refused(404):
        vocabs.service.query_vocabulary(vid)
    with refused(404):
        vocabs.service.update_vocabulary(vid, BAILIAN)
    with refused(404):
        vocabs.service.delete_vocabulary(vid)


def test_weight_defaults_to_4_and_lang_is_optional(vocabs):
    vid = vocabs.create([{"text": "Qwen"}, {"text": "通义千问", "weight": 2}])
    q = vocabs.service.query_vocabulary(vid)
    entries = q["vocabulary"]
    assert [e["text"] for e in entries] == ["Qwen", "通义千问"], q
    assert [e["weight"] for e in entries] == [4, 2], q


@pytest.mark.parametrize("model", ["paraformer-realtime-v2", "paraformer-realtime-8k-v2",
                                   "gummy-realtime-v1", "fun-asr-realtime-2025-09-15"])
def test_other_hotword_models_accepted(vocabs, model):
    vid = vocabs.create(BAILIAN, prefix="models", target_model=model)
    assert vocabs.service.query_vocabulary(vid)["target_model"] == model


def test_limits_at_the_edge_are_accepted(vocabs):
    vid = vocabs.create([{"text": f"word{i}", "weight": 1 + i % 5} for i in range(500)], prefix="abcdefghi")
    assert VOCAB_ID.fullmatch(vid)["prefix"] == "abcdefghi", vid
    assert len(vocabs.service.query_vocabulary(vid)["vocabulary"]) == 500
    edge = [
        {"text": "达" * 15, "weight": 5},                              # 15 non-ASCII characters
        {"text": "one two three four five six seven", "weight": 1},  # 7 ASCII words
        {"text": "Qwen大模型", "weight": 3, "lang": "zh"},
        {"text": "x", "weight": 5, "lang": "en"},
    ]
    vid2 = vocabs.create(edge, prefix="0edge9")
    assert vocabs.service.query_vocabulary(vid2)["vocabulary"] == edge


# -- row 71 and every limit: 400 with code and message --------------------------------------------------
@pytest.mark.parametrize("prefix", ["BAD-PREFIX!", "", "abcdefghij", "Upper", "with space", "pre_fix",
                                    "préfix"])
def test_row71_bad_prefix(vocabs, prefix):
    with refused(400):
        vocabs.create(BAILIAN, prefix=prefix)


BAD_VOCABULARIES = {
    "empty-list": [],
    "501-entries": [{"text": f"w{i}", "weight": 4} for i in range(501)],
    "empty-text": [{"text": "", "weight": 4}],
    "blank-text": [{"text": "   ", "weight": 4}],
    "missing-text": [{"weight": 4}],
    "text-not-string": [{"text": 42, "weight": 4}],
    "16-non-ascii-chars": [{"text": "达" * 16, "weight": 4}],
    "mixed-16-chars": [{"text": "Qwen大模型Qwen大模型Qwen", "weight": 4}],
    "8-ascii-words": [{"text": "one two three four five six seven eight", "weight": 4}],
    "weight-0": [{"text": "Qwen", "weight": 0}],
    "weight-6": [{"text": "Qwen", "weight": 6}],
    "weight-negative": [{"text": "Qwen", "weight": -1}],
    "weight-fraction": [{"text": "Qwen", "weight": 2.5}],
    "weight-word": [{"text": "Qwen", "weight": "high"}],
    "lang-not-string": [{"text": "Qwen", "weight": 4, "lang": 5}],
    "entry-not-object": ["Qwen"],
    "one-bad-among-good": [{"text": "Qwen", "weight": 4}, {"text": "Bailian", "weight": 9}],
}


@pytest.mark.parametrize("name", sorted(BAD_VOCABULARIES))
def test_bad_vocabulary_refused(vocabs, name):
    with refused(400):
        vocabs.create(BAD_VOCABULARIES[name], prefix="bad")
    assert not vocabs.list_all(prefix="bad"), "a refused vocabulary was stored"


def test_bad_vocabulary_in_update_refused(vocabs):
    vid = vocabs.create(BAILIAN)
    for bad in ([], [{"text": "Qwen", "weight": 6}], [{"text": "达" * 16}]):
        with refused(400):
            vocabs.service.update_vocabulary(vid, bad)
    assert vocabs.service.query_vocabulary(vid)["vocabulary"] == BAILIAN, "a refused update was applied"


@pytest.mark.parametrize("model", ["no-such-model", "", "fun-asr-flash-8k-realtime",
                                   "qwen3-asr-flash-realtime"])
def test_target_model_unknown_or_without_hotwords(vocabs, model):
    with refused(400) as err:
        vocabs.create(BAILIAN, target_model=model)
    if model:
        assert model in err[0].message or "target_model" in err[0].message, err


def test_max_vocabularies_per_key(vocabs):
    existing = len(vocabs.list_all())
    assert existing < DEFAULT_MAX_VOCABULARIES, "leftovers from other tests"
    for _ in range(DEFAULT_MAX_VOCABULARIES - existing):
        vocabs.create(BAILIAN, prefix="quota")
    with refused(400, 429) as err:
        vocabs.create(BAILIAN, prefix="quota")
    low = err[0].message.lower()
    assert any(w in low for w in ("limit", "max", "most", str(DEFAULT_MAX_VOCABULARIES))), err
    # deleting one frees a place
    vocabs.service.delete_vocabulary(vocabs.created.pop())
    vocabs.create(BAILIAN, prefix="quota")


# -- list paging and prefix filtering -------------------------------------------------------------------
def test_list_paging_and_prefix(vocabs):
    paged = {vocabs.create(BAILIAN, prefix="pagetest") for _ in range(5)}
    other = vocabs.create(BAILIAN, prefix="otherpfx")
    s = vocabs.service
    pages = [s.list_vocabularies(prefix="pagetest", page_index=i, page_size=2) for i in range(4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0], pages
    ids = [i["vocabulary_id"] for p in pages for i in p]
    assert len(ids) == len(set(ids)) and set(ids) == paged, (ids, paged)
    one_page = s.list_vocabularies(prefix="pagetest", page_size=10)
    assert {i["vocabulary_id"] for i in one_page} == paged, one_page
    assert [i["vocabulary_id"] for i in s.list_vocabularies(prefix="otherpfx")] == [other]
    everything = {i["vocabulary_id"] for i in vocabs.list_all()}
    assert everything >= paged | {other}, everything
    assert s.list_vocabularies(prefix="nosuchpfx") == []
    # a prefix filters on the whole prefix, not on its start
    assert s.list_vocabularies(prefix="page") == []


@pytest.mark.parametrize(("page_index", "page_size"), [(-1, 10), (0, 0), (0, -5)])
def test_list_bad_paging_refused(vocabs, page_index, page_size):
    with refused(400):
        vocabs.service.list_vocabularies(page_index=page_index, page_size=page_size)


# -- raw bodies the SDK never sends ----------------------------------------------------------------------
def _post(server, content: bytes, key: str = "test-key", **headers) -> httpx.Response:
    return httpx.post(server.http + CUSTOMIZATION, content=content, timeout=10,
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                               **headers})


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"create_vocabulary"',
                                  b'{"model": "speech-biasing", "parameters": {}}',
                                  b'{"model": "speech-biasing", "input": "create_vocabulary"}',
                                  b'{"model": "speech-biasing", "input": {}}'],
                         ids=["malformed", "empty", "array", "string", "no-input", "input-not-object",
                              "no-action"])
def test_malformed_body_is_400_envelope(server, body):
    check_envelope(_post(server, body), 400)


def test_unknown_action_is_400_envelope(server):
    body = check_envelope(_post(server, b'{"model": "speech-biasing", "parameters": {},'
                                        b' "input": {"action": "drop_vocabulary"}}'), 400)
    assert "drop_vocabulary" in body["message"] or "action" in body["message"].lower(), body


def test_raw_create_success_envelope(server):
    body = b'{"model": "speech-biasing", "parameters": {}, "input": {"action": "create_vocabulary",' \
           b' "target_model": "fun-asr-realtime", "prefix": "raw", "vocabulary": [{"text": "Bailian"}]}}'
    resp = _post(server, body)
    assert resp.status_code == 200, resp.text
    assert "application/json" in resp.headers["content-type"], resp.headers
    data = resp.json()
    assert data["request_id"] and VOCAB_ID.fullmatch(data["output"]["vocabulary_id"]), data
    vid = data["output"]["vocabulary_id"]
    resp = _post(server, b'{"model": "speech-biasing", "input": {"action": "delete_vocabulary", '
                         b'"vocabulary_id": "' + vid.encode() + b'"}}')
    assert resp.status_code == 200, resp.text


# -- a server with API keys: 401 and per-key isolation ----------------------------------------------------
KEYED_MAX = 2


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"api_keys": ["k1", "k2"],
                                                         "max_vocabularies": KEYED_MAX}}).start()
    yield srv
    srv.stop()


@pytest.fixture()
def k1_k2(keyed_server):
    with sdk_at(keyed_server, api_key="k1"):
        k1, k2 = Vocabs(api_key="k1"), Vocabs(api_key="k2")
        yield k1, k2
        k1.cleanup()
        k2.cleanup()


def test_wrong_key_is_401(keyed_server, k1_k2):
    wrong = VocabularyService(api_key="wrong")
    with refused(401) as err:
        wrong.create_vocabulary(target_model="fun-asr-realtime", prefix="testpfx", vocabulary=BAILIAN)
    assert err[0].code == "InvalidApiKey", err
    with refused(401):
        wrong.list_vocabularies()
    with refused(401):
        wrong.query_vocabulary("vocab-testpfx-" + "0" * 32)
    # raw: no key and a wrong key get the JSON envelope
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        resp = httpx.post(keyed_server.http + CUSTOMIZATION, headers=headers, timeout=10,
                          json={"model": "speech-biasing", "input": {"action": "list_vocabulary"}})
        assert check_envelope(resp, 401)["code"] == "InvalidApiKey", resp.text


def test_vocabularies_are_per_key(keyed_server, k1_k2):
    k1, k2 = k1_k2
    vid = k1.create(BAILIAN, prefix="iso")
    assert any(i["vocabulary_id"] == vid for i in k1.list_all()), "k1 does not see its own vocabulary"
    assert all(i["vocabulary_id"] != vid for i in k2.list_all()), "k2 sees k1's vocabulary"
    assert k2.service.list_vocabularies(prefix="iso") == []
    with refused(404):
        k2.service.query_vocabulary(vid)
    with refused(404):
        k2.service.update_vocabulary(vid, [{"text": "Qwen"}])
    with refused(404):
        k2.service.delete_vocabulary(vid)
    assert k1.service.query_vocabulary(vid)["vocabulary"] == BAILIAN, "k2 changed k1's vocabulary"
    # k2 cannot use k1's vocabulary in a recognition either
    with sdk_at(keyed_server, api_key="k2"):
        r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None,
                        vocabulary_id=vid)
        res = r.call(str(clip("en_ldc93s1")["file"]))
        check_failed_call(res, r, "vocabulary")
    with sdk_at(keyed_server, api_key="k1"):
        r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None,
                        vocabulary_id=vid)
        res = r.call(str(clip("en_ldc93s1")["file"]))
        assert res.status_code == 200, (res.status_code, res.code, res.message)


def test_max_vocabularies_setting_counts_per_key(keyed_server, k1_k2):
    k1, k2 = k1_k2
    for _ in range(KEYED_MAX):
        k1.create(BAILIAN, prefix="quota")
    with refused(400, 429):
        k1.create(BAILIAN, prefix="quota")
    # the other key has its own allowance
    for _ in range(KEYED_MAX):
        k2.create(BAILIAN, prefix="quota")
    with refused(400, 429):
        k2.create(BAILIAN, prefix="quota")

"""Smallest end-to-end check: the official SDK's Recognition.call against a real server."""

from dashscope.audio.asr import Recognition

from tests.support import clip, error_rate


def test_call_returns_the_clip_text(dashscope_at):
    c = clip("zh_funasr_asr_example")
    r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
    res = r.call(str(c["file"]))
    assert res.status_code == 200
    sentences = res.get_sentence()
    assert sentences and all(s["text"] for s in sentences)
    text = "".join(s["text"] for s in sentences)
    assert error_rate("zh", c["reference"], text) <= 0.15

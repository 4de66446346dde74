"""Which file windows get the conditioned repair pass, and when a repair replaces the first pass
(engine/offline.py `_weak`, `_repair_holds`): model-free, on hand-made transcripts."""

from __future__ import annotations

from voxscope.engine.offline import _repair_holds, _weak
from voxscope.engine.types import Transcript


def tr(text: str, lp: float = -0.3, cr: float = 1.4, no_speech: float = 0.05,
       temperature: float = 0.0) -> Transcript:
    return Transcript(text=text, words=[], language="en", avg_logprob=lp, compression_ratio=cr,
                      no_speech_prob=no_speech, temperature=temperature)


def test_weak_windows_are_unsure_looping_or_sampled_but_not_silent():
    assert not _weak(tr("fine"), -0.5)
    assert _weak(tr("unsure", lp=-0.7), -0.5)
    assert _weak(tr("", cr=3.1), -0.5)  # dropped as a loop
    assert _weak(tr("sampled", temperature=0.4), -0.5)
    assert not _weak(tr("", lp=-1.5, no_speech=0.9), -0.5)  # silence: a prompt would be copied
    assert not _weak(None, -0.5)


def test_a_repair_must_be_more_confident_and_need_no_fallback():
    first = tr("the grass and bushes were wet with due", lp=-0.7)
    assert _repair_holds(first, tr("the grass and bushes were wet with dew", lp=-0.2), "x")
    assert not _repair_holds(first, tr("the grass and bushes were wet with dew", lp=-0.8), "x")
    assert not _repair_holds(first, tr("the grass and bushes were wet with dew", lp=-0.2,
                                       temperature=0.4), "x")
    assert not _repair_holds(first, tr("", lp=-0.1), "x")
    assert not _repair_holds(first, None, "x")


def test_a_repair_that_copies_its_prompt_is_refused():
    context = "我认为跑步最重要的就是"
    first = tr("给我带来了身体健康", lp=-0.6)
    copied = tr("我认为跑步最重要的就是给我带来了身体健康", lp=-0.1)
    assert not _repair_holds(first, copied, context)
    # The same words are fine when the first pass heard them too (the speech repeats).
    heard = tr("我认为跑步最重要的就是给我带来了身体健康", lp=-0.7)
    assert _repair_holds(heard, tr("我认为跑步最重要的就是给我带来了身体健康。", lp=-0.1), context)
    # A short fix found in the context is not a copy.
    first_en = tr("a pink shell was found on the sandy bitch", lp=-0.7)
    assert _repair_holds(first_en, tr("a pink shell was found on the sandy beach", lp=-0.2),
                         "she walked along the beach")

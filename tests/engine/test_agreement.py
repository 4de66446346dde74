"""Preview agreement without the model: successive preview texts in, committed prefix out."""

from __future__ import annotations

from voxscope.engine.streaming.agreement import PreviewAgreement, common_prefix


def test_nothing_is_committed_before_two_previews_agree():
    a = PreviewAgreement()
    assert a.prefix is None and a.committed == ""
    assert a.insert("the cat", cjk=False) == 0
    assert a.prefix is None and a.tail == "the cat"


def test_growing_hypotheses_commit_whole_words():
    a = PreviewAgreement()
    a.insert("the cat sat", cjk=False)
    assert a.insert("the cat sits down", cjk=False) == len("the cat")  # "s" of sat/sits is not agreed
    assert a.committed == "the cat" and a.prefix == "the cat" and a.tail == "sits down"
    assert a.insert("the cat sits down on the mat", cjk=False) == len("the cat sits down")
    assert a.tail == "on the mat"


def test_a_preview_the_next_one_extends_is_agreed_whole():
    a = PreviewAgreement()
    a.insert(" hello there ", cjk=False)  # whitespace around a decode's text does not count
    assert a.insert("hello there, friend", cjk=False) == len("hello there")


def test_committed_text_never_shrinks_or_changes():
    a = PreviewAgreement()
    a.insert("we will meet at noon", cjk=False)
    a.insert("we will meet at nine", cjk=False)
    assert a.committed == "we will meet at"
    # The model ignored the forced prefix and rewrote the start: nothing is stable in this preview,
    # and the committed text stays for the next decode.
    assert a.insert("he will meet at nine", cjk=False) == 0
    assert a.committed == "we will meet at"
    assert a.insert("he will meet at nine today", cjk=False) == 0
    assert a.committed == "we will meet at"
    # A shorter agreement than the committed text does not undo it either.
    assert a.insert("we will", cjk=False) == 0
    assert a.committed == "we will meet at"


def test_chinese_agrees_character_by_character():
    a = PreviewAgreement()
    a.insert("今天天气", cjk=True)
    assert a.insert("今天天很好", cjk=True) == len("今天天")
    assert a.committed == "今天天" and a.tail == "很好"
    assert a.insert("今天天很好啊", cjk=True) == len("今天天很好")


def test_common_prefix_backs_off_to_a_word_boundary_outside_cjk():
    assert common_prefix("hello world", "hello word", cjk=False) == "hello"
    assert common_prefix("hello world", "hello word", cjk=True) == "hello wor"
    assert common_prefix("hello", "help", cjk=False) == ""
    assert common_prefix("", "anything", cjk=False) == ""
    assert common_prefix("same text", "same text", cjk=False) == "same text"

"""A final in another script than its unchecked previews is not rechecked for disagreeing with
them (`recheck_language_switch: false`; issue 12, Overload).

Previews decoded in the language carried over from the stream's last final (no language check back
on this sentence) come out in that language's script whatever was said ("它是一切大大人的生命..."
for "It was the first great sorrow..."), so a final in the other script always disagrees with them
and its full-window recheck only repeated the short final (RESULTS "Overload, session 10"). Previews
in the final's script are still compared ("ever tried" against a short "Never tried"). Model-free,
no wall clock.
"""

from __future__ import annotations

import asyncio

from tests.engine.test_early_recheck import _finals, _sentence, answer
from tests.engine.test_recognizer_driver import Session, settle

ENGLISH = "It was the first great sorrow of his life."


def _session(recheck: bool) -> Session:
    s = Session(final_full_window=False)
    s.rec.recheck_language_switch = recheck
    return s


def _run(recheck: bool, preview: str, final: str, *, checked: bool = False) -> tuple[Session,
                                                                                       list]:
    async def main() -> tuple[Session, list]:
        s = _session(recheck)
        (short,) = await _sentence(s, check_language=checked, language="zh", preview=preview)
        answer(short, final, "en")
        await settle()
        return s, _finals(s)

    return asyncio.run(main())


def test_a_final_in_another_script_than_its_unchecked_previews_is_not_rechecked():
    s, finals = _run(False, "它是 一切 大大人的 生命", ENGLISH)
    assert len(finals) == 1 and s.rec.stats.final_rechecks == 0
    assert [r.text for r in s.finals] == [ENGLISH]


def test_the_default_still_rechecks_it():
    s, finals = _run(True, "它是 一切 大大人的 生命", ENGLISH)
    assert len(finals) == 2 and finals[1].options.full_window
    assert s.finals == []  # waits for the recheck


def test_previews_in_the_finals_script_are_still_compared():
    """Forced to Mandarin, Whisper still wrote English here: "ever tried" against a short
    "Never tried" is a first-word flip the recheck mends."""
    s, finals = _run(False, "ever tried ever failed", "Never tried. Ever failed.")
    assert len(finals) == 2 and s.rec.stats.final_rechecks == 1


def test_previews_whose_language_was_checked_are_still_compared():
    s, finals = _run(False, "它是 一切 大大人的 生命", ENGLISH, checked=True)
    assert len(finals) == 2 and s.rec.stats.final_rechecks == 1

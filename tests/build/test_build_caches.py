"""The build's caches give what computing afresh gives (they only save time)."""

from __future__ import annotations

from behaviorsft.build.audit import words
from behaviorsft.build.record_index import lexicon
from behaviorsft.build.tasks import grounding
from behaviorsft.build.tasks.grounding import _shown_words
from behaviorsft.records import Attachment, Conversation, Turn
from behaviorsft.sources.kb import load_kb


def _conv(texts: list[str]) -> Conversation:
    turns = [
        Turn(index=i, speaker=f"Dr. {chr(65 + i)}", role="medical resident", text=t)
        for i, t in enumerate(texts)
    ]
    turns.append(
        Turn(
            index=len(texts),
            speaker="Nurse B",
            role="ward nurse",
            text="Results below.",
            attachments=[
                Attachment(
                    kind="table", title="Labs", columns=["Test", "Value"], rows=[["Sodium", "139"]]
                )
            ],
        )
    )
    return Conversation(case_id="c1", turns=turns)


def _expected(conv: Conversation, start: int, end: int, excerpt: str | None) -> set[str]:
    from behaviorsft.bench import format_turns

    text = format_turns(conv, start, end)
    return words(f"{text}\n\n{excerpt}" if excerpt else text)


def test_shown_words_match_the_whole_text_for_every_range() -> None:
    conv = _conv(["Chest pain since morning.", "Troponin is pending", "ECG shows ST elevation."])
    n = len(conv.turns)
    for start in range(n):
        for end in range(start - 1, n):
            for excerpt in (None, "", "[Turn 2 is missing]\n\nDischarge note: aspirin given."):
                assert _shown_words(conv, start, end, excerpt) == _expected(
                    conv, start, end, excerpt
                )


def test_turn_words_are_not_reused_for_another_conversation() -> None:
    # A later conversation may get the id of one that was freed: its own words count.
    first = _conv(["Cough and fever for three days.", "Crackles at the right base."])
    other = _conv(["Headache since yesterday.", "Neck stiffness on examination."])
    grounding._TURN_WORDS[id(other)] = (first, grounding._turn_words(first))  # as if reused
    got = _shown_words(other, 0, 2, None)
    assert got == _expected(other, 0, 2, None)
    assert "crackles" not in got


def test_sentence_analysis_is_cached_per_text_and_reporting() -> None:
    # The same text reads as a request in a turn and as a result in a table row.
    lex = lexicon(load_kb())
    text = "Please send a potassium level."
    per_sentence = lex.analyse(text, None)
    as_result = lex.analyse(text, True)
    assert per_sentence[1] and not any(shows for _, shows in per_sentence[1])
    assert as_result[1] and all(shows for _, shows in as_result[1])
    assert lex.analyse(text, None) == per_sentence

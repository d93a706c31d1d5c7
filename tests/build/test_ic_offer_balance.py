"""interpretation_conflict offers each documented sign about as often as it is the key.

An examination documents up to four normal results (``sources/exam_normals.py``) and the
generator offers three of them as wrong options; drawn by key rate alone, a sign most
examinations document (the pulse, the general line) was offered in most items and was the
key in 13% of the items offering its flag, against 35-42% for rarely documented signs
(Murphy sign, apical crackles), so an options-only classifier scored 29% (chance 20) on a
6,876-case build. ``offer_weights`` solves the draw's weights against sampled documented
sets so that offers follow the key rates (``offer_balance``).
"""

from __future__ import annotations

import math

from behaviorsft.build.tasks import conflicts
from behaviorsft.build.tasks.conflicts import (
    _sign_keys,
    offer_balance,
    offer_weights,
)
from behaviorsft.sources.kb import load_kb

KB = load_kb()


def _spread(balance: dict[str, float]) -> float:
    return max(abs(math.log(r)) for r in balance.values() if r > 0)


def test_key_rate_weights_over_offer_the_pulse():
    raw = {s: max(k, 1e-3) for s, k in _sign_keys(KB).items()}
    balance = offer_balance(KB, raw)
    assert balance["pulse"] > 1.6  # documented in most examinations, offered in most items


def test_solved_weights_bring_offers_near_the_key_rates():
    raw = {s: max(k, 1e-3) for s, k in _sign_keys(KB).items()}
    before = offer_balance(KB, raw)
    after = offer_balance(KB, offer_weights(KB))
    assert _spread(after) < _spread(before)
    # the over-offered signs come down to within a third of their share
    over = [s for s, r in before.items() if r > 1.3]
    assert over
    for s in over:
        assert after[s] < 1.35, (s, before[s], after[s])
    # and a sign whose documentation allows it reaches its share
    assert 0.8 < after["percussion"] < 1.35 and before["percussion"] < 0.65


def _pulse_offers(cases: list[int]) -> tuple[int, int]:
    """(interpretation_conflict items, those offering the pulse as a wrong option) built
    from cases ``cases`` of seed 7."""
    from tests.build.kb_records import build_item

    items = offered = 0
    for i in cases:
        _, _, tasks = build_item(KB, i, 7)
        for t in tasks:
            if t.task_type.value != "interpretation_conflict":
                continue
            items += 1
            key = next(o.text for o in t.options if o.label == t.answer)
            offered += any("(pulse)" in o.text and o.text != key for o in t.options)
    return items, offered


def test_generator_draws_by_the_solved_weights(monkeypatch):
    """Diverticulitis examinations document the pulse, Murphy sign, bladder and rectal
    examination (its four ``alongside`` signs) and three are offered: drawn by key rate
    the pulse is among them in most items, drawn by the solved weights in few."""
    from behaviorsft.sources.synthetic import kb_condition_id, synthesize_case

    cases = [
        i
        for i in range(1200)
        if kb_condition_id(synthesize_case(i, seed=7, kb=KB)) == "diverticulitis"
    ][:18]
    items, solved = _pulse_offers(cases)
    raw = {s: max(k, 1e-3) for s, k in _sign_keys(KB).items()}
    monkeypatch.setattr(conflicts, "offer_weights", lambda kb: raw)
    items_raw, by_key_rate = _pulse_offers(cases)
    assert items == items_raw >= 12
    assert by_key_rate > items / 2
    assert solved < by_key_rate / 3


def test_solved_weights_are_the_same_in_every_process():
    solved = dict(offer_weights(KB))
    assert all(w > 0 for w in solved.values())
    conflicts._OFFER_WEIGHTS.clear()
    assert offer_weights(KB) == solved  # solved on a fixed stream


def test_solve_samples_leave_out_euvolaemia_as_vomiting_cases_do():
    """A small-bowel obstruction that vomits (4 cases in 5) documents no euvolaemia
    (synthetic.py): the examinations the offer weights are solved over leave it out in the
    same share, so the weights match what builds offer."""
    from behaviorsft.build.tasks.conflicts import SOLVE_SAMPLES, _documented_sets

    sets = _documented_sets(KB)["small_bowel_obstruction"]
    with_it = sum("clinically euvolaemic" in s for s in sets)
    assert with_it <= 0.2 * SOLVE_SAMPLES + 1

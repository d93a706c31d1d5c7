"""Balanced: integrity_missing_turn_inference (which turn is missing, and what did it say)."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

from behaviorsft.bench import format_turn
from behaviorsft.build.audit import words
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _norm,
)
from behaviorsft.build.tasks.grounding import (
    _text_words,
    _turn_words,
    grounded,
    share,
    shown_words,
)
from behaviorsft.build.vignette_turns import VIGNETTE_SOURCES
from behaviorsft.records import Turn
from behaviorsft.sources.collateral import told_by_relative
from behaviorsft.taxonomy import TaskType

T = TaskType


# How far a wrong turn's share of words in the record may differ from the missing turn's.
_TOLERANCE = 0.15


def _lay(role: str) -> bool:
    """Whether a speaker talks as a lay person (patient, relative) rather than as staff."""
    # "family": the dialogue importers' role for a relative (``sources._common._SPEAKERS``)
    return role in ("patient", "family member", "family", "relative", "caregiver")


_POSSESSIVE = re.compile(r"(\w+)'s (\w+)")


@lru_cache(maxsize=1024)
def _speaker_phrase(speaker: str) -> str:
    """'Patient's husband' -> 'husband of the patient'.

    The question names the speaker; a possessive would share the word "s" with every
    option that says "what's" or "that's" (relatives' turns), a free point for the
    question-overlap shortcut. ("most probably" rather than "most likely" for the same
    reason: the attending's differential says "less likely".)
    """
    # (compiled once: the build's many dynamic patterns evicted it from ``re``'s cache,
    # and recompiling it was 4% of task generation)
    m = _POSSESSIVE.fullmatch(speaker)
    return f"{m[2]} of the {m[1].lower()}" if m else speaker


_NO_FAIR_SET = "no set of gaps whose wrong options rank each answer as designed"

# A sentence's end: a full stop, question or exclamation mark (before closing quotes
# or brackets).
_SENTENCE_END = re.compile(r"[.?!][\"')\]]*\s*$")
# A turn cut off inside a sentence: an open bracket, a slash, a dash or a comma at its end.
_OPEN_END = re.compile(r"[(/,\-–]\s*$")


def fragment_turns(turns: Sequence[Turn]) -> frozenset[int]:
    """Turns of an imported note that are not sentences: a heading that introduces a list
    ("Laboratory studies show:") and the list's items after it ("Creatinine 1.2 mg/dL",
    "Hemoglobin: 8.9 g/dL (normal: 13.5-17.5 g/dL)"), up to the next sentence; and, in a
    note (no lay speaker), a sentence split over turns ("Her temperature is 37.1 C (" /
    "98.8 F), pulse is 75/min."): a turn that does not end like a sentence and the turn
    after it, when that one starts with a small letter or a sign, or the first ends with an
    open bracket, a slash, a dash or a comma.

    A missing heading is read off the list below it, and a missing list item is the one
    value a reader can tell belongs to the list; offered as wrong options they are
    fragments no one would write as a turn of their own.
    """
    out: set[int] = set()
    in_list = False
    for t in turns:
        text = t.text.strip()
        if text.endswith(":"):
            out.add(t.index)
            in_list = True
        elif in_list and not _SENTENCE_END.search(text):
            out.add(t.index)
        else:
            in_list = False
    if not any(_lay(t.role) for t in turns):
        for prev, t in itertools.pairwise(turns):
            before, first = prev.text.strip(), t.text.strip()[:1]
            split = first.islower() or not first.isalnum() or _OPEN_END.search(before)
            if first and split and not _SENTENCE_END.search(before):
                out.update((prev.index, t.index))
    return frozenset(out)


def _match(m: int, fits: Callable[[Turn, int], bool], turns: Sequence[Turn]) -> list[Turn] | None:
    """Distinct turns for the ranks 0..m-1, turn ``t`` only for a rank ``r`` it ``fits``
    (bipartite matching by augmenting paths, trying turns in the order given)."""
    owner: dict[int, int] = {}  # turn position -> rank
    got: dict[int, int] = {}  # rank -> turn position

    def place(r: int, tried: set[int]) -> bool:
        for i, t in enumerate(turns):
            if i in tried or not fits(t, r):
                continue
            tried.add(i)
            if i not in owner or place(owner[i], tried):
                owner[i] = r
                got[r] = i
                return True
        return False

    for r in range(m):
        if not place(r, set()):
            return None
    return [turns[got[r]] for r in range(m)]


def _marker(t: Turn) -> str:
    """Where the excerpt of an item asking about ``t`` shows the gap."""
    return f"[Turn {t.index} is missing]"


VIGNETTE_ORDER_ONLY = "vignette: section order alone decides the gap"
SHORT_CONTEXT = "transcript: no fair gap with three turns before it"
# Real transcripts, whose items show three turns before the gap (never one).
FULL_CONTEXT_SOURCES = frozenset({"aci-bench", "mts-dialog", "fhir"})


def gen_missing_turn(ctx: Ctx) -> Iterator[Draft]:
    """Which turn is missing: the wrong options are other turns of the same conversation
    spoken by someone in the same role (the same kind of person, failing that), chosen
    so that the record shown quotes them as much as it quotes the missing turn.

    A synthetic case gets one item about a lay speaker's turn and one about staff's
    (``_fair``, ``_pick_balanced``); an imported note or transcript gets one item per
    option slot, the answer at every rank of record share and of length once
    (``designed``), or none (counted in the manifest)."""
    turns = ctx.rendered.conversation.turns
    if ctx.case.source.name in VIGNETTE_SOURCES:
        # A presented vignette's turns are note sections in the note's order (MEDEC's
        # sometimes misplaced): the gap is found by that order, not by reasoning, and
        # two sections often fit it equally well.
        ctx.drop(T.INTEGRITY_MISSING_TURN_INFERENCE, VIGNETTE_ORDER_ONLY)
        return
    if len(turns) < 6:
        return
    k = DEFAULT_OPTIONS - 1
    k_min = 3  # four options where the role has few turns
    # Not the opening turns (a greeting, or a note's opening sentence, would otherwise
    # be an answer that is never a wrong option), nor the last two.
    eligible = [
        t for t in turns[2:-2] if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
    ]

    # Three turns before the gap and two after: a longer window would hide the turns of
    # the same speaker near the gap (a patient's history, medicines and allergies come
    # one after another) from the wrong options, so only the turns at the ends of such a
    # run could be asked about, and the others would only ever be wrong options.
    before = 3
    # Wrong options come from the turns that could themselves be asked about, so no kind
    # of turn is only ever wrong (a very short transcript falls back below).
    wrong_from = eligible
    # the turns that may be asked about or offered (a frozenset: part of cache keys)
    allowed: frozenset[int] | None = None

    windows: dict[tuple[int, int], tuple[int, str | None]] = {}
    questions: dict[int, str] = {}
    norms = {x.index: _norm(x.text) for x in turns}
    lay_of = {x.index: _lay(x.role) for x in turns}
    # a history told by a relative: the patient's few words and the relative's account are
    # not each other's wrong options (their voice tells them apart: sources/collateral.py)
    collateral = told_by_relative((x.role, x.text) for x in turns)
    pools: dict[tuple[int, int, int, frozenset[int] | None], list[str]] = {}

    def window(t: Turn) -> tuple[int, str | None]:
        """First turn shown, and the excerpt (cached per turn and window width)."""
        got = windows.get((t.index, before))
        if got is None:
            got = windows[(t.index, before)] = _window(t)
        return got

    def _window(t: Turn) -> tuple[int, str | None]:
        """First turn shown, and the excerpt (the missing marker and the two turns after)."""
        start = max(0, t.index - before)
        # An imported note's first turn is a summary of the whole note: showing it would
        # show the missing sentence.
        if start == 0 and _norm(t.text) in _norm(turns[0].text):
            start = 1
        # Nor an opening summary that restates the missing turn (a triage note listing
        # the symptoms the patient's first answer gives): it hands over the answer, to a
        # reader and to record-matching alike.
        own = words(t.text)
        if start == 0 and own and len(own & words(turns[0].text)) >= 0.5 * len(own):
            start = 1
        after = turns[t.index + 1 : t.index + 3]
        return start, _marker(t) + "".join("\n\n" + format_turn(x) for x in after)

    cands: dict[tuple[int, int, int, frozenset[int] | None], tuple[list[Turn], list[Turn]]] = {}

    def candidates(t: Turn) -> tuple[list[Turn], list[Turn]]:
        """``_candidates(t)``, cached like ``pool``."""
        key = (t.index, before, id(wrong_from), allowed)
        got = cands.get(key)
        if got is None:
            got = cands[key] = _candidates(t)
        return got

    def _candidates(t: Turn) -> tuple[list[Turn], list[Turn]]:
        """Unshown turns by the same role, and by others of the same kind (lay or staff)."""
        if allowed is None:
            return _unfiltered(t)
        # those of any allowed set, filtered (the same turns in the same order)
        key = (t.index, before, id(wrong_from), None)
        got = cands.get(key)
        if got is None:
            got = cands[key] = _unfiltered(t)
        return [x for x in got[0] if x.index in allowed], [x for x in got[1] if x.index in allowed]

    def _unfiltered(t: Turn) -> tuple[list[Turn], list[Turn]]:
        """``_candidates(t)`` were every turn allowed."""
        start, _ = window(t)
        visible = {norms[x.index] for x in turns[start : t.index + 3]}
        lay = lay_of[t.index]
        by_role: list[Turn] = []
        same_kind: list[Turn] = []
        for x in wrong_from:
            if x.index == t.index or norms[x.index] in visible:
                continue
            if x.role == t.role:
                by_role.append(x)
            elif lay_of[x.index] == lay and not (lay and collateral):
                same_kind.append(x)
        return by_role, same_kind

    qwords: dict[int, frozenset[str]] = {}

    def question_words(t: Turn) -> frozenset[str]:
        got = qwords.get(t.index)
        if got is None:
            got = qwords[t.index] = frozenset(words(question(t)))
        return got

    def question(t: Turn) -> str:
        got = questions.get(t.index)
        if got is None:
            got = questions[t.index] = _question(t)
        return got

    def _question(t: Turn) -> str:
        return (
            f"Turn {t.index} ({_speaker_phrase(t.speaker)}) is missing from the "
            "transcript. What did it most probably say?"
        )

    def pool(t: Turn) -> list[str]:
        """``_pool(t)``, cached per turn, window, candidate turns and allowed set."""
        key = (t.index, before, id(wrong_from), allowed)
        got = pools.get(key)
        if got is None:
            # the same candidate turns give the same pool, whatever else is allowed
            by_role, same_kind = candidates(t)
            same = (
                t.index,
                before,
                tuple(x.index for x in by_role),
                tuple(x.index for x in same_kind),
            )
            got = by_candidates.get(same)
            if got is None:
                got = by_candidates[same] = _pool(t)
            pools[key] = got
        return got

    by_candidates: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], list[str]] = {}

    # (turn, window width) -> share of each text's words in the record around that gap
    shares: dict[tuple[int, int], dict[str, float]] = {}

    records: dict[tuple[int, int], set[str]] = {}

    def record_of(t: Turn) -> set[str]:
        """Words of the record shown around t's gap (cached per turn and window width)."""
        got = records.get((t.index, before))
        if got is None:
            # ``shown_words(ctx, start, t.index - 1, excerpt)``, as the union of its parts'
            # words (the excerpt: the marker, then the two turns after, blank lines apart)
            start, _ = window(t)
            after = _turn_words(ctx.rendered.conversation)[t.index + 1 : t.index + 3]
            got = records[(t.index, before)] = shown_words(ctx, start, t.index - 1).union(
                _text_words(_marker(t)), *after
            )
        return got

    def share_of(t: Turn, text: str) -> float:
        """``share(text, record around t's gap, t's question)``, cached."""
        memo = shares.setdefault((t.index, before), {})
        got = memo.get(text)
        if got is None:
            got = memo[text] = share(text, record_of(t), question_words(t))
        return got

    def _pool(t: Turn) -> list[str]:
        """Up to k wrong turns: the same role's quoted around the gap as much as the missing
        one, then the same kind's that are, then the same role's others (the same kind's
        others only to reach k_min)."""
        record = record_of(t)
        by_role, same_kind = candidates(t)
        texts = [x.text for x in by_role]
        memo = shares.setdefault((t.index, before), {})

        def _share(text: str) -> float:
            return share_of(t, text)

        chosen = grounded(
            t.text, texts, record, question(t), need=k, tolerance=_TOLERANCE, scores=memo
        )
        close = [c for c in chosen if abs(_share(c) - _share(t.text)) <= _TOLERANCE + 1e-9]
        if len(close) < k:
            # Too few of the same role's turns are quoted around the gap as much as the
            # missing one (which its neighbours echo): the same kind of speaker's turns
            # that are, before the same role's less quoted ones (record-match picked the
            # answer 42% of the time against a chance of 24% at 6,876 cases).
            more = [x.text for x in same_kind]
            extra = grounded(
                t.text, more, record, question(t), need=0, tolerance=_TOLERANCE, scores=memo
            )
            rest = [c for c in chosen if c not in close]
            chosen = (close + extra[: k - len(close)] + rest)[:k]
        if len(chosen) < k_min:
            more = [x.text for x in same_kind if x.text not in chosen]
            chosen += grounded(
                t.text,
                more,
                record,
                question(t),
                need=k_min - len(chosen),
                tolerance=_TOLERANCE,
                scores=memo,
            )[: k_min - len(chosen)]
        return chosen

    def askable(among: list[Turn]) -> list[Turn]:
        """Turns with enough wrong options by the same role, or at worst the same kind.

        Not only those with enough by the same role: in a synthetic transcript that would
        leave one patient turn (the first) askable, an answer of one kind every time.
        """
        return [t for t in among if sum(map(len, candidates(t))) >= k_min]

    def _fair(options: list[Turn]) -> list[Turn] | None:
        """The turns whose record around the gap does not quote them more than all their
        wrong options, among themselves: turns that fail are dropped, as answers and as
        wrong options, until every one left passes (None when fewer than four are left).

        A question its answer echoes ("Are you allergic to any medicines?" before "Not
        that I'm aware of") is then neither asked about nor offered, so record-matching
        does not find the answer and no kind of turn is only ever a wrong option.
        """
        nonlocal allowed
        keep = [t for t in options]
        for _ in range(6):
            allowed = frozenset(t.index for t in keep)
            ok = []
            for t in keep:
                wrong = pool(t)
                if len(wrong) >= k_min and share_of(t, t.text) <= max(
                    share_of(t, w) for w in wrong
                ):
                    ok.append(t)
            if len(ok) == len(keep):
                break
            keep = ok
            if len(keep) < k_min + 1:
                allowed = None
                return None
        ok_all = askable(keep)
        if len(ok_all) < k_min + 1:
            allowed = None
            return None
        return ok_all

    def _pick_balanced(options: list[Turn]) -> Turn:
        """An askable turn, drawn so that each is the answer about as often as it is offered
        as a wrong option (over the choices this conversation allows).

        ``p`` solves p = M p for M[x][t] = 1 when x is a wrong option of the item asking
        about t (power iteration): each turn is then asked about in proportion to how
        often the other items would offer it. A uniform draw let a reader of the options
        alone learn which kinds of turn are answers (a consultant's advice, asked about
        but seldom a wrong option) and score 31% against a chance of 24%.
        """
        texts = {t.index: _norm(t.text) for t in options}
        offered = {t.index: {_norm(x) for x in pool(t)} for t in options}
        idx = [t.index for t in options]
        offered_by = {x: [t for t in idx if texts[x] in offered[t]] for x in idx}
        p = {i: 1.0 / len(idx) for i in idx}
        for _ in range(30):
            new = {x: sum([p[t] for t in offered_by[x]]) + 1e-3 for x in idx}
            total = sum(new.values())
            p = {x: v / total for x, v in new.items()}
        r = ctx.rng.random() * sum(p.values())
        for t in options:
            r -= p[t.index]
            if r <= 0:
                return t
        return options[-1]

    cells_of: dict[tuple[int, int], dict[tuple[bool, bool], list[tuple[float, int, str]]]] = {}

    def cells(t: Turn) -> dict[tuple[bool, bool], list[tuple[float, int, str]]]:
        """t's candidate wrong turns by (quoted more than t, longer than t), nearest first.

        Quoted as much as t, or as long, a turn is not used: the answer's rank would not be
        the one designed. Nearness: the difference in share plus half that in log length.
        """
        got = cells_of.get((t.index, before))
        if got is not None:
            return got
        by_role, same_kind = candidates(t)
        s_t, n_t = share_of(t, t.text), len(t.text)
        got = {(a, b): [] for a in (True, False) for b in (True, False)}
        seen = {norms[t.index]}
        for i, x in enumerate(by_role + same_kind):
            if norms[x.index] in seen:
                continue
            seen.add(norms[x.index])
            s_x, n_x = share_of(t, x.text), len(x.text)
            if abs(s_x - s_t) < 1e-9 or n_x == n_t:
                continue
            near = abs(s_x - s_t) + 0.5 * abs(math.log(n_x / n_t))
            got[(s_x > s_t, n_x > n_t)].append((near, i, x.text))
        for cell in got.values():
            cell.sort()
        cells_of[(t.index, before)] = got
        return got

    ranked_of: dict[tuple[int, int, int, int, int], list[str] | None] = {}

    def ranked(t: Turn, m: int, above: int, longer: int) -> list[str] | None:
        """``m - 1`` wrong turns of which exactly ``above`` are quoted by the record around
        t's gap more than t is, and exactly ``longer`` are longer than t, the nearest to t
        that allow it (None if its candidates do not)."""
        key = (t.index, before, m, above, longer)
        if key in ranked_of:
            return ranked_of[key]
        by_cell = cells(t)
        k = m - 1
        best: tuple[float, list[tuple[float, int, str]]] | None = None
        # a: quoted more and longer; then quoted more and shorter, less and longer, less
        # and shorter, as many as make up the ranks
        for a in range(max(0, above + longer - k), min(above, longer) + 1):
            want = {
                (True, True): a,
                (True, False): above - a,
                (False, True): longer - a,
                (False, False): k - above - longer + a,
            }
            if any(len(by_cell[c]) < n for c, n in want.items()):
                continue
            got = [x for c, n in want.items() for x in by_cell[c][:n]]
            cost = sum(x[0] for x in got)
            if best is None or cost < best[0]:
                best = (cost, got)
        out = None if best is None else [text for _, _, text in sorted(best[1], key=lambda x: x[1])]
        ranked_of[key] = out
        return out

    def designed(options: list[Turn], rng: random.Random) -> list[tuple[Turn, list[str]]]:
        """``m`` items of this conversation (five options each, else four) in which the
        answer is the best-quoted option once, the second best once, ... the least quoted
        once, and likewise the longest once, ... the shortest once (distinct turns asked
        about; empty when the turns allow no such set).

        Neighbours quote a missing turn more than the note's other turns (a vignette's
        sentences follow one topic), and a transcript's key was often the longest: with
        the ranks a permutation in every conversation, picking the best-quoted option,
        the least quoted or the longest finds the answer exactly as often as a guess.
        """
        order = list(options)
        rng.shuffle(order)
        for m in (DEFAULT_OPTIONS, k_min + 1):
            if len(order) < m:
                continue
            perms = list(itertools.permutations(range(m)))
            rng.shuffle(perms)
            for sigma in perms:

                def fits(t: Turn, r: int, m: int = m, sg: tuple[int, ...] = sigma) -> bool:
                    return ranked(t, m, r, sg[r]) is not None

                match = _match(m, fits, order)
                if match is not None:
                    return [(t, ranked(t, m, r, sigma[r]) or []) for r, t in enumerate(match)]
        return []

    wrong_of: dict[int, list[str]] = {}  # the wrong options each pick was drawn with
    if ctx.cond is not None:
        picks = []
        for group in (
            [t for t in eligible if _lay(t.role)],
            [t for t in eligible if not _lay(t.role)],
        ):
            # Ask about a turn its neighbours do not quote more than its wrong options.
            # Any askable turn, uniformly: preferring those whose wrong options the record
            # quotes as much (``balanced``) brings record-matching to chance but makes
            # some kinds of turn answers far more often than wrong options, which a
            # reader of the options alone learns (measured: 0.67 against chance 0.24).
            options = askable(group)
            if options:
                fair = _fair(options)
                t = _pick_balanced(fair or options)
                picks.append(t)
                wrong_of[t.index] = pool(t)
                allowed = None
    else:
        # An imported note or transcript: no heading ("Laboratory studies show:") nor an
        # item of the list it introduces ("Creatinine 1.2 mg/dL") is asked about or offered.
        frags = fragment_turns(turns)
        eligible = [t for t in eligible if t.index not in frags]
        # A real transcript's gap has three turns before it shown, or none is asked:
        # with one, two replies often fit it equally well (round-10 review, mts-dialog
        # train-110).
        strict = ctx.case.source.name in FULL_CONTEXT_SOURCES
        if strict:
            eligible = [t for t in eligible if t.index >= before]
        wrong_from = eligible
        if strict and not askable(eligible):
            if eligible or len(turns) >= 6:
                ctx.drop(T.INTEGRITY_MISSING_TURN_INFERENCE, SHORT_CONTEXT)
            return
        if not askable(eligible):
            # A short transcript (a brief imported report): one turn before the gap, and
            # any unshown turn after the first may serve as a wrong option.
            before = 1
            wrong_from = [
                t
                for t in turns[1:]
                if len(t.text) >= 20
                and not t.attachments
                and len(t.text) <= 400
                and t.index not in frags
            ]
        # An imported note: any sentence, whatever its position, so that the sentences
        # asked for are not of one kind (a note's early history, say) and the wrong
        # options of another; several gaps, their ranks designed (``designed``).
        rng = random.Random(f"behaviorsft-missing-turn:{ctx.generator.seed}:{ctx.case.id}")
        options = askable(eligible)
        items = designed(options, rng)
        if not items and before > 1 and not strict:
            # Too few turns outside a window of three before the gap: one before it.
            before = 1
            items = designed(askable(eligible), rng)
        if options and not items:
            ctx.drop(T.INTEGRITY_MISSING_TURN_INFERENCE, _NO_FAIR_SET)
        picks = [t for t, _ in items]
        wrong_of.update((t.index, wrong) for t, wrong in items)
    for i, t in enumerate(picks):
        start, excerpt = window(t)
        wrong = wrong_of[t.index] if t.index in wrong_of else pool(t)
        yield Draft(
            task_type=T.INTEGRITY_MISSING_TURN_INFERENCE,
            key=f"m{i}",
            question=question(t),
            correct=t.text,
            pool=wrong,
            rationale=f"Turn {t.index} read: {t.text!r}; the surrounding turns lead into and "
            "follow from it.",
            turn_start=start,
            turn_end=t.index - 1,
            excerpt=excerpt,
            n_options=min(DEFAULT_OPTIONS, len(wrong) + 1),
        )

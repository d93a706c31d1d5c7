"""Items read from imported sources: MEDEC error sentences and MediQ (MedQA) questions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from itertools import product

from behaviorsft.build.audit import words
from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _norm,
    unique_candidates,
)
from behaviorsft.build.tasks.grounding import share, shown_words
from behaviorsft.build.vignette_turns import (
    image_unshown,
    source_sentences,
    uncited,
    vignette_sentences,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.medec import (
    MedecAnnotation,
    error_span,
    frame_misfit,
    join_fragments,
    medec_annotation,
)
from behaviorsft.taxonomy import TaskType

T = TaskType


NO_ERROR = "None of the sentences needs correcting"
# Why an item of a vignette is left out (build manifest): its key may rest on an image the
# written source showed and the dialogue cannot (build/vignette_turns.py); the sentence the
# key holds right gives a drug the KB contraindicates in pregnancy in a pregnant patient
# (MEDEC ms-val-330/331: ciprofloxacin at 12 weeks' gestation, right by the source's label).
IMAGE_UNSHOWN = "image-unshown: the key may rest on an image never shown"
NO_PATIENT = "MediQ: no patient (a laboratory or study question)"
KEY_CONTRAINDICATED = "key gives a drug the KB contraindicates in the note's pregnancy"
FEW_WRONG = "MEDEC: fewer than 3 wrong corrections"
# ... where corrections putting a drug in a procedure's verb frame, or a test or procedure in
# a drug's ("A metoprolol was performed", "Mammography was administered") were left out.
FEW_OF_KIND = "MEDEC: fewer than 3 wrong corrections whose verb fits their drug or procedure"
_MEDQA = re.compile(
    r"Question:\s*(?P<q>.+?)\nOptions:\n(?P<opts>(?:[A-F]\.\s.*\n?)+)Answer:\s*(?P<a>[A-F])", re.S
)


# Share of the error-free MEDEC notes (those with an error twin whose changed sentence is
# found) asked about, by a hash of the case id. MEDEC's validation file gives 213 error
# items and about 145 such notes: 38% of them makes "none of the sentences needs
# correcting" the answer of one item in five (55 of 268), as often as a guess among five
# options (all of them would make it the answer of two items in five).
MEDEC_CONTROL_SHARE = 0.38
# Wrong corrections are kept whose share of words in the record is within this of the
# key's (the nearest fill up): the right correction fits the vignette's words, and
# corrections from other notes alone would let "the option the record quotes" find it.
MEDEC_SHARE_TOLERANCE = 0.0
MEDEC_QUESTION = (
    "The resident presents a clinical note that may hold one wrong sentence. Does a "
    "sentence need correcting? If so, which correction is right (it replaces the sentence "
    "of that turn that it rewrites)?"
)
# What a whole sentence looks like: starts with a capital or digit, ends with a full stop
# (or ?, !, :), at least three words. Fragments ("Hg.", "Her pulse is") are never options.
_SENTENCE = re.compile(r"^[A-Z0-9\"'(].*\S.*[.!?:]$")


def _whole(text: str) -> bool:
    return bool(_SENTENCE.match(text)) and len(text.split()) >= 3


_SPACE_BEFORE = re.compile(r"\s+([.,;:!?])")


def correction(index: int, sentence: str) -> str:
    """The option "in turn ``index``, the sentence should read ``sentence``" (no space
    before its punctuation and no unpaired quote mark at its start, as some MEDEC sentences
    have: "... panic disorder .", '" Labor was induced.'; a capital first)."""
    tidy = _SPACE_BEFORE.sub(r"\1", sentence).strip()
    if tidy.count('"') % 2 and tidy.startswith('"'):
        tidy = tidy[1:].lstrip()
    tidy = tidy[:1].upper() + tidy[1:]
    return f'In turn {index}, the sentence should read: "{tidy}"'


def _swap(sentence: str, old: str, new: str) -> str | None:
    """``sentence`` with its one occurrence of the words ``old`` replaced by ``new`` (a
    capital where it starts the sentence); None unless ``old`` occurs exactly once."""
    hits = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(old)}(?!\w)", sentence)]
    if len(hits) != 1:
        hits = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(old)}(?!\w)", sentence, re.I)]
        if len(hits) != 1:
            return None
    at = hits[0]
    if at == 0:
        new = new[:1].upper() + new[1:]
    before = _ARTICLE.sub(lambda m: _article(m[1], new), sentence[:at])
    return before + new + sentence[at + len(old) :]


_ARTICLE = re.compile(r"\b(an?|An?) $")


def _article(article: str, word: str) -> str:
    """ "a" or "an" (as capitalised as ``article``) before ``word``, followed by a space."""
    low = word.lower()
    vowel = low[:1] in "aeio" or (low[:1] == "u" and not low.startswith(("uni", "ur", "us")))
    out = "an" if vowel else "a"
    return (out.capitalize() if article[0].isupper() else out) + " "


def gen_medec(ctx: Ctx) -> Iterator[Draft]:
    """MEDEC notes: which correction, if any, the note needs.

    Every option but "no sentence needs correcting" has one form: "sentence N should
    read: ...", the sentence MEDEC changed with its changed words swapped. On a note with
    an error the key is MEDEC's corrected sentence and the wrong corrections put in the
    right words of the same kind of sentence (same error type) from other notes; on an
    error-free note (the restraint control, from the notes with an error twin) the key is
    "no sentence needs correcting" and the wrong corrections are the twin's annotated
    error and the same kind of alternatives, put into this note's own version of the
    sentence. (Options quoting the note's sentences let an options-only reader pick the
    diagnosis or treatment sentence, where MEDEC puts every error: 78% against a chance
    of 20%; see docs/building.md.)
    """
    ann = medec_annotation(ctx.case)
    if ann is None:
        return
    turns = ctx.rendered.conversation.turns
    sentences = _note_sentences(ctx)
    if (ann.error_flag or _asked_control(ctx, ann)) and image_unshown(ctx.case):
        ctx.drop(T.EXPLICIT_ERROR_CORRECTION, IMAGE_UNSHOWN)
        return
    if ann.error_flag and ann.error_sentence and ann.corrected_sentence:
        # as told: an image citation inside the sentence is cut (build/vignette_turns.py)
        error_sentence = uncited(ann.error_sentence)
        corrected_sentence = uncited(ann.corrected_sentence)
        if contraindicated_in_pregnancy(ctx.kb, source_sentences(ctx.case), corrected_sentence):
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, KEY_CONTRAINDICATED)
            return
        wrong = _norm(error_sentence)
        err = next(((i, text) for i, text in sentences if wrong in _norm(text)), None)
        if err is None or not _whole(err[1]) or error_sentence.strip() not in err[1]:
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, "MEDEC: error sentence not found whole")
            return
        index, text = err
        span = error_span(error_sentence, corrected_sentence)
        key = text.replace(error_sentence.strip(), corrected_sentence.strip())
        fitting, misfits = _alternatives(text, span.wrong, ann.alternatives, key)
        pool = _grounded(ctx, correction(index, key), index, fitting)
        if len(pool) < 3:
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, FEW_OF_KIND if misfits else FEW_WRONG)
            return
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            question=MEDEC_QUESTION,
            turn_start=0,
            turn_end=len(turns) - 1,
            key="x0",
            correct=correction(index, key),
            pool=pool,
            fixed=[NO_ERROR],
            rationale=f"Turn {index} is wrong ({ann.error_type}); it should read: "
            f"{corrected_sentence}",
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location=f"turn {index}",
                original=corrected_sentence,
                modified=error_sentence,
                description=f"MEDEC annotated error ({ann.error_type}).",
            ),
        )
    elif _asked_control(ctx, ann) and ann.twin_error_sentence and ann.twin_corrected_sentence:
        span = error_span(ann.twin_error_sentence, ann.twin_corrected_sentence)
        # This note's own version of the changed sentence: the twin's corrected sentence
        # where MEDEC kept it, else the one sentence holding the changed words.
        right = span.with_part(span.right) if span.whole else span.right
        found = [(i, t) for i, t in sentences if _whole(t) and _swap(t, right, "") is not None]
        if len(found) != 1 or not span.right or not span.wrong:
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, "MEDEC: twin's sentence not found once")
            return
        index, text = found[0]
        if contraindicated_in_pregnancy(ctx.kb, source_sentences(ctx.case), text):
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, KEY_CONTRAINDICATED)
            return
        old = right.removesuffix(span.end) if span.whole else right
        twin_error = _swap(text, old, span.wrong)
        if twin_error is None:
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, "MEDEC: twin's sentence not found once")
            return
        fitting, misfits = _alternatives(text, old, ann.alternatives, text, twin_error)
        pool = _grounded(ctx, correction(index, twin_error), index, fitting)
        if len(pool) < 3:
            ctx.drop(T.EXPLICIT_ERROR_CORRECTION, FEW_OF_KIND if misfits else FEW_WRONG)
            return
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            question=MEDEC_QUESTION,
            turn_start=0,
            turn_end=len(turns) - 1,
            key="xc",
            correct=NO_ERROR,
            correct_is_fixed=True,
            fixed=[correction(index, twin_error)],
            pool=pool,
            anchor_any=True,
            rationale=f"MEDEC annotates this note as error-free; turn {index} is right as "
            f"written (its twin note {ann.twin_id} has the {ann.twin_error_type} error "
            f'"{ann.twin_error_sentence}").',
            restraint_control=True,
        )


def _asked_control(ctx: Ctx, ann: MedecAnnotation) -> bool:
    """Whether an error-free note is asked about (the restraint control's share)."""
    return (
        not ann.error_flag
        and ann.twin_error_sentence is not None
        and _hash(ctx.case.id) < MEDEC_CONTROL_SHARE * 256
    )


# A note about a pregnant woman ("gravida 2, para 1 at 12 weeks' gestation", "she is
# pregnant"); not a newborn "born at 30 weeks' gestation".
_PREGNANT = re.compile(r"\bpregnant\b|\b(at|of) \d+(\s|-)weeks?'? gestation\b", re.I)
_BORN = re.compile(r"\b(born|delivered)\b", re.I)
_PREGNANCY_DRUGS: dict[int, tuple[KnowledgeBase, list[re.Pattern[str]]]] = {}


def _pregnancy_drugs(kb: KnowledgeBase) -> list[re.Pattern[str]]:
    """Names of the KB drugs with a contraindication "pregnancy" (absolute or relative),
    as patterns (once per KB)."""
    hit = _PREGNANCY_DRUGS.get(id(kb))
    if hit is None or hit[0] is not kb:
        names = [
            d.name
            for d in kb.drugs.values()
            if any((ci.finding or "").lower() == "pregnancy" for ci in d.contraindications)
        ]
        hit = _PREGNANCY_DRUGS[id(kb)] = (
            kb,
            [re.compile(rf"\b{re.escape(n)}\b", re.I) for n in names],
        )
    return hit[1]


def contraindicated_in_pregnancy(kb: KnowledgeBase, note: list[str], sentence: str) -> bool:
    """Whether ``sentence`` (the one a key holds right) gives a drug the KB contraindicates
    in pregnancy while ``note`` documents a pregnancy."""
    if not any(_PREGNANT.search(s) and not _BORN.search(s) for s in note):
        return False
    return any(p.search(sentence) for p in _pregnancy_drugs(kb))


def _note_sentences(ctx: Ctx) -> list[tuple[int, str]]:
    """The note's sentences, each with the turn of the presentation that says it (pieces
    of a split sentence joined: older imports keep MEDEC's split lines)."""
    turns = ctx.rendered.conversation.turns
    told = vignette_sentences(ctx.case)
    if not told:  # a transcript of another shape: one sentence per turn, after a summary
        body = [t for t in turns if not t.text.startswith("Summary:")]
        return [(body[i].index, text) for i, text in join_fragments([t.text for t in body])]
    out = []
    for _, text in join_fragments(told):
        turn = next((t.index for t in turns if text in t.text), None)
        if turn is not None:
            out.append((turn, text))
    return out


def _alternatives(sentence: str, old: str, parts: list[str], *taken: str) -> tuple[list[str], int]:
    """``sentence`` with the words ``old`` swapped for each of ``parts``: whole sentences
    that differ from ``taken`` (the key, or the note as written), and how many more were
    left out because their verb does not fit what they name (``frame_misfit``: a drug
    "performed", a test "administered", which a reader rejects unread)."""
    out = []
    misfits = 0
    seen = {_norm(t) for t in (sentence, *taken)}
    for part in parts:
        text = _swap(sentence, old, part)
        if text is not None and _whole(text) and _norm(text) not in seen:
            seen.add(_norm(text))
            if frame_misfit(text) is None:
                out.append(text)
            else:
                misfits += 1
    return out, misfits


def _grounded(ctx: Ctx, anchor: str, index: int, sentences: list[str]) -> list[str]:
    """Three corrections of sentence ``index`` to ``sentences``, as quoted by the record and
    as long as ``anchor`` (the key, or the control's twin error).

    The right correction fits the vignette's words (it often shares words with the error
    it replaces), and corrections from other notes alone let "the option the record
    quotes most" find it: 33% against 25%. So the three are drawn with 1 to 3 of them
    (uniformly) quoted more than the anchor, or where no candidate is, as many quoted
    equally (a tie) as there are; and with 0 to 3 of them (uniformly) longer than the
    anchor, so that "the longest option" is the key as often as a guess would be. Where
    the candidates cannot meet both, the plan that misses least is taken, a best-quoted
    anchor costing most (``cost``).
    """
    record = shown_words(ctx, 0, ctx.n_turns - 1)
    q = words(MEDEC_QUESTION)
    target = share(anchor, record, q)
    options = unique_candidates([correction(index, x) for x in sentences], [anchor])
    if len(options) <= 3:
        return options
    cells: dict[tuple[int, bool], list[str]] = {}
    for o in options:
        s = share(o, record, q)
        cells.setdefault(((s > target) - (s < target), len(o) > len(anchor)), []).append(o)
    want_above, want_longer = ctx.rng.randint(1, 3), ctx.rng.randint(0, 3)
    plans = []
    for counts in _PLANS:
        got = dict(zip(_CELLS, counts, strict=True))
        if any(n > len(cells.get(c, [])) for c, n in got.items()):
            continue
        above = sum(n for (side, _), n in got.items() if side > 0)
        tied = sum(n for (side, _), n in got.items() if side == 0)
        longer = sum(n for (_, lg), n in got.items() if lg)
        top = 0.0 if above else 1 / (1 + tied)  # the anchor's chance to be picked
        cost = 3 * top + abs(longer - want_longer) + 0.5 * abs(above - want_above)
        plans.append((cost, counts))
    best = min(c for c, _ in plans)
    counts = ctx.rng.choice([n for c, n in plans if c == best])
    out: list[str] = []
    for cell, n in zip(_CELLS, counts, strict=True):
        out += ctx.rng.sample(cells.get(cell, []), n)
    return out


# (record share against the anchor's: 1 more, 0 the same, -1 less; longer than it)
_CELLS = tuple((side, longer) for side in (1, 0, -1) for longer in (True, False))
# How many of the three wrong corrections to take from each cell: every way to make three.
_PLANS = [c for c in product(range(4), repeat=len(_CELLS)) if sum(c) == 3]


def _hash(text: str) -> int:
    return hashlib.sha1(text.encode()).digest()[0]


def gen_mediq(ctx: Ctx) -> Iterator[Draft]:
    sec = next((s for s in ctx.case.sections if s.title == "Source question"), None)
    if sec is None:
        return
    m = _MEDQA.search(sec.text)
    if m is None:
        return
    q = " ".join(m["q"].split())
    opts = dict(
        (line[0], line[3:].strip()) for line in m["opts"].strip().splitlines() if line[1:3] == ". "
    )
    if not 4 <= len(opts) <= 6 or m["a"] not in opts:
        return
    if q.count('"') % 2 and q.endswith('"'):
        q = q[:-1].rstrip()  # MedQA's stray closing quotation mark (mediq:420)
    low = q.lower()
    if re.search(r"next (best )?step|most appropriate (next|initial)|best initial", low):
        ttype = T.PREDICTIVE_NEXT_ACTION
    elif re.search(r"most likely (diagnosis|cause)|diagnosis", low):
        ttype = T.DDX_REASONING
    else:
        return
    if image_unshown(ctx.case):
        ctx.drop(ttype, IMAGE_UNSHOWN)
        return
    d = ctx.case.demographics
    if d is None or (d.age_years is None and getattr(d.sex, "value", d.sex) in (None, "unknown")):
        # a laboratory or study question ("An investigator is developing a vaccine"): no
        # patient, so no encounter to present (round 15, mediq:1016)
        ctx.drop(ttype, NO_PATIENT)
        return
    correct = opts[m["a"]]
    yield Draft(
        task_type=ttype,
        key="q0",
        question=q,
        correct=correct,
        pool=[v for k, v in opts.items() if k != m["a"]],
        rationale=f"Answer given by the source (MedQA via MediQ): {correct}.",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
        n_options=len(opts),
    )

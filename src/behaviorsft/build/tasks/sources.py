"""Items read from imported sources: MEDEC error sentences and MediQ (MedQA) questions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _norm,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.medec import join_fragments, medec_annotation
from behaviorsft.taxonomy import TaskType

T = TaskType


NO_ERROR = "No sentence contains a clinical error"
_MEDQA = re.compile(
    r"Question:\s*(?P<q>.+?)\nOptions:\n(?P<opts>(?:[A-F]\.\s.*\n?)+)Answer:\s*(?P<a>[A-F])", re.S
)


# Error-free MEDEC notes asked about, one in this many (by a hash of the case id). MEDEC
# has about 4 error-free notes for every 5 with an error; asking about all of them would
# make "no sentence contains an error" (always offered) the answer of 4 items in 9, a
# shortcut for any reader. One in three makes it the answer about as often as a guess.
MEDEC_CONTROL_EVERY = 3
# What a whole sentence looks like: starts with a capital or digit, ends with a full stop
# (or ?, !, :), at least three words. Fragments ("Hg.", "Her pulse is") are never options.
_SENTENCE = re.compile(r"^[A-Z0-9\"'(].*\S.*[.!?:]$")


def _whole(text: str) -> bool:
    return bool(_SENTENCE.match(text)) and len(text.split()) >= 3


def gen_medec(ctx: Ctx) -> Iterator[Draft]:
    ann = medec_annotation(ctx.case)
    if ann is None:
        return
    turns = ctx.rendered.conversation.turns
    question = "Does any sentence of this note contain a clinical error? If so, which one?"
    # The note's sentences as the transcript gives them, pieces of a split sentence joined
    # (older imports keep MEDEC's split lines); not the opening summary of the whole note.
    body = [t for t in turns if not t.text.startswith("Summary:")]
    sentences = [(body[i].index, text) for i, text in join_fragments([t.text for t in body])]
    quoted = [f'"{text}"' for _, text in sentences if _whole(text)]
    if ann.error_flag and ann.error_sentence:
        wrong = _norm(ann.error_sentence)
        err = next(((i, text) for i, text in sentences if wrong in _norm(text)), None)
        if err is None or not _whole(err[1]):
            return
        index, text = err
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x0",
            question=question,
            correct=f'"{text}"',
            pool=[q for q in quoted if q != f'"{text}"'],
            fixed=[NO_ERROR],
            rationale=f"Turn {index} is wrong ({ann.error_type}); it should read: "
            f"{ann.corrected_sentence}",
            turn_start=0,
            turn_end=len(turns) - 1,
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location=f"turn {index}",
                original=ann.corrected_sentence,
                modified=ann.error_sentence,
                description=f"MEDEC annotated error ({ann.error_type}).",
            ),
        )
    elif not ann.error_flag and _hash(ctx.case.id) % MEDEC_CONTROL_EVERY == 0:
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="xc",
            question=question,
            correct=NO_ERROR,
            correct_is_fixed=True,
            pool=quoted,
            rationale="MEDEC annotates this note as error-free.",
            turn_start=0,
            turn_end=len(turns) - 1,
            restraint_control=True,
        )


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
    low = q.lower()
    if re.search(r"next (best )?step|most appropriate (next|initial)|best initial", low):
        ttype = T.PREDICTIVE_NEXT_ACTION
    elif re.search(r"most likely (diagnosis|cause)|diagnosis", low):
        ttype = T.DDX_REASONING
    else:
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

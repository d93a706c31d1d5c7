"""Quality audit of a benchmark: duplicates, answer leakage and shortcut baselines.

A multiple-choice benchmark is only as good as its distractors. If the right
option is usually the longest one, or the one that repeats the question's
words, or can be picked from the options alone, a model scores well without
reading the case. Each heuristic here is scored per task type and compared
with chance; our target for generated items is within chance + 5 points.

Heuristics that tie between several options are scored by their *expected*
accuracy under a uniform tie-break (1/k when the answer is among k tied
options), so the numbers need no random seed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, Field, computed_field

from behaviorsft.records import Task

# Generated items must not beat chance by more than this with a shortcut.
SHORTCUT_MARGIN = 0.05

_WORD = re.compile(r"[a-z0-9]+")
# Words too common to signal anything when counting overlap with the question.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "which",
        "with",
    ]
)


def words(text: str) -> set[str]:
    """Lower-cased content words of a text."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _expected_hit(scores: Sequence[float], answer_index: int) -> float:
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if s == best]
    return 1.0 / len(tied) if answer_index in tied else 0.0


def _answer_index(task: Task) -> int:
    return [o.label for o in task.options].index(task.answer)


def longest_option_hit(task: Task) -> float:
    """Expected accuracy of 'pick the longest option' (characters) on one task."""
    return _expected_hit([len(o.text) for o in task.options], _answer_index(task))


def overlap_option_hit(task: Task) -> float:
    """Expected accuracy of 'pick the option sharing most words with the question'."""
    q = words(task.question)
    return _expected_hit([len(q & words(o.text)) for o in task.options], _answer_index(task))


def record_match_hit(task: Task, record_words: set[str], *, most: bool = True) -> float:
    """Expected accuracy of picking the option most (or least) quoted by the record.

    Each option's score is the share of its content words, less the question's
    words, that occur anywhere in the record the task shows (conversation turns
    and excerpt, as ``record_words``). ``most=True`` picks the best-quoted option,
    the shortcut of an item whose answer is copied from the record while its
    distractors are invented; ``most=False`` picks the least-quoted one, the
    shortcut of an item whose answer is the one thing the record lacks. Options
    with no content word of their own score 0.5 (no evidence either way).
    """
    q = words(task.question)
    scores = []
    for o in task.options:
        own = words(o.text) - q
        share = len(own & record_words) / len(own) if own else 0.5
        scores.append(share if most else -share)
    return _expected_hit(scores, _answer_index(task))


def chance(task: Task) -> float:
    """Accuracy of a uniform guess."""
    return 1.0 / len(task.options)


def option_only_hits(tasks: Sequence[Task], folds: int = 5, seed: int = 0) -> list[float]:
    """Cross-validated accuracy of a classifier that sees only the option texts.

    A logistic regression on word and character n-grams of each option (plus its
    length rank) learns "is this the answer?" on some folds and picks the
    highest-scoring option on the held-out fold. Folds are by case, so a case's
    near-identical tasks never sit on both sides. Returns one expected hit per
    task, in input order (NaN-free; tasks of a fold with no training data get chance).
    """
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    n = len(tasks)
    if n == 0:
        return []
    cases = sorted({t.case_id for t in tasks})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(cases))
    fold_of_case = {cases[j]: i % folds for i, j in enumerate(order)}
    fold = np.array([fold_of_case[t.case_id] for t in tasks])

    texts, task_of, is_answer, length_rank = [], [], [], []
    for ti, t in enumerate(tasks):
        lengths = [len(o.text) for o in t.options]
        ranks = np.argsort(np.argsort(lengths)) / max(1, len(lengths) - 1)
        for oi, o in enumerate(t.options):
            texts.append(o.text)
            task_of.append(ti)
            is_answer.append(o.label == t.answer)
            length_rank.append(ranks[oi])
    task_of_arr = np.array(task_of)
    y = np.array(is_answer, dtype=int)
    extra = np.array(length_rank, dtype=float).reshape(-1, 1)

    hits = [chance(t) for t in tasks]
    for f in range(folds):
        train_rows = fold[task_of_arr] != f
        test_tasks = np.flatnonzero(fold == f)
        if not len(test_tasks) or len(set(y[train_rows].tolist())) < 2:
            continue
        vec_w = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        vec_c = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=20000
        )
        train_texts = [texts[i] for i in np.flatnonzero(train_rows)]
        try:
            xw = vec_w.fit_transform(train_texts)
            xc = vec_c.fit_transform(train_texts)
        except ValueError:  # vocabulary empty after min_df: too little training text
            continue
        x_train = hstack([xw, xc, extra[train_rows]]).tocsr()
        clf = LogisticRegression(max_iter=1000, C=1.0)
        clf.fit(x_train, y[train_rows])
        test_rows = ~train_rows
        idx = np.flatnonzero(test_rows)
        x_test = hstack(
            [
                vec_w.transform([texts[i] for i in idx]),
                vec_c.transform([texts[i] for i in idx]),
                extra[idx],
            ]
        ).tocsr()
        probs = clf.predict_proba(x_test)[:, 1]
        by_task: dict[int, list[float]] = defaultdict(list)
        for row, p in zip(idx, probs, strict=True):
            by_task[int(task_of_arr[row])].append(float(p))
        for held_out in test_tasks.tolist():
            hits[held_out] = _expected_hit(by_task[held_out], _answer_index(tasks[held_out]))
    return hits


class ShortcutRow(BaseModel):
    """Shortcut-baseline accuracies for one task type (or 'overall')."""

    task_type: str = Field(description="Task type, or 'overall'.")
    n: int = Field(description="Tasks scored.")
    chance: float = Field(description="Mean 1/number of options.")
    longest: float = Field(description="Expected accuracy of picking the longest option.")
    overlap: float = Field(description="Expected accuracy of picking the most question overlap.")
    option_only: float | None = Field(None, description="Options-only classifier, cross-validated.")
    top_letter: float = Field(description="Accuracy of always answering the most common letter.")
    passes: bool = Field(description="longest and overlap within chance + margin.")


class AuditReport(BaseModel):
    """Everything the audit found."""

    n_tasks: int = Field(description="Tasks audited.")
    margin: float = Field(SHORTCUT_MARGIN, description="Allowed excess over chance.")
    shortcuts: list[ShortcutRow] = Field(description="Per task type, then 'overall'.")
    duplicate_groups: list[list[str]] = Field(
        description="Ids of tasks with the same question and options."
    )
    leaked: list[str] = Field(description="Ids of tasks whose question contains the answer text.")
    answer_letters: dict[str, int] = Field(description="How often each letter is the answer.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passes(self) -> bool:
        """True when every task type meets the shortcut target and nothing is duplicated/leaked."""
        return (
            all(r.passes for r in self.shortcuts) and not self.duplicate_groups and not self.leaked
        )


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def find_duplicates(tasks: Sequence[Task]) -> list[list[str]]:
    """Groups (size >= 2) of tasks with the same normalised question and option set."""
    # Same case, same context, same question and option set: the same item twice.
    # (Different patients may share a question wording; their contexts differ.)
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for t in tasks:
        key = (
            t.case_id,
            str(t.context.turn_start),
            str(t.context.turn_end),
            _normalise(t.context.excerpt or ""),
            _normalise(t.question),
            *sorted(_normalise(o.text) for o in t.options),
        )
        groups[key].append(t.id)
    return [ids for ids in groups.values() if len(ids) > 1]


def find_leaks(tasks: Sequence[Task], min_words: int = 3) -> list[str]:
    """Tasks whose question contains the answer text verbatim (answers of >= min_words words)."""
    out = []
    for t in tasks:
        ans = _normalise(t.answer_text)
        if len(ans.split()) >= min_words and ans in _normalise(t.question):
            out.append(t.id)
    return out


def audit(
    tasks: Sequence[Task],
    *,
    option_only: bool = True,
    margin: float = SHORTCUT_MARGIN,
    seed: int = 0,
) -> AuditReport:
    """Audit tasks; pure apart from the seeded option-only classifier."""
    oo = option_only_hits(tasks, seed=seed) if option_only else None
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(tasks):
        by_type[t.task_type.value].append(i)
    letters = Counter(t.answer for t in tasks)

    def row(name: str, idx: list[int]) -> ShortcutRow:
        sub = [tasks[i] for i in idx]
        ch = _mean([chance(t) for t in sub])
        lo = _mean([longest_option_hit(t) for t in sub])
        ov = _mean([overlap_option_hit(t) for t in sub])
        top = Counter(t.answer for t in sub).most_common(1)[0][1] / len(sub)
        return ShortcutRow(
            task_type=name,
            n=len(sub),
            chance=ch,
            longest=lo,
            overlap=ov,
            option_only=_mean([oo[i] for i in idx]) if oo is not None else None,
            top_letter=top,
            passes=lo <= ch + margin and ov <= ch + margin,
        )

    rows = [row(name, idx) for name, idx in sorted(by_type.items())]
    if tasks:
        rows.append(row("overall", list(range(len(tasks)))))
    return AuditReport(
        n_tasks=len(tasks),
        margin=margin,
        shortcuts=rows,
        duplicate_groups=find_duplicates(tasks),
        leaked=find_leaks(tasks),
        answer_letters=dict(sorted(letters.items())),
    )

"""Quality audit of a benchmark: duplicates, answer leakage and shortcut baselines.

A multiple-choice benchmark is only as good as its distractors. If the right
option is usually the longest one, or the one that repeats the question's
words, or the one the record quotes (or the one it never mentions), or can be
picked from the options alone, a model scores well without reasoning about the
case. Each heuristic here is scored per task type and compared with chance;
our target for generated items is within chance + 5 points on every type.

Heuristics that tie between several options are scored by their *expected*
accuracy under a uniform tie-break (1/k when the answer is among k tied
options), so the numbers need no random seed. Learned baselines (options-only
classifier, most common letter) are cross-validated with folds by case.

Cost is linear in the number of tasks: tasks are read once and kept only as
compact per-task facts (word sets are computed once per distinct text), each
conversation is read once and scored against its own tasks, and the
options-only classifier vectorises each distinct option text once and trains on
a bounded sample per fold.
"""

from __future__ import annotations

import math
import os
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from behaviorsft.records import Conversation, Task

# Generated items must not beat chance by more than this with a shortcut.
SHORTCUT_MARGIN = 0.05
# Options-only classifier: folds by case, and at most this many training tasks per fold
# (a seeded sample), so that its cost does not grow with the benchmark.
OPTION_ONLY_FOLDS = 5
MAX_TRAIN_TASKS = 10_000
# Semantic baseline: a seeded sample of at most this many cases (None: all).
SEMANTIC_CASES = 200

# The baselines every type must keep within chance + margin (ShortcutRow field names).
GATED_BASELINES = (
    "longest",
    "overlap",
    "option_only",
    "record_most",
    "record_fewest",
    "top_letter",
    "excerpt_context",
)

# Held-out estimates (not exact properties of the items): they miss only when above
# chance + margin by more than LEARNED_Z standard errors of a proportion. 3.4 is a
# one-sided 1% test, Bonferroni-corrected over 3 baselines x 14 rows, so a fair
# benchmark fails by chance in about 1% of audits, not in a quarter of small ones.
LEARNED = ("option_only", "top_letter", "excerpt_context")
LEARNED_Z = 3.5

# progress(stage, done, total): called as each stage advances.
ProgressFn = Callable[[str, int, "int | None"], None]

_LETTERS = "ABCDEF"
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


def _record_scores(
    option_words: Sequence[frozenset[str] | set[str]],
    question_words: frozenset[str] | set[str],
    record_words: frozenset[str] | set[str],
) -> list[float]:
    scores = []
    for ow in option_words:
        own = ow - question_words
        scores.append(len(own & record_words) / len(own) if own else 0.5)
    return scores


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
    scores = _record_scores(
        [words(o.text) for o in task.options], words(task.question), record_words
    )
    if not most:
        scores = [-s for s in scores]
    return _expected_hit(scores, _answer_index(task))


def chance(task: Task) -> float:
    """Accuracy of a uniform guess."""
    return 1.0 / len(task.options)


def _turn_text(turn: Any) -> str:
    from behaviorsft.bench import format_turn

    return format_turn(turn)


# ----------------------------------------------------------------------------- report


class ShortcutRow(BaseModel):
    """Shortcut-baseline accuracies for one task type (or 'overall')."""

    task_type: str = Field(description="Task type, or 'overall'.")
    n: int = Field(description="Tasks scored.")
    chance: float = Field(description="Mean 1/number of options.")
    longest: float = Field(description="Expected accuracy of picking the longest option.")
    overlap: float = Field(description="Expected accuracy of picking the most question overlap.")
    option_only: float | None = Field(None, description="Options-only classifier, cross-validated.")
    record_most: float | None = Field(
        None, description="Picking the option whose words the record quotes most (share)."
    )
    record_fewest: float | None = Field(
        None, description="Picking the option whose words the record quotes least (share)."
    )
    top_letter: float = Field(
        description="Always answering the letter most often right in the other folds (by case)."
    )
    excerpt_context: float | None = Field(
        None,
        description="Classifier on the words around each option's mention in the excerpt "
        "(cross-validated; tasks without an excerpt count at chance).",
    )
    semantic: float | None = Field(
        None, description="Option most similar to the record (sentence embeddings); informative."
    )
    semantic_question: float | None = Field(
        None, description="Option most similar to the question (sentence embeddings); informative."
    )
    semantic_n: int | None = Field(None, description="Tasks the semantic baselines scored.")
    missed: list[str] = Field(
        default_factory=list, description="Gated baselines above chance + margin."
    )
    passes: bool = Field(description="Every gated baseline computed is within chance + margin.")


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
    no_record: int = Field(
        0, description="Tasks that show no record (no turns found, no excerpt): record-match ties."
    )
    lint: list[dict[str, Any]] = Field(
        default_factory=list, description="Clinical linter findings (when the linter ran)."
    )
    notes: list[str] = Field(default_factory=list, description="Warnings met while reading.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passes(self) -> bool:
        """True when every type meets the shortcut targets and nothing is duplicated,
        leaked or linted."""
        return (
            all(r.passes for r in self.shortcuts)
            and not self.duplicate_groups
            and not self.leaked
            and not self.lint
        )


class EmptyBenchError(ValueError):
    """A benchmark without a single task: nothing to audit."""


# ----------------------------------------------------------------------------- collector


class _Texts:
    """Distinct texts, each with its content words and normalised form computed once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.text: list[str] = []
        self.words: list[frozenset[str]] = []
        self.norm: list[str] = []

    def add(self, text: str) -> int:
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.text)
            self.text.append(text)
            self.words.append(frozenset(words(text)))
            self.norm.append(_normalise(text))
        return i

    def __len__(self) -> int:
        return len(self.text)


class _Collector:
    """Compact per-task facts, filled one task at a time, then scored stage by stage."""

    def __init__(self) -> None:
        self.options = _Texts()
        self.questions = _Texts()
        self.excerpts = _Texts()
        self.type_names: list[str] = []
        self._type_index: dict[str, int] = {}
        self.case_names: list[str] = []
        self._case_index: dict[str, int] = {}
        self.ids: list[str] = []
        self.type_of = array("i")
        self.case_of = array("i")
        self.question_of = array("i")
        self.excerpt_of = array("i")  # -1: none
        self.turn_start = array("i")  # -2: absent
        self.turn_end = array("i")
        self.opt_start = array("q", [0])
        self.opt_ids = array("i")
        self.answer = array("b")  # answer's option index (= letter index)
        self.longest = array("d")
        self.overlap = array("d")
        self.chance = array("d")
        self.record_most = array("d")
        self.record_fewest = array("d")
        self.tasks_of_case: dict[int, list[int]] = defaultdict(list)
        self._norm_ids: dict[str, int] = {}
        self._first_with_key: dict[tuple[int, ...], int] = {}
        self.duplicates: dict[int, list[int]] = {}
        self.leaked: list[int] = []
        self.no_record = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, t: Task) -> None:
        i = len(self.ids)
        self.ids.append(t.id)
        ttype = t.task_type.value
        ti = self._type_index.get(ttype)
        if ti is None:
            ti = self._type_index[ttype] = len(self.type_names)
            self.type_names.append(ttype)
        ci = self._case_index.get(t.case_id)
        if ci is None:
            ci = self._case_index[t.case_id] = len(self.case_names)
            self.case_names.append(t.case_id)
        self.type_of.append(ti)
        self.case_of.append(ci)
        self.tasks_of_case[ci].append(i)
        qi = self.questions.add(t.question)
        self.question_of.append(qi)
        ctx = t.context
        self.excerpt_of.append(self.excerpts.add(ctx.excerpt) if ctx.excerpt else -1)
        self.turn_start.append(-2 if ctx.turn_start is None else ctx.turn_start)
        self.turn_end.append(-2 if ctx.turn_end is None else ctx.turn_end)
        oids = [self.options.add(o.text) for o in t.options]
        self.opt_ids.extend(oids)
        self.opt_start.append(len(self.opt_ids))
        ans = _LETTERS.index(t.answer)
        self.answer.append(ans)
        self.chance.append(1.0 / len(oids))
        opts = self.options
        self.longest.append(_expected_hit([len(opts.text[o]) for o in oids], ans))
        qw = self.questions.words[qi]
        self.overlap.append(_expected_hit([len(qw & opts.words[o]) for o in oids], ans))
        self.record_most.append(math.nan)
        self.record_fewest.append(math.nan)
        # Duplicates: same case, same context, same question and option set.
        # (Different patients may share a question wording; their contexts differ.)
        x = self.excerpt_of[i]
        key = (
            ci,
            self.turn_start[i],
            self.turn_end[i],
            self._norm_id(self.excerpts.norm[x]) if x >= 0 else -1,
            self._norm_id(self.questions.norm[qi]),
            *sorted(self._norm_id(opts.norm[o]) for o in oids),
        )
        first = self._first_with_key.setdefault(key, i)
        if first != i:
            self.duplicates.setdefault(first, [first]).append(i)
        ans_norm = opts.norm[oids[ans]]
        if len(ans_norm.split()) >= 3 and ans_norm in self.questions.norm[qi]:
            self.leaked.append(i)

    def _norm_id(self, norm: str) -> int:
        return self._norm_ids.setdefault(norm, len(self._norm_ids))

    def options_of(self, i: int) -> list[int]:
        return self.opt_ids[self.opt_start[i] : self.opt_start[i + 1]].tolist()

    # -- record match -------------------------------------------------------------------

    def score_record(
        self, task_indices: Sequence[int], turn_words: Sequence[frozenset[str]]
    ) -> None:
        """Record-match scores for the tasks of one case, given its turns' word sets."""
        unions: dict[tuple[int, int], frozenset[str]] = {}
        n_turns = len(turn_words)
        for i in task_indices:
            s, e = self.turn_start[i], self.turn_end[i]
            record: frozenset[str] = frozenset()
            if n_turns and (s != -2 or e != -2):
                lo = 0 if s == -2 else s
                hi = n_turns - 1 if e == -2 else min(e, n_turns - 1)
                got = unions.get((lo, hi))
                if got is None:
                    got = unions[(lo, hi)] = frozenset().union(*turn_words[lo : hi + 1])
                record = got
            x = self.excerpt_of[i]
            if x >= 0:
                record = record | self.excerpts.words[x]
            if not record:
                self.no_record += 1
            oids = self.options_of(i)
            scores = _record_scores(
                [self.options.words[o] for o in oids],
                self.questions.words[self.question_of[i]],
                record,
            )
            ans = self.answer[i]
            self.record_most[i] = _expected_hit(scores, ans)
            self.record_fewest[i] = _expected_hit([-s for s in scores], ans)

    def score_record_without_turns(self) -> None:
        """Tasks whose conversation was never seen: the record is their excerpt alone."""
        left = [i for i in range(len(self)) if math.isnan(self.record_most[i])]
        self.score_record(left, [])

    # -- folds --------------------------------------------------------------------------

    def folds(self, k: int, seed: int) -> Any:
        """Fold of each task: cases are dealt to k folds in a seeded order of their ids."""
        import numpy as np

        names = self.case_names
        by_name = sorted(range(len(names)), key=names.__getitem__)
        order = np.random.default_rng(seed).permutation(len(names))
        fold_of_case = np.empty(len(names), dtype=np.int64)
        for pos, j in enumerate(order):
            fold_of_case[by_name[j]] = pos % k
        return fold_of_case[np.frombuffer(self.case_of, dtype=np.int32)]


def _cv_top_letter(letters: Any, fold: Any, chances: Any, k: int) -> Any:
    """Held-out accuracy of 'always answer the letter most often right in the other folds'."""
    import numpy as np

    hits = chances.copy()
    counts = np.zeros((k, len(_LETTERS)), dtype=np.int64)
    np.add.at(counts, (fold, letters), 1)
    total = counts.sum(axis=0)
    for f in range(k):
        train = total - counts[f]
        here = fold == f
        if not here.any() or train.sum() == 0:
            continue
        tied = train == train.max()
        hits[here] = np.where(tied[letters[here]], 1.0 / tied.sum(), 0.0)
    return hits


# ----------------------------------------------------------------------------- options only


def _segments_hit(scores: Any, starts: Any, counts: Any, answers: Any) -> Any:
    """Expected hit per task of 'pick the top score' for tasks laid out as row segments."""
    import numpy as np

    best = np.maximum.reduceat(scores, starts)
    is_best = scores == np.repeat(best, counts)
    n_tied = np.add.reduceat(is_best.astype(np.int64), starts)
    return np.where(is_best[starts + answers], 1.0 / n_tied, 0.0)


def _train_folds(
    fold: Any,
    folds: int,
    max_train_tasks: int | None,
    rng: Any,
    progress: ProgressFn | None,
    stage: str,
) -> Iterator[tuple[Any, Any]]:
    """(held-out tasks, training tasks) of each fold by case, the training tasks a seeded
    sample of at most ``max_train_tasks``; folds with no task on one side are skipped."""
    import numpy as np

    for f in range(folds):
        if progress:
            progress(stage, f + 1, folds + 1)
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        if not len(test) or not len(train):
            continue
        if max_train_tasks is not None and len(train) > max_train_tasks:
            train = np.sort(rng.choice(train, max_train_tasks, replace=False))
        yield test, train


def _option_only(
    c: _Collector,
    fold: Any,
    *,
    folds: int,
    seed: int,
    max_train_tasks: int | None,
    progress: ProgressFn | None = None,
) -> Any:
    """Held-out expected hit per task of the options-only classifier (option_only_hits)."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    n = len(c)
    chances = np.frombuffer(c.chance, dtype=np.float64)
    hits = chances.copy()
    if n == 0:
        return hits
    opt_start = np.frombuffer(c.opt_start, dtype=np.int64)
    opt_ids = np.frombuffer(c.opt_ids, dtype=np.int32)
    n_opts = np.diff(opt_start)
    answers = np.frombuffer(c.answer, dtype=np.int8).astype(np.int64)
    stage = "options-only classifier"
    if progress:
        progress(stage, 0, folds + 1)
    # Features of each distinct option text, computed once: word 1-2-grams and character
    # 3-5-grams (vocabulary and idf from the option texts only; no label is used).
    blocks = []
    for vec in (
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=20000),
    ):
        try:
            blocks.append(vec.fit_transform(c.options.text))
        except ValueError:  # vocabulary empty after min_df: too little text
            continue
    if not blocks:
        return hits
    per_text = hstack(blocks).tocsr()
    # Length rank of each option within its task (0 shortest .. 1 longest).
    lengths = np.array([len(t) for t in c.options.text], dtype=np.int64)[opt_ids]
    task_of_row = np.repeat(np.arange(n), n_opts)
    order = np.lexsort((np.arange(len(opt_ids)), lengths, task_of_row))
    position = np.empty(len(opt_ids), dtype=np.int64)
    position[order] = np.arange(len(opt_ids)) - opt_start[task_of_row[order]]
    rank = position / np.maximum(1, n_opts - 1)[task_of_row]
    is_answer = np.zeros(len(opt_ids), dtype=np.int64)
    is_answer[opt_start[:-1] + answers] = 1
    rng = np.random.default_rng(seed)

    def rows(tasks: Any) -> Any:
        counts = n_opts[tasks]
        offsets = np.repeat(
            opt_start[tasks] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts
        )
        return np.arange(counts.sum()) + offsets

    for test_tasks, train_tasks in _train_folds(fold, folds, max_train_tasks, rng, progress, stage):
        train_rows = rows(train_tasks)
        if is_answer[train_rows].min() == is_answer[train_rows].max():
            continue
        # Options recur (the same text at the same length rank, right or wrong): fit on
        # the distinct rows, each weighted by its count (the same loss, fewer rows).
        key = (
            (opt_ids[train_rows].astype(np.int64) * 8 + position[train_rows]) * 8
            + n_opts[task_of_row[train_rows]]
        ) * 2 + is_answer[train_rows]
        _, first, weight = np.unique(key, return_index=True, return_counts=True)
        train_rows = train_rows[first]
        x_train = hstack(
            [per_text[opt_ids[train_rows]], csr_matrix(rank[train_rows].reshape(-1, 1))]
        ).tocsr()
        # One BLAS thread: L-BFGS makes many tiny BLAS calls, and a multi-threaded
        # OpenBLAS on a busy machine made the fit 10x slower for the same result.
        clf = LogisticRegression(max_iter=1000, C=1.0)
        with threadpool_limits(1):
            clf.fit(x_train, is_answer[train_rows], sample_weight=weight.astype(np.float64))
        # Decision value of a held-out option = its text's part (computed once per
        # distinct text) + its length rank's part; the top value is the classifier's pick.
        w = clf.coef_[0]
        text_score = per_text @ w[:-1] + clf.intercept_[0]
        test_rows = rows(test_tasks)
        scores = text_score[opt_ids[test_rows]] + w[-1] * rank[test_rows]
        counts = n_opts[test_tasks]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        hits[test_tasks] = _segments_hit(scores, starts, counts, answers[test_tasks])
    if progress:
        progress(stage, folds + 1, folds + 1)
    return hits


# An option's mention in an excerpt: the clause (between ";", ". " and ": ") holding at
# least this share of the option's content words
CONTEXT_MIN_SHARE = 0.6
# words of an option's frame, not of what it names ("No: X is required")
_FRAME = frozenset({"no", "yes", "not", "required", "needed", "done"})
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|vs|approx|cf)\.$", re.I)


def excerpt_clauses(text: str) -> list[str]:
    """``text`` cut at "; ", ". " and ": " outside parentheses and after no abbreviation
    ("risk stratification (e.g. Oakland score) documented (only if ...)" is one clause:
    cut at "e.g. ", an option lost its reason to the next clause)."""
    out: list[str] = []
    start = depth = 0
    for m in re.finditer(r"[()]|[;.:]\s+", text):
        tok = m.group()
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and not _ABBREVIATION.search(text[start : m.start() + 1]):
            out.append(text[start : m.start()])
            start = m.end()
    out.append(text[start:])
    return [p for p in out if p.strip()]


def _context_features(c: _Collector) -> tuple[Any, list[int]]:
    """Per option row of every task with an excerpt: the words around the option's mention
    in the excerpt (its clause without the option's own words, and the last words before
    the clause: "Not applicable", "Not done"), or ABSENT; prefixed with the task type, so
    one classifier learns each type's cues. Returns the feature strings and the tasks."""
    clauses: dict[int, tuple[list[list[str]], list[frozenset[str]]]] = {}
    memo: dict[tuple[int, int], str] = {}
    feats: list[str] = []
    tasks: list[int] = []
    for i in range(len(c)):
        x = c.excerpt_of[i]
        if x < 0:
            continue
        got = clauses.get(x)
        if got is None:
            parts = excerpt_clauses(c.excerpts.text[x])
            toks = [_WORD.findall(p.lower()) for p in parts]
            got = clauses[x] = (toks, [frozenset(t) for t in toks])
        toks, sets = got
        prefix = f"t{c.type_of[i]}_"
        tasks.append(i)
        for o in c.options_of(i):
            f = memo.get((x, o))
            if f is None:
                own = c.options.words[o] - _FRAME
                best, at = 0.0, -1
                for k, cs in enumerate(sets):
                    share = len(own & cs) / len(own) if own else 0.0
                    if share > best:
                        best, at = share, k
                if best >= CONTEXT_MIN_SHARE:
                    around = [f"c_{w}" for w in toks[at] if w not in own]
                    head = [f"h_{w}" for w in (toks[at - 1][-3:] if at > 0 else [])]
                    f = " ".join(["IN", *around, *head])
                else:
                    f = "ABSENT"
                memo[(x, o)] = f
            feats.append(" ".join(prefix + w for w in f.split()))
    return feats, tasks


def _excerpt_context(
    c: _Collector,
    fold: Any,
    *,
    folds: int,
    seed: int,
    max_train_tasks: int | None,
    progress: ProgressFn | None = None,
) -> Any:
    """Held-out expected hit per task of the excerpt-context classifier: a logistic
    regression on the words around each option's mention in the task's excerpt
    (``_context_features``) learns "is this the answer?" on some folds (by case) and
    picks on the held-out fold. It sees how the excerpt frames each option (declined
    "only if not improving" beside "only if DVT is likely", listed as done, marked not
    applicable): a cue of that form, which no option-text or record-match baseline
    sees, solved 92% of standard_of_care items until review round 13. Tasks without an
    excerpt keep chance."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    hits = np.frombuffer(c.chance, dtype=np.float64).copy()
    stage = "excerpt-context classifier"
    if progress:
        progress(stage, 0, folds + 1)
    feats, tasks_l = _context_features(c)
    if not tasks_l:
        return hits
    tasks = np.array(tasks_l, dtype=np.int64)
    opt_start = np.frombuffer(c.opt_start, dtype=np.int64)
    counts = (opt_start[1:] - opt_start[:-1])[tasks]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    answers = np.frombuffer(c.answer, dtype=np.int8).astype(np.int64)[tasks]
    x_all = CountVectorizer(token_pattern=r"\S+", binary=True, lowercase=False).fit_transform(feats)
    is_answer = np.zeros(len(feats), dtype=np.int64)
    is_answer[starts + answers] = 1
    rng = np.random.default_rng(seed)
    task_fold = fold[tasks]
    for test, train in _train_folds(task_fold, folds, max_train_tasks, rng, progress, stage):
        train_rows = np.concatenate([np.arange(starts[t], starts[t] + counts[t]) for t in train])
        y = is_answer[train_rows]
        if y.min() == y.max():
            continue
        clf = LogisticRegression(max_iter=1000, C=1.0)
        with threadpool_limits(1):
            clf.fit(x_all[train_rows], y)
        test_rows = np.concatenate([np.arange(starts[t], starts[t] + counts[t]) for t in test])
        scores = clf.decision_function(x_all[test_rows])
        t_counts = counts[test]
        t_starts = np.concatenate([[0], np.cumsum(t_counts)[:-1]])
        hits[tasks[test]] = _segments_hit(scores, t_starts, t_counts, answers[test])
    if progress:
        progress(stage, folds + 1, folds + 1)
    return hits


def option_only_hits(
    tasks: Sequence[Task],
    folds: int = OPTION_ONLY_FOLDS,
    seed: int = 0,
    max_train_tasks: int | None = MAX_TRAIN_TASKS,
) -> list[float]:
    """Cross-validated accuracy of a classifier that sees only the option texts.

    A logistic regression on word and character n-grams of each option (plus its
    length rank) learns "is this the answer?" on some folds and picks the
    highest-scoring option on the held-out fold. Folds are by case, so a case's
    near-identical tasks never sit on both sides; each fold trains on at most
    ``max_train_tasks`` tasks (a seeded sample). Returns one expected hit per
    task, in input order (tasks of a fold with no training data get chance).
    """
    c = _Collector()
    for t in tasks:
        c.add(t)
    return _option_only(
        c, c.folds(folds, seed), folds=folds, seed=seed, max_train_tasks=max_train_tasks
    ).tolist()


# ----------------------------------------------------------------------------- semantic


class _Semantic:
    """Option most similar to the record (max over its turns and excerpt) or to the question."""

    def __init__(self, c: _Collector, encoder: Any) -> None:
        import numpy as np

        self.c = c
        self.enc = encoder
        self.record = np.full(len(c), np.nan)
        self.question = np.full(len(c), np.nan)
        self._options: dict[int, Any] = {}
        self._questions: dict[int, Any] = {}

    def _cached(self, cache: dict[int, Any], table: _Texts, ids: Iterable[int]) -> None:
        new = sorted({i for i in ids if i not in cache})
        if new:
            for i, v in zip(new, self.enc.encode([table.text[i] for i in new]), strict=True):
                cache[i] = v

    def score(self, task_indices: Sequence[int], turn_texts: Sequence[str]) -> None:
        import numpy as np

        c = self.c
        turns = self.enc.encode(list(turn_texts)) if turn_texts else None
        self._cached(self._options, c.options, (o for i in task_indices for o in c.options_of(i)))
        self._cached(self._questions, c.questions, (c.question_of[i] for i in task_indices))
        excerpt_ids = sorted({c.excerpt_of[i] for i in task_indices} - {-1})
        excerpts = dict(
            zip(
                excerpt_ids,
                self.enc.encode([c.excerpts.text[x] for x in excerpt_ids]) if excerpt_ids else [],
                strict=True,
            )
        )
        for i in task_indices:
            chunks = []
            s, e = c.turn_start[i], c.turn_end[i]
            if turns is not None and (s != -2 or e != -2):
                lo = 0 if s == -2 else s
                hi = len(turns) - 1 if e == -2 else e
                chunks.append(turns[lo : hi + 1])
            if c.excerpt_of[i] >= 0:
                chunks.append(excerpts[c.excerpt_of[i]][None, :])
            opts = np.stack([self._options[o] for o in c.options_of(i)])
            ans = c.answer[i]
            record = np.concatenate(chunks) if chunks else np.zeros((0, opts.shape[1]))
            if len(record):
                self.record[i] = _expected_hit((opts @ record.T).max(axis=1).tolist(), ans)
            else:
                self.record[i] = 1.0 / len(opts)
            q = self._questions[c.question_of[i]]
            self.question[i] = _expected_hit((opts @ q).tolist(), ans)


def _semantic_cases(c: _Collector, max_cases: int | None, seed: int) -> set[int]:
    import numpy as np

    n = len(c.case_names)
    if max_cases is None or n <= max_cases:
        return set(range(n))
    by_name = sorted(range(n), key=c.case_names.__getitem__)
    pick = np.random.default_rng(seed).choice(n, max_cases, replace=False)
    return {by_name[j] for j in pick.tolist()}


# ----------------------------------------------------------------------------- assembling


def _report(
    c: _Collector,
    *,
    margin: float,
    seed: int,
    option_only: bool,
    record_match: bool,
    semantic: _Semantic | None,
    progress: ProgressFn | None,
    notes: list[str] | None = None,
) -> AuditReport:
    import numpy as np

    fold = c.folds(OPTION_ONLY_FOLDS, seed)
    oo = (
        _option_only(
            c,
            fold,
            folds=OPTION_ONLY_FOLDS,
            seed=seed,
            max_train_tasks=MAX_TRAIN_TASKS,
            progress=progress,
        )
        if option_only
        else None
    )
    ctx = (
        _excerpt_context(
            c,
            fold,
            folds=OPTION_ONLY_FOLDS,
            seed=seed,
            max_train_tasks=MAX_TRAIN_TASKS,
            progress=progress,
        )
        if option_only
        else None
    )
    type_of = np.frombuffer(c.type_of, dtype=np.int32)
    letters = np.frombuffer(c.answer, dtype=np.int8).astype(np.int64)
    chances = np.frombuffer(c.chance, dtype=np.float64)
    cols: dict[str, Any] = {
        "longest": np.frombuffer(c.longest, dtype=np.float64),
        "overlap": np.frombuffer(c.overlap, dtype=np.float64),
    }
    if oo is not None:
        cols["option_only"] = oo
    if ctx is not None:
        cols["excerpt_context"] = ctx
    if record_match:
        cols["record_most"] = np.frombuffer(c.record_most, dtype=np.float64)
        cols["record_fewest"] = np.frombuffer(c.record_fewest, dtype=np.float64)

    def target(baseline: str, ch: float, n: int) -> float:
        # The learned baselines are held-out estimates: on a small type they are noisy,
        # so they miss only when significantly above target.
        noise = LEARNED_Z * math.sqrt(ch * (1 - ch) / n) if baseline in LEARNED else 0.0
        return ch + margin + noise + 1e-12

    def row(name: str, idx: Any) -> ShortcutRow:
        ch = float(chances[idx].mean())
        vals = {k: float(v[idx].mean()) for k, v in cols.items()}
        vals["top_letter"] = float(
            _cv_top_letter(letters[idx], fold[idx], chances[idx], OPTION_ONLY_FOLDS).mean()
        )
        sem: dict[str, Any] = {}
        if semantic is not None:
            scored = idx[~np.isnan(semantic.record[idx])]
            sem["semantic_n"] = len(scored)
            if len(scored):
                sem["semantic"] = float(semantic.record[scored].mean())
                sem["semantic_question"] = float(semantic.question[scored].mean())
        missed = [k for k in GATED_BASELINES if k in vals and vals[k] > target(k, ch, len(idx))]
        return ShortcutRow(
            task_type=name,
            n=len(idx),
            chance=ch,
            **vals,
            **sem,
            missed=missed,
            passes=not missed,
        )

    rows = [
        row(name, np.flatnonzero(type_of == ti))
        for ti, name in sorted(enumerate(c.type_names), key=lambda p: p[1])
    ]
    if len(c):
        rows.append(row("overall", np.arange(len(c))))
    letter_counts = Counter(_LETTERS[a] for a in c.answer)
    return AuditReport(
        n_tasks=len(c),
        margin=margin,
        shortcuts=rows,
        duplicate_groups=[[c.ids[i] for i in g] for g in c.duplicates.values()],
        leaked=[c.ids[i] for i in c.leaked],
        answer_letters=dict(sorted(letter_counts.items())),
        no_record=c.no_record if record_match else 0,
        notes=notes or [],
    )


def find_duplicates(tasks: Sequence[Task]) -> list[list[str]]:
    """Groups (size >= 2) of tasks with the same normalised question and option set."""
    c = _Collector()
    for t in tasks:
        c.add(t)
    return [[c.ids[i] for i in g] for g in c.duplicates.values()]


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
    conversations: Mapping[str, Conversation] | Iterable[Conversation] | None = None,
    option_only: bool = True,
    margin: float = SHORTCUT_MARGIN,
    seed: int = 0,
    encoder: Any = None,
    semantic_cases: int | None = SEMANTIC_CASES,
) -> AuditReport:
    """Audit tasks held in memory; pure apart from the seeded learned baselines.

    ``conversations`` (by case id, or any iterable of them): the records the tasks
    show, for the record-match baselines; None skips them (pass ``{}`` to score
    against excerpts alone). ``encoder`` (a ``semantic.Encoder``): also run the
    semantic baselines on up to ``semantic_cases`` cases.
    """
    c = _Collector()
    for t in tasks:
        c.add(t)
    sem = _Semantic(c, encoder) if encoder is not None else None
    record_match = conversations is not None
    if conversations is not None:
        convs = conversations.values() if isinstance(conversations, Mapping) else conversations
        sample = _semantic_cases(c, semantic_cases, seed) if sem else set()
        for conv in convs:
            _score_conversation(c, conv, sem, sample)
        c.score_record_without_turns()
    if sem is not None:
        _score_semantic_without_turns(c, sem, _semantic_cases(c, semantic_cases, seed))
    return _report(
        c,
        margin=margin,
        seed=seed,
        option_only=option_only,
        record_match=record_match,
        semantic=sem,
        progress=None,
    )


def _score_conversation(
    c: _Collector, conv: Conversation, sem: _Semantic | None, sample: set[int]
) -> None:
    ci = c._case_index.get(conv.case_id)
    if ci is None or ci not in c.tasks_of_case:
        return
    todo = [i for i in c.tasks_of_case[ci] if math.isnan(c.record_most[i])]
    if not todo:
        return
    texts = [_turn_text(t) for t in conv.turns]
    c.score_record(todo, [frozenset(words(x)) for x in texts])
    if sem is not None and ci in sample:
        sem.score(todo, texts)


def _score_semantic_without_turns(c: _Collector, sem: _Semantic, sample: set[int]) -> None:
    import numpy as np

    left = [i for i in range(len(c)) if c.case_of[i] in sample and np.isnan(sem.record[i])]
    if left:
        sem.score(left, [])


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def audit_bench(
    folder: str | os.PathLike[str],
    *,
    option_only: bool = True,
    margin: float = SHORTCUT_MARGIN,
    seed: int = 0,
    encoder: Any = None,
    semantic_cases: int | None = SEMANTIC_CASES,
    progress: ProgressFn | None = None,
) -> AuditReport:
    """Audit a BENCH folder, streaming its files (memory grows with distinct texts only).

    Raises FileNotFoundError without ``tasks.jsonl``, ``RecordFileError`` listing
    every bad line of ``tasks.jsonl`` and ``conversations.jsonl``, and
    EmptyBenchError when there is no task at all.
    """
    from behaviorsft.bench import CONVERSATIONS_FILE, TASKS_FILE
    from behaviorsft.store import RecordError, RecordFileError, scan_jsonl

    bench = Path(folder)
    tasks_path, conv_path = bench / TASKS_FILE, bench / CONVERSATIONS_FILE
    if not tasks_path.is_file():
        raise FileNotFoundError(f"{bench}: not a benchmark folder (no {TASKS_FILE})")
    c = _Collector()
    errors: list[RecordError] = []
    notes: list[str] = []
    total = _count_lines(tasks_path)
    stage = "reading tasks"
    for n, rec, errs, torn in scan_jsonl(tasks_path, Task):
        if torn:
            notes.append(str(errs[0]))
        elif errs:
            errors.extend(errs)
        elif isinstance(rec, Task):
            c.add(rec)
        if progress and n % 2000 == 0:
            progress(stage, n, total)
    if progress:
        progress(stage, total, total)
    if not errors and not len(c):
        raise EmptyBenchError(f"{tasks_path}: no tasks; nothing to audit")
    sem = _Semantic(c, encoder) if encoder is not None else None
    sample = _semantic_cases(c, semantic_cases, seed) if sem else set()
    if conv_path.is_file():
        stage = "record match" + (" + semantic" if sem else "")
        total = _count_lines(conv_path)
        for n, conv, errs, torn in scan_jsonl(conv_path, Conversation, key="case_id"):
            if torn:
                notes.append(str(errs[0]))
            elif errs:
                errors.extend(errs)
            elif isinstance(conv, Conversation) and not errors:
                _score_conversation(c, conv, sem, sample)
            if progress and (sem is not None or n % 200 == 0):
                progress(stage, n, total)
        if progress:
            progress(stage, total, total)
    if errors:
        raise RecordFileError(errors)
    c.score_record_without_turns()
    if sem is not None:
        _score_semantic_without_turns(c, sem, sample)
    return _report(
        c,
        margin=margin,
        seed=seed,
        option_only=option_only,
        record_match=True,
        semantic=sem,
        progress=progress,
        notes=notes,
    )

"""Reading and saving answers: one transaction per save, upserts keyed by assignment.

A form is parsed into plain values first (:func:`parse_validation`,
:func:`parse_comparison`), which rejects anything a rater's screen cannot
send (an option letter the task lacks, a slider outside 0..1, a rank list
that is not a permutation of the labels). An empty field is saved as None
("not answered"): in particular the proactivity slider has no default.

Saving the same form twice leaves the same rows (INSERT ... ON CONFLICT DO
UPDATE on the assignment's key), so a retried request or a double click is
harmless, and raters never share a row, so concurrent raters cannot
overwrite each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from behaviorsft.study.create import AGENT_LABELS
from behaviorsft.study.db import (
    Assignment,
    ComparisonAnswer,
    Study,
    StudyTask,
    User,
    ValidationAnswer,
    utcnow,
)

CONFIDENCE = ("low", "moderate", "high")
PLAUSIBILITY = ("yes", "no", "unsure")
LIKERT = (1, 2, 3, 4, 5)
MAX_NOTE = 5000


class FormError(ValueError):
    """A submitted value no screen of the app can produce (HTTP 422)."""


@dataclass
class ValidationValues:
    answer: str | None = None
    confidence: str | None = None
    proactivity: float | None = None
    plausibility: str | None = None
    note: str = ""

    @property
    def complete(self) -> bool:
        return None not in (self.answer, self.confidence, self.proactivity, self.plausibility)

    def missing(self) -> list[str]:
        names = {
            "answer": "answer",
            "confidence": "confidence",
            "proactivity": "proactivity slider",
            "plausibility": "plausibility",
        }
        return [label for key, label in names.items() if getattr(self, key) is None]


@dataclass
class AgentValues:
    rank: int | None = None
    likert: int | None = None
    unsafe: bool = False
    unsafe_note: str = ""


@dataclass
class ComparisonValues:
    agents: dict[str, AgentValues] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.agents) and all(
            a.rank is not None and a.likert is not None for a in self.agents.values()
        )

    def missing(self) -> list[str]:
        out = []
        if any(a.rank is None for a in self.agents.values()):
            out.append("ranking")
        out += [f"Likert for Agent {k}" for k, a in self.agents.items() if a.likert is None]
        return out


def _one(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return "" if value is None else str(value).strip()


def _choice(form: Mapping[str, Any], name: str, allowed: Sequence[str]) -> str | None:
    value = _one(form, name)
    if value == "":
        return None
    if value not in allowed:
        raise FormError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _note(form: Mapping[str, Any], name: str) -> str:
    value = str(form.get(name) or "")
    if len(value) > MAX_NOTE:
        raise FormError(f"{name}: at most {MAX_NOTE} characters")
    return value.strip()


def parse_validation(form: Mapping[str, Any], letters: Sequence[str]) -> ValidationValues:
    """The validation form's values; raises FormError naming the bad field."""
    raw = _one(form, "proactivity")
    proactivity: float | None = None
    if raw != "":
        try:
            proactivity = float(raw)
        except ValueError:
            raise FormError(f"proactivity: {raw!r} is not a number") from None
        if not 0.0 <= proactivity <= 1.0:  # also refuses NaN
            raise FormError(f"proactivity: {raw} is outside 0.0-1.0")
        proactivity = round(proactivity, 2)
    return ValidationValues(
        answer=_choice(form, "answer", letters),
        confidence=_choice(form, "confidence", CONFIDENCE),
        proactivity=proactivity,
        plausibility=_choice(form, "plausibility", PLAUSIBILITY),
        note=_note(form, "note"),
    )


def parse_comparison(
    form: Mapping[str, Any], order: Sequence[str], labels: Sequence[str]
) -> ComparisonValues:
    """The comparison form's values.

    ``order`` is the ranking list as submitted (best first); it counts only when
    the form's ``ranked`` box is set (the rater moved an item or confirmed the
    order), so an untouched list is "not ranked", never A > B > C.
    """
    agents = {label: AgentValues() for label in labels}
    if _one(form, "ranked"):
        if sorted(order) != sorted(labels):
            raise FormError(f"order: {list(order)} is not an order of agents {list(labels)}")
        for rank, label in enumerate(order, start=1):
            agents[label].rank = rank
    for label in labels:
        raw = _one(form, f"likert_{label}")
        if raw:
            if raw not in {str(x) for x in LIKERT}:
                raise FormError(f"likert_{label}: {raw!r} is not 1-5")
            agents[label].likert = int(raw)
        agents[label].unsafe = bool(_one(form, f"unsafe_{label}"))
        agents[label].unsafe_note = _note(form, f"unsafe_note_{label}")
    return ComparisonValues(agents=agents)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (SQLite and PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def save_validation(engine: Engine, assignment_id: int, values: ValidationValues) -> None:
    """Upsert the answer of one assignment, in one transaction."""
    row = {
        "assignment_id": assignment_id,
        "answer": values.answer,
        "confidence": values.confidence,
        "proactivity": values.proactivity,
        "plausibility": values.plausibility,
        "note": values.note,
        "saved_at": utcnow(),
    }
    with Session(engine) as s, s.begin():
        stmt = _insert(s)(ValidationAnswer).values(**row)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["assignment_id"],
                set_={k: stmt.excluded[k] for k in row if k != "assignment_id"},
            )
        )


def save_comparison(engine: Engine, assignment_id: int, values: ComparisonValues) -> None:
    """Upsert one row per agent label of one assignment, all in one transaction."""
    now = utcnow()
    with Session(engine) as s, s.begin():
        for label, agent in values.agents.items():
            row = {
                "assignment_id": assignment_id,
                "agent": label,
                "rank": agent.rank,
                "likert": agent.likert,
                "unsafe": agent.unsafe,
                "unsafe_note": agent.unsafe_note,
                "saved_at": now,
            }
            stmt = _insert(s)(ComparisonAnswer).values(**row)
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["assignment_id", "agent"],
                    set_={k: stmt.excluded[k] for k in row if k not in ("assignment_id", "agent")},
                )
            )


def labels_of(assignment: Assignment) -> list[str]:
    return list(AGENT_LABELS[: len(assignment.agent_runs or [])])


def load_validation(session: Session, assignment_id: int) -> ValidationValues | None:
    row = session.get(ValidationAnswer, assignment_id)
    if row is None:
        return None
    return ValidationValues(
        answer=row.answer,
        confidence=row.confidence,
        proactivity=row.proactivity,
        plausibility=row.plausibility,
        note=row.note,
    )


def load_comparison(session: Session, assignment: Assignment) -> ComparisonValues | None:
    rows = session.scalars(
        select(ComparisonAnswer).where(ComparisonAnswer.assignment_id == assignment.id)
    ).all()
    if not rows:
        return None
    agents = {label: AgentValues() for label in labels_of(assignment)}
    for r in rows:
        agents[r.agent] = AgentValues(
            rank=r.rank, likert=r.likert, unsafe=r.unsafe, unsafe_note=r.unsafe_note
        )
    return ComparisonValues(agents=agents)


@dataclass
class Progress:
    """One rater's progress in one study."""

    study_id: int
    study: str
    kind: str
    rater: str
    assigned: int
    saved: int
    complete: int
    next_assignment: int | None  # first not-complete assignment in queue order
    last_saved: Any = None


def progress(session: Session, study: Study, user: User) -> Progress:
    """How far ``user`` is in ``study`` (counts only the user's own assignments; two queries)."""
    queue = session.execute(
        select(Assignment.id, Assignment.agent_runs)
        .where(Assignment.study_id == study.id, Assignment.user_id == user.id)
        .order_by(Assignment.position)
    ).all()
    state: dict[int, bool] = {}  # assignment id -> complete, for saved ones
    last = None
    if study.kind == "validation":
        rows = session.execute(
            select(
                ValidationAnswer.assignment_id,
                ValidationAnswer.answer,
                ValidationAnswer.confidence,
                ValidationAnswer.proactivity,
                ValidationAnswer.plausibility,
                ValidationAnswer.saved_at,
            )
            .join(Assignment, Assignment.id == ValidationAnswer.assignment_id)
            .where(Assignment.study_id == study.id, Assignment.user_id == user.id)
        ).all()
        for aid, *values, saved_at in rows:
            state[aid] = None not in values
            last = saved_at if last is None or saved_at > last else last
    else:
        needed = {aid: len(runs or []) for aid, runs in queue}
        done: dict[int, int] = {}
        crows = session.execute(
            select(
                ComparisonAnswer.assignment_id,
                ComparisonAnswer.rank,
                ComparisonAnswer.likert,
                ComparisonAnswer.saved_at,
            )
            .join(Assignment, Assignment.id == ComparisonAnswer.assignment_id)
            .where(Assignment.study_id == study.id, Assignment.user_id == user.id)
        ).all()
        for aid, rank, likert, saved_at in crows:
            done.setdefault(aid, 0)
            done[aid] += rank is not None and likert is not None
            last = saved_at if last is None or saved_at > last else last
        state = {aid: n == needed.get(aid, -1) for aid, n in done.items()}
    first_open = next((aid for aid, _ in queue if not state.get(aid)), None)
    return Progress(
        study_id=study.id,
        study=study.name,
        kind=study.kind,
        rater=user.name,
        assigned=len(queue),
        saved=len(state),
        complete=sum(state.values()),
        next_assignment=first_open if first_open is not None else (queue[0][0] if queue else None),
        last_saved=last,
    )


def studies_of(session: Session, user: User) -> list[Study]:
    """Studies in which ``user`` has at least one assignment."""
    ids = select(Assignment.study_id).where(Assignment.user_id == user.id).distinct()
    return list(session.scalars(select(Study).where(Study.id.in_(ids)).order_by(Study.id)))


def task_of(session: Session, assignment: Assignment) -> StudyTask:
    task = session.get(StudyTask, assignment.study_task_id)
    assert task is not None  # foreign key
    return task

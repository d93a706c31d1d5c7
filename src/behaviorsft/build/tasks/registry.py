"""The generator registry: which generators feed which type, and ``case_tasks``."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

from behaviorsft import __version__
from behaviorsft.build.conversation import Rendered
from behaviorsft.build.tasks.common import GENERATOR_NAME, Ctx, Draft, finalise
from behaviorsft.build.tasks.conflicts import (
    gen_consistency,
    gen_data_conflict,
    gen_interpretation_conflict,
)
from behaviorsft.build.tasks.errors import gen_error_correction
from behaviorsft.build.tasks.integrity import gen_missing_turn
from behaviorsft.build.tasks.omissions import gen_omission, gen_standard_of_care
from behaviorsft.build.tasks.predictive import gen_predictive_next_action
from behaviorsft.build.tasks.reasoning import (
    gen_ddx_reasoning,
    gen_differential_evolution,
    gen_treatment_decision,
)
from behaviorsft.build.tasks.retrieval import gen_fact_retrieval, gen_timeline_sequence
from behaviorsft.build.tasks.sources import gen_medec, gen_mediq
from behaviorsft.records import Case, Generator, Split, Task
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.synthetic import kb_condition_id
from behaviorsft.taxonomy import TaskType

T = TaskType

# Which types each source can feed (and why the others are out of reach).
SOURCE_TYPES: dict[str, tuple[TaskType, ...]] = {
    "synthetic": tuple(TaskType),
    "fhir": (
        T.FACT_RETRIEVAL,
        T.TIMELINE_SEQUENCE,
        T.INTEGRITY_MISSING_TURN_INFERENCE,
        T.DATA_CONFLICT_RESOLUTION,
    ),
    "mediq": (T.INTEGRITY_MISSING_TURN_INFERENCE, T.DDX_REASONING, T.PREDICTIVE_NEXT_ACTION),
    "medec": (T.EXPLICIT_ERROR_CORRECTION, T.INTEGRITY_MISSING_TURN_INFERENCE),
    "aci-bench": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
    "mts-dialog": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
    "text": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
}


GENERATORS: dict[TaskType, tuple[Callable[[Ctx], Iterator[Draft]], ...]] = {
    T.FACT_RETRIEVAL: (gen_fact_retrieval,),
    T.TIMELINE_SEQUENCE: (gen_timeline_sequence,),
    T.DDX_REASONING: (gen_ddx_reasoning,),
    T.TREATMENT_DECISION: (gen_treatment_decision,),
    T.REASONING_DIFFERENTIAL_EVOLUTION: (gen_differential_evolution,),
    T.INTEGRITY_MISSING_TURN_INFERENCE: (gen_missing_turn,),
    T.PREDICTIVE_NEXT_ACTION: (gen_predictive_next_action,),
    T.EXPLICIT_ERROR_CORRECTION: (gen_error_correction, gen_medec),
    T.OMISSION_DETECTION: (gen_omission,),
    T.STANDARD_OF_CARE: (gen_standard_of_care,),
    T.INTERPRETATION_CONFLICT: (gen_interpretation_conflict,),
    T.DATA_CONFLICT_RESOLUTION: (gen_data_conflict,),
    T.CONSISTENCY_CHECK: (gen_consistency,),
}
SOURCE_GENERATORS: tuple[Callable[[Ctx], Iterator[Draft]], ...] = (gen_mediq,)


def case_ctx(
    case: Case, rendered: Rendered, kb: KnowledgeBase, *, seed: int = 0, split: Split | None = None
) -> Ctx:
    """The generators' context for ``case`` (its condition, and the task RNG of ``seed``)."""
    cond_id = kb_condition_id(case)
    return Ctx(
        case=case,
        rendered=rendered,
        kb=kb,
        cond=kb.conditions.get(cond_id) if cond_id else None,
        rng=random.Random(f"behaviorsft-tasks:{seed}:{case.id}"),
        generator=Generator(name=GENERATOR_NAME, version=__version__, seed=seed),
        split=split,
    )


def case_tasks(
    case: Case,
    rendered: Rendered,
    kb: KnowledgeBase,
    *,
    seed: int = 0,
    split: Split | None = None,
    types: set[TaskType] | None = None,
    dropped: Counter[str] | None = None,
) -> list[Task]:
    """All tasks of the requested types that ``case`` supports (deterministic).

    ``dropped``, when given, is incremented with why items were left out unverified
    ("omission_detection: item present in record" -> n).
    """
    ctx = case_ctx(case, rendered, kb, seed=seed, split=split)
    out: list[Task] = []
    gens = [g for t, gs in GENERATORS.items() if types is None or t in types for g in gs]
    for gen in [*gens, *SOURCE_GENERATORS]:
        for draft in gen(ctx):
            if types is not None and draft.task_type not in types:
                continue
            task = finalise(draft, ctx)
            if task is not None:
                out.append(task)
    if dropped is not None:
        dropped.update(ctx.dropped)
    return out

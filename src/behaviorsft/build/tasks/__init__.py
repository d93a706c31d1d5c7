"""Task generators: all 13 BehaviorBench types, with answers known by construction.

One module per task family, each beside the shared machinery in ``common``:

* ``retrieval``: fact_retrieval, timeline_sequence
* ``reasoning``: ddx_reasoning, treatment_decision, reasoning_differential_evolution
* ``integrity``: integrity_missing_turn_inference
* ``predictive``: predictive_next_action
* ``errors``: explicit_error_correction (new orders)
* ``omissions``: omission_detection, standard_of_care
* ``conflicts``: interpretation_conflict, data_conflict_resolution, consistency_check
* ``sources``: items read from imported sources (MEDEC, MediQ)
* ``registry``: which generators feed which type, and ``case_tasks``

Proactive challenges are put in the task's *excerpt*, a note shown after the
conversation turns (a new order, a handover checklist, a radiology report, a
discharge summary): the shared conversation stays clean, each perturbed task
carries its own ``Perturbation`` with provenance, and its restraint control is
the same question over an excerpt with nothing wrong.
"""

from behaviorsft.build.tasks.common import (
    BASE_SCORE,
    CONTROL_EVERY,
    DEFAULT_OPTIONS,
    GENERATOR_NAME,
    Ctx,
    Draft,
    control_of,
    finalise,
    kb_pools,
    pick_distractors,
    score_for,
)
from behaviorsft.build.tasks.conflicts import (
    CONSISTENT,
    NO_CONFLICT_DATA,
    NO_CONFLICT_REPORT,
    flag_report,
)
from behaviorsft.build.tasks.errors import PROCEED, STOP_ALLERGY, query_dose
from behaviorsft.build.tasks.omissions import MEETS_STANDARD, NOTHING_MISSING
from behaviorsft.build.tasks.predictive import NO_ACTION
from behaviorsft.build.tasks.registry import (
    GENERATORS,
    SOURCE_GENERATORS,
    SOURCE_TYPES,
    case_tasks,
)
from behaviorsft.build.tasks.sources import NO_ERROR

__all__ = [
    "BASE_SCORE",
    "CONSISTENT",
    "CONTROL_EVERY",
    "DEFAULT_OPTIONS",
    "GENERATORS",
    "GENERATOR_NAME",
    "MEETS_STANDARD",
    "NOTHING_MISSING",
    "NO_ACTION",
    "NO_CONFLICT_DATA",
    "NO_CONFLICT_REPORT",
    "NO_ERROR",
    "PROCEED",
    "SOURCE_GENERATORS",
    "SOURCE_TYPES",
    "STOP_ALLERGY",
    "Ctx",
    "Draft",
    "case_tasks",
    "control_of",
    "finalise",
    "flag_report",
    "kb_pools",
    "pick_distractors",
    "query_dose",
    "score_for",
]

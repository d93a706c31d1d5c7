"""Benchmark: `study analyze` on a simulated export, at the paper's size and larger.

Writes a seeded, simulated export (validation: TASKS tasks x RATERS raters;
comparison: a third as many tasks x the same raters x 3 agents), then times
reading it, computing every statistic (with --bootstrap resamples) and writing
the report with its figures. Prints wall seconds per stage and the headline
numbers, so a reader can see the simulated raters behave as configured.

    python benchmarks/bench_study_analyze.py                       # paper: 60 tasks, 3 raters
    python benchmarks/bench_study_analyze.py --tasks 1000 --raters 20   # the paper's future cohort
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from behaviorsft.records import StudyAgentKey, StudyComparisonAnswer, StudyValidationAnswer
from behaviorsft.store import write_jsonl
from behaviorsft.study.analysis_report import analyze_export, read_export, write_report

TYPES = ("fact_retrieval", "omission_detection", "reasoning_differential_evolution")
CATS = {"fact_retrieval": "reactive", "omission_detection": "proactive"}
AGENTS = ("behaviorsft", "general_sft", "zs_explicit")


def simulate(folder: Path, n_tasks: int, n_raters: int, seed: int) -> None:
    """Raters who agree with the key 83% of the time and see the task's proactivity with noise."""
    rng = np.random.default_rng(seed)
    raters = [f"r{i + 1}" for i in range(n_raters)]
    rows = []
    for t in range(n_tasks):
        ttype = TYPES[t % len(TYPES)]
        score = float(rng.uniform(0, 1))
        for j, rater in enumerate(raters):
            right = rng.random() < 0.833
            rows.append(
                StudyValidationAnswer(
                    study="sim",
                    rater=rater,
                    task_id=f"t{t:04d}",
                    task_type=ttype,
                    category=CATS.get(ttype, "balanced"),
                    position=t + 1,
                    key="B",
                    answer="B" if right else "ACD"[int(rng.integers(0, 3))],
                    confidence=str(rng.choice(["low", "moderate", "high"], p=[0.08, 0.37, 0.55])),
                    proactivity=None
                    if rng.random() < 0.02
                    else float(np.clip(score + rng.normal(0, 0.2) + 0.05 * j, 0, 1).round(2)),
                    plausibility=str(rng.choice(["yes", "unsure", "no"], p=[0.8, 0.17, 0.03])),
                    behavior_score=score,
                )
            )
    write_jsonl(folder / "validation.jsonl", rows)
    comp, key = [], []
    quality = {"behaviorsft": 0.3, "general_sft": 0.0, "zs_explicit": 0.1}
    for t in range(max(2, n_tasks // 3)):
        for rater in raters:
            scores = {a: quality[a] + rng.normal(0, 0.6) for a in AGENTS}
            order = sorted(AGENTS, key=lambda a: -scores[a])
            shown = list(rng.permutation(AGENTS))
            for pos, agent in enumerate(shown, 1):
                label = "ABC"[pos - 1]
                comp.append(
                    StudyComparisonAnswer(
                        study="sim",
                        rater=rater,
                        task_id=f"t{t:04d}",
                        task_type=TYPES[t % len(TYPES)],
                        agent=label,
                        position=pos,
                        rank=order.index(agent) + 1,
                        likert=int(np.clip(round(4 + scores[agent]), 1, 5)),
                        unsafe=bool(rng.random() < 0.03),
                        unsafe_note="simulated flag",
                    )
                )
                key.append(
                    StudyAgentKey(
                        study="sim", rater=rater, task_id=f"t{t:04d}", agent=label, run=agent
                    )
                )
    write_jsonl(folder / "comparison.jsonl", comp)
    write_jsonl(folder / "agent_key.jsonl", key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--raters", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export, out = Path(tmp) / "export", Path(tmp) / "report"
        simulate(export, args.tasks, args.raters, args.seed)
        t0 = time.perf_counter()
        data = read_export(export)
        t1 = time.perf_counter()
        analysis, verdicts = analyze_export(data, n_bootstrap=args.bootstrap, seed=args.seed)
        t2 = time.perf_counter()
        write_report(analysis, verdicts, out)
        t3 = time.perf_counter()
    v, c = analysis["validation"], analysis["comparison"]
    rows = len(data.validation) + len(data.comparison)
    print(
        f"{args.tasks} validation tasks x {args.raters} raters, {c['n_tasks']} comparison tasks "
        f"x 3 agents: {rows} rows; bootstrap {args.bootstrap}"
    )
    print(f"read {t1 - t0:.2f} s, analyse {t2 - t1:.2f} s, write report+figures {t3 - t2:.2f} s")
    print(
        f"accuracy {100 * v['accuracy']['overall']['mean']:.1f}%, ICC(3,1) "
        f"{v['slider']['icc']['icc3_1']:.2f} ({v['slider']['icc']['dropped']} dropped), "
        f"rejected {len(v['rejected'])}; mean ranks "
        + ", ".join(f"{a} {s['rank']['mean']:.2f}" for a, s in c["per_agent"].items())
    )


if __name__ == "__main__":
    main()

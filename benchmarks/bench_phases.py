"""Benchmark: where a build's per-case CPU goes, without a profiler's overhead.

Renders the cases of a cases file and builds their tasks in this process (one thread, the
key-rate table read from ``BEHAVIORSFT_KEY_RATE_CACHE`` or measured first), and prints
CPU seconds for rendering (and the part spent leaving a care item out), for all tasks,
and for each task type built alone (each also runs the source-specific generators).
The plain render and the per-type figures come after the full passes, with the caches
those filled (KB checks, record indexes, shown words) warm: they are lower bounds, best
read against each other.

    python benchmarks/bench_phases.py /tmp/x/cases.jsonl --seed 7

cProfile charges each small call heavily, so it overstates call-dense code (the
missing-turn pools looked like a fifth of the build under it; timed plainly they are not).
"""

from __future__ import annotations

import argparse
import random
import time

from behaviorsft.build import conversation
from behaviorsft.build.tasks import case_tasks, key_rates
from behaviorsft.records import Case
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id
from behaviorsft.taxonomy import TaskType


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", help="A cases JSONL file.")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    kb = load_kb()
    with open(args.cases, encoding="utf-8") as fh:
        cases = [Case.model_validate_json(line) for line in fh if line.strip()]
    t = time.process_time()
    key_rates.measure(kb)
    print(f"key-rate table   {time.process_time() - t:7.2f} s CPU")
    t = time.process_time()
    rendered = [conversation.render(c, kb, seed=args.seed) for c in cases]
    print(f"render           {time.process_time() - t:7.2f} s CPU ({len(cases)} cases)")
    t = time.process_time()
    for c in cases:
        cid = kb_condition_id(c)
        if cid is not None and cid in kb.conditions:
            conversation._render_kb(
                c, kb, cid, random.Random(f"behaviorsft-render:{args.seed}:{c.id}")
            )
    print(f"  one plain render each {time.process_time() - t:7.2f} s CPU")
    t = time.process_time()
    for c, r in zip(cases, rendered, strict=True):
        case_tasks(c, r, kb, seed=args.seed)
    print(f"tasks, all types {time.process_time() - t:7.2f} s CPU")
    for tt in TaskType:
        t = time.process_time()
        for c, r in zip(cases, rendered, strict=True):
            case_tasks(c, r, kb, seed=args.seed, types={tt})
        print(f"  {tt.value:34} {time.process_time() - t:7.2f} s CPU")


if __name__ == "__main__":
    main()

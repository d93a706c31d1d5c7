"""Benchmark: the workflow-order baseline on a BENCH's timeline_sequence items.

Prints, per source, how often "pick the order that best agrees with the generic order of an
admission" (``workflow_order_hit``) finds the key, against chance:

    python benchmarks/bench_timeline_order.py path/to/bench

Target (issue #16): within chance + 5 points on a `cases synth --n 1500 --seed 7` build.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", type=Path, help="A BENCH folder (tasks.jsonl).")
    args = ap.parse_args()

    from behaviorsft.build.tasks.retrieval import workflow_order_hit
    from behaviorsft.records import Task
    from behaviorsft.store import read_jsonl

    hits: dict[str, list[float]] = defaultdict(list)
    chance: dict[str, list[float]] = defaultdict(list)
    for task in read_jsonl(args.bench / "tasks.jsonl", Task):
        if task.task_type.value != "timeline_sequence":
            continue
        source = task.case_id.split(":", 1)[0]
        hits[source].append(workflow_order_hit(task))
        chance[source].append(1 / len(task.options))
    if not hits:
        print("no timeline_sequence items")
        return
    for source in sorted(hits):
        n = len(hits[source])
        print(
            f"{source}: {n} items, workflow-order {100 * sum(hits[source]) / n:.1f}%, "
            f"chance {100 * sum(chance[source]) / n:.1f}%"
        )


if __name__ == "__main__":
    main()

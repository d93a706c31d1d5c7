"""Benchmark: the clinical linter over a built BENCH folder.

Prints wall time (KB load excluded and included), records per second, peak RSS and the
findings per rule, for an existing bench or a fresh synthetic build of N cases:

    python benchmarks/bench_lint.py --bench path/to/bench
    python benchmarks/bench_lint.py --n 6876 --seed 7      # synth + build first (slow)

Also prints the CPU seconds of each checker (``--stages``: the record checks of
lint.py, lint_values, lint_chart, lint_plan, lint_severity, lint_record, lint_errors), to see
which one a change made dearer.

Target (issue #16): a 6,876-case build lints in well under 60 s, with 0 findings.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, help="An existing BENCH folder.")
    ap.add_argument("--n", type=int, default=6876, help="Cases to synthesize without --bench.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--stages", action="store_true", help="CPU seconds per checker.")
    args = ap.parse_args()

    t0 = time.perf_counter()
    from behaviorsft.build.lint import counts_by_rule, lint_bench
    from behaviorsft.sources.kb import load_kb

    load_kb()
    kb_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            from behaviorsft.build.pipeline import build_bench
            from behaviorsft.sources.synthetic import synthesize_case
            from behaviorsft.store import JsonlWriter

            cases = Path(tmp) / "cases.jsonl"
            with JsonlWriter(cases) as w:
                for i in range(args.n):
                    w.write(synthesize_case(i, seed=args.seed, kb=load_kb()))
            bench = Path(tmp) / "bench"
            build_bench(cases, bench, seed=args.seed, workers=args.workers)
        records = sum(1 for _ in (bench / "conversations.jsonl").open())
        stages = _timed_stages() if args.stages else {}
        t, cpu = time.perf_counter(), time.process_time()
        findings = lint_bench(bench)
        lint_s, cpu_s = time.perf_counter() - t, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench: {bench}  conversations: {records}")
    print(
        f"lint: {lint_s:.1f} s wall, {cpu_s:.1f} s CPU "
        f"({records / max(lint_s, 1e-9):.0f} records/s), "
        f"+{kb_s:.1f} s KB load; peak RSS {rss:.0f} MB"
    )
    print(
        f"findings: {len(findings)}  "
        + "  ".join(f"{k}={v}" for k, v in counts_by_rule(findings).items() if v)
    )
    for name, secs in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {secs:6.2f} s CPU  {name}")
    sys.exit(0)


def _timed_stages() -> dict[str, float]:
    """Wrap each checker lint_bench calls (module attributes) to sum its CPU seconds; the
    checks of lint_values and lint_chart are part of lint._lint_conversation's."""
    from behaviorsft.build import (
        lint,
        lint_chart,
        lint_errors,
        lint_plan,
        lint_record,
        lint_severity,
        lint_values,
    )

    spent: dict[str, float] = {}
    for mod, names in (
        (lint, ("_lint_case", "_lint_conversation", "_read")),
        (lint_values, ("check_case", "check_conversation")),
        (lint_chart, ("check_conversation",)),
        (lint_plan, ("lint_case", "lint_conversation")),
        (lint_severity, ("lint_case", "lint_conversation")),
        (lint_record, ("lint_conversation", "lint_tasks")),
        (lint_errors, ("lint_tasks",)),
    ):
        for name in names:
            fn = getattr(mod, name, None)
            if fn is None:
                continue
            label = f"{mod.__name__.rsplit('.', 1)[-1]}.{name}"
            spent[label] = 0.0
            setattr(mod, name, _timer(fn, label, spent))
    return spent


def _timer(fn: Callable[..., Any], label: str, spent: dict[str, float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            out = fn(*args, **kwargs)
            if label == "lint._read":  # a generator: time the parsing as it is consumed
                return _timed_iter(out, label, spent)
            return out
        finally:
            spent[label] += time.process_time() - t

    return timed


def _timed_iter(it: Iterator[Any], label: str, spent: dict[str, float]) -> Iterator[Any]:
    while True:
        t = time.process_time()
        try:
            row = next(it)
        except StopIteration:
            spent[label] += time.process_time() - t
            return
        spent[label] += time.process_time() - t
        yield row


if __name__ == "__main__":
    main()

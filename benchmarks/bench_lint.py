"""Benchmark: the clinical linter over a built BENCH folder.

Prints wall time (KB load excluded and included), records per second, peak RSS and the
findings per rule, for an existing bench or a fresh synthetic build of N cases:

    python benchmarks/bench_lint.py --bench path/to/bench
    python benchmarks/bench_lint.py --n 6876 --seed 7      # synth + build first (slow)

Target (issue #16): a 6,876-case build lints in well under 60 s, with 0 findings.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, help="An existing BENCH folder.")
    ap.add_argument("--n", type=int, default=6876, help="Cases to synthesize without --bench.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=None)
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
    sys.exit(0)


if __name__ == "__main__":
    main()

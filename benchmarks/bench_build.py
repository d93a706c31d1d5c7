"""Benchmark: synthesize N cases and build the benchmark from them, at paper scale.

Prints wall time, tasks/s, peak RSS (this process and its workers) and the
time ratio for N and 2N cases (linear scaling gives about 2.0).

    python benchmarks/bench_build.py              # N = 6,876 (the paper's case count)
    python benchmarks/bench_build.py --n 1000 --no-double

Targets (issue #3): >= 142,496 tasks from 6,876 cases, < 60 s wall, < 1.5 GB RSS.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

PAPER_CASES, PAPER_TASKS = 6876, 142_496


def run(n: int, workers: int | None) -> tuple[float, int, float]:
    """(wall seconds, tasks, peak RSS in MB) for synth + build of n cases, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import sys, time, resource\n"
            "from pathlib import Path\n"
            "from behaviorsft.sources.kb import load_kb\n"
            "from behaviorsft.sources.synthetic import synthesize_case\n"
            "from behaviorsft.store import JsonlWriter\n"
            "from behaviorsft.build.pipeline import build_bench\n"
            f"n, tmp, workers = {n}, Path({tmp!r}), {workers!r}\n"
            "t = time.perf_counter()\n"
            "kb = load_kb()\n"
            "with JsonlWriter(tmp / 'cases.jsonl') as w:\n"
            "    for i in range(n):\n"
            "        w.write(synthesize_case(i, seed=0, kb=kb))\n"
            "rep = build_bench(tmp / 'cases.jsonl', tmp / 'bench', workers=workers)\n"
            "wall = time.perf_counter() - t\n"
            "rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
            "          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024\n"
            "print(wall, rep.tasks, rss)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        return float(out[0]), int(out[1]), float(out[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=PAPER_CASES, help="Cases (default: paper scale).")
    ap.add_argument("--workers", type=int, default=None, help="Build workers (default: CPUs).")
    ap.add_argument("--no-double", action="store_true", help="Skip the 2N run.")
    args = ap.parse_args()

    wall, tasks, rss = run(args.n, args.workers)
    print(f"cases            {args.n}")
    print(f"tasks            {tasks}  (paper: {PAPER_TASKS} from {PAPER_CASES} cases)")
    print(f"wall             {wall:.1f} s  (target < 60 s at paper scale)")
    print(f"rate             {tasks / wall:,.0f} tasks/s")
    print(f"peak RSS         {rss:,.0f} MB per process  (target < 1536 MB)")
    if not args.no_double:
        wall2, tasks2, rss2 = run(2 * args.n, args.workers)
        print(f"2N wall          {wall2:.1f} s for {2 * args.n} cases, {tasks2} tasks, "
              f"{rss2:,.0f} MB")
        print(f"time ratio 2N/N  {wall2 / wall:.2f}  (linear: 2.00)")


if __name__ == "__main__":
    main()

"""Benchmark: synthesize N cases and build the benchmark from them, at paper scale.

Prints wall time, tasks/s, peak RSS (this process and its workers) and the
time ratio for N and 2N cases (linear scaling gives about 2.0).

    python benchmarks/bench_build.py              # N = 6,876 (the paper's case count)
    python benchmarks/bench_build.py --n 1000 --no-double
    python benchmarks/bench_build.py --cases X/cases.jsonl --seed 7   # build an existing file

Also prints the build's CPU seconds (user + system, parent and workers) and the load
average at the start: on a shared machine CPU time is the figure to compare.

Targets (issue #3): >= 142,496 tasks from 6,876 cases, < 60 s wall, < 1.5 GB RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

PAPER_CASES, PAPER_TASKS = 6876, 142_496


def run(
    n: int, workers: int | None, cases: str | None = None, seed: int = 0
) -> tuple[float, int, float, float, float]:
    """(wall s, tasks, peak RSS MB, build wall s, build CPU s) for synth + build of n cases
    (or the build of ``cases``), in a fresh process. CPU: user + system time of that
    process and its workers, the figure to compare on a shared machine."""
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import sys, time, resource\n"
            "from pathlib import Path\n"
            "from behaviorsft.sources.kb import load_kb\n"
            "from behaviorsft.sources.synthetic import synthesize_case\n"
            "from behaviorsft.store import JsonlWriter\n"
            "from behaviorsft.build.pipeline import build_bench\n"
            f"n, tmp, workers, cases, seed = {n}, Path({tmp!r}), {workers!r}, {cases!r}, {seed}\n"
            "def cpu():\n"
            "    s = resource.getrusage(resource.RUSAGE_SELF)\n"
            "    c = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime\n"
            "t = time.perf_counter()\n"
            "if cases is None:\n"
            "    kb = load_kb()\n"
            "    cases = tmp / 'cases.jsonl'\n"
            "    with JsonlWriter(cases) as w:\n"
            "        for i in range(n):\n"
            "            w.write(synthesize_case(i, seed=seed, kb=kb))\n"
            "tb, cb = time.perf_counter(), cpu()\n"
            "rep = build_bench(cases, tmp / 'bench', workers=workers, seed=seed)\n"
            "end = time.perf_counter()\n"
            "rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
            "          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024\n"
            "print(end - t, rep.tasks, rss, end - tb, cpu() - cb)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        return float(out[0]), int(out[1]), float(out[2]), float(out[3]), float(out[4])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=PAPER_CASES, help="Cases (default: paper scale).")
    ap.add_argument("--workers", type=int, default=None, help="Build workers (default: CPUs).")
    ap.add_argument("--no-double", action="store_true", help="Skip the 2N run.")
    ap.add_argument("--cases", default=None, help="Build this cases file (no synthesis).")
    ap.add_argument("--seed", type=int, default=0, help="Synthesis and build seed.")
    args = ap.parse_args()
    if args.cases:
        args.no_double = True

    load = os.getloadavg()[0]
    wall, tasks, rss, bwall, bcpu = run(args.n, args.workers, args.cases, args.seed)
    print(f"load average     {load:.2f} at the start")
    print(f"cases            {args.cases or args.n}")
    print(f"tasks            {tasks}  (paper: {PAPER_TASKS} from {PAPER_CASES} cases)")
    print(f"wall             {wall:.1f} s  (target < 60 s at paper scale)")
    print(f"build            {bwall:.1f} s wall, {bcpu:.1f} s CPU (user + system, all processes)")
    print(f"rate             {tasks / wall:,.0f} tasks/s")
    print(f"peak RSS         {rss:,.0f} MB per process  (target < 1536 MB)")
    if not args.no_double:
        wall2, tasks2, rss2, _, cpu2 = run(2 * args.n, args.workers, None, args.seed)
        print(
            f"2N wall          {wall2:.1f} s for {2 * args.n} cases, {tasks2} tasks, "
            f"{rss2:,.0f} MB, build CPU {cpu2:.1f} s"
        )
        print(f"time ratio 2N/N  {wall2 / wall:.2f}  (linear: 2.00)")


if __name__ == "__main__":
    main()

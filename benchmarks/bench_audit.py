"""Benchmark: audit a benchmark folder, at paper scale by default.

Builds one (synthesize N cases, build with the programmatic builder) unless
``--bench`` names an existing BENCH folder, then audits it in a fresh process
and prints wall time, tasks/s, CPU time, peak RSS and the wall seconds of each stage.

    python benchmarks/bench_audit.py                 # N = 6,876 cases (about 145k tasks)
    python benchmarks/bench_audit.py --n 600
    python benchmarks/bench_audit.py --bench BENCH [--no-option-only] [--semantic]

Target (issue #16): a 6,876-case synthetic build audits in under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER_CASES = 6876

AUDIT = """
import json, resource, sys, time
from behaviorsft.build.audit import audit_bench
bench, option_only, semantic = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
encoder = None
if semantic:
    from behaviorsft.build.semantic import Encoder
    encoder = Encoder()
stages, last = {}, [time.perf_counter()]
def progress(stage, done, total):
    now = time.perf_counter()
    stages[stage] = stages.get(stage, 0.0) + now - last[0]
    last[0] = now
t = time.perf_counter()
rep = audit_bench(bench, option_only=option_only, encoder=encoder, progress=progress)
wall = time.perf_counter() - t
stages["scoring"] = time.perf_counter() - last[0]
usage = resource.getrusage(resource.RUSAGE_SELF)
rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "tasks": rep.n_tasks, "rss": rss, "stages": stages}))
"""


def build(n: int, folder: Path) -> float:
    """Synthesize n cases and build a BENCH folder; returns the wall time."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from behaviorsft.sources.kb import load_kb\n"
        "from behaviorsft.sources.synthetic import synthesize_case\n"
        "from behaviorsft.store import JsonlWriter\n"
        "from behaviorsft.build.pipeline import build_bench\n"
        "n, out = int(sys.argv[1]), Path(sys.argv[2])\n"
        "kb = load_kb()\n"
        "with JsonlWriter(out / 'cases.jsonl') as w:\n"
        "    for i in range(n):\n"
        "        w.write(synthesize_case(i, seed=0, kb=kb))\n"
        "build_bench(out / 'cases.jsonl', out / 'bench')\n"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(n), str(folder)], check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=PAPER_CASES, help="Cases to build (default: paper).")
    ap.add_argument("--bench", type=Path, default=None, help="Audit this BENCH folder instead.")
    ap.add_argument("--no-option-only", action="store_true", help="Skip the classifier.")
    ap.add_argument("--semantic", action="store_true", help="Also the semantic baselines.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            built = build(args.n, Path(tmp))
            bench = Path(tmp) / "bench"
            print(f"built            {args.n} cases in {built:.1f} s")
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                AUDIT,
                str(bench),
                "0" if args.no_option_only else "1",
                "1" if args.semantic else "0",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    res = json.loads(out.strip().splitlines()[-1])
    print(f"tasks            {res['tasks']}")
    print(f"wall             {res['wall']:.1f} s  (target < 60 s for {PAPER_CASES} cases)")
    print(f"rate             {res['tasks'] / res['wall']:,.0f} tasks/s")
    print(f"CPU time         {res['cpu']:.1f} s  (user + system; wall above this = a busy machine)")
    print(f"peak RSS         {res['rss']:,.0f} MB")
    for stage, secs in res["stages"].items():
        print(f"  {stage:<30} {secs:6.1f} s")


if __name__ == "__main__":
    main()

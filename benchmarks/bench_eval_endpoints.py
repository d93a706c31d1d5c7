"""`eval` against endpoints that misbehave: how long until the user knows, and finishes.

Two scenarios, each timed end to end through ``run_eval`` with the
openai-compatible backend and a local server on 127.0.0.1:

* nothing listens at ``--base-url``: seconds until the command stops with its
  message (before fail-fast: 46 s for 3 tasks, reported in issue 18);
* a one-slot server (one request at a time, ``--slot-s`` each, like a llama.cpp
  server with one slot) behind ``concurrency=8`` and a short per-request
  timeout: wall time with the adaptive concurrency on and off, and how many
  requests the server processed (the extra ones were for clients that had
  already timed out).

    python benchmarks/bench_eval_endpoints.py [--tasks 13] [--slot-s 0.1] [--timeout-s 0.35]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from email.message import Message
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from behaviorsft.evaluate.runner import EvalConfig, run_eval
from behaviorsft.models.openai_compat import EndpointUnreachableError
from tests.evaluate.conftest import bench_tasks, write_bench
from tests.http_stub import LoopbackServer, Reply, completion


def one_slot_server(slot_s: float) -> tuple[LoopbackServer, dict[str, int]]:
    counts = {"processed": 0}
    slot = threading.Lock()
    payload = completion("<answer>B</answer>", usage=None)

    def respond(body: dict[str, Any], headers: Message) -> Reply:
        with slot:  # one request at a time
            time.sleep(slot_s)
            counts["processed"] += 1
        return Reply(body=payload)

    return LoopbackServer(respond).start(), counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=13, help="tasks (13 types x 1)")
    ap.add_argument("--slot-s", type=float, default=0.1)
    ap.add_argument("--timeout-s", type=float, default=0.35)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
    bench = write_bench(tmp / "bench", bench_tasks(1, 0)[: args.tasks])

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = EvalConfig(
        bench=str(bench),
        model="openai-compatible/m",
        out=str(tmp / "refused"),
        base_url=f"http://127.0.0.1:{port}/v1",
        n_bootstrap=0,
    )
    t0 = time.perf_counter()
    try:
        run_eval(config, show_progress=False)
        print("nothing listening: the run did not stop (unexpected)")
    except EndpointUnreachableError:
        print(f"nothing listening: stopped after {time.perf_counter() - t0:.2f} s")

    for adaptive in (True, False):
        httpd, counts = one_slot_server(args.slot_s)
        config = EvalConfig(
            bench=str(bench),
            model="openai-compatible/m",
            out=str(tmp / f"slot-{adaptive}"),
            base_url=httpd.base_url,
            n_bootstrap=0,
            model_options={
                "concurrency": 8,
                "timeout_s": args.timeout_s,
                "max_retries": 12,
                "backoff_base_s": 0.01,
                "adaptive_concurrency": adaptive,
            },
        )
        t0 = time.perf_counter()
        result = run_eval(config, show_progress=False)
        wall = time.perf_counter() - t0
        time.sleep(args.slot_s * 10)  # let the server finish what it still holds
        httpd.close()
        print(
            f"one-slot server, concurrency 8, adaptive={adaptive}: {wall:.1f} s, "
            f"{result.errors} failed rows; the server processed {counts['processed']} "
            f"requests for {result.requested} tasks"
        )


if __name__ == "__main__":
    main()

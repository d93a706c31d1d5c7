"""LLM builder client throughput against a local chat-completions server with injected latency.

The scripted server of the tests (``tests/build_llm/conftest.py``) runs in its
own process and answers every request after ``--latency`` seconds. This
process makes ``--requests`` structured calls (render the prompt, POST, read
and validate the JSON with pydantic, cache the reply on disk, account usage)
through the builder's :class:`StructuredClient` at ``--concurrency``.

Prints:

* efficiency = (requests x latency / concurrency) / measured wall time, i.e.
  the share of the ideal, latency-bound throughput we reach (target >= 0.8);
* client CPU per request (this process only; the server's CPU is its own).

    python benchmarks/bench_llm_pipeline.py [--requests 2000] [--concurrency 64] [--latency 0.1]

The server is the tests' scripted server (same replies, same ``_respond``)
in its own process. By default it is served over asyncio, with keep-alive
connections and the latency as an ``asyncio.sleep``, as a real inference
server behaves; ``--threaded-server`` uses the tests' thread-per-connection
transport, whose own CPU (64 threads sleeping and parsing under the GIL)
competes with the client for the same two cores.

Measured on the 2-core dev box, 2,000 requests at concurrency 64:

* asyncio server: efficiency 0.86, 1.6 ms client CPU per request;
* threaded server: efficiency 0.62, 1.7 ms client CPU per request;
* before the client spread its requests over pools of ``POOL_SHARD`` (8)
  connections, one httpx pool of 64: efficiency 0.14 and ~11 ms client CPU
  per request (httpcore scans every connection for every queued request).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _start_server(
    latency: float, folder: Path, threaded: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    port_file = folder / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests/build_llm/conftest.py"),
            "--latency",
            str(latency),
            "--port-file",
            str(port_file),
            *(["--threaded"] if threaded else []),
        ],
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the scripted server did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}/v1"


async def _run(base_url: str, n: int, concurrency: int, cache: Path) -> tuple[float, float, int]:
    from behaviorsft.build.llm.client import StructuredClient
    from behaviorsft.build.llm.prompts import VERIFY
    from behaviorsft.models import load_model
    from behaviorsft.models.openai_compat import OpenAICompatModel

    model = load_model(
        "openai-compatible/scripted",
        base_url=base_url,
        cache_dir=cache,
        concurrency=concurrency,
        timeout_s=30.0,
    )
    assert isinstance(model, OpenAICompatModel)
    client = StructuredClient(model)
    options = "\n".join(f"{x}. option {x.lower()}" for x in "ABCDE")

    async def one(i: int) -> bool:
        res = await client.call(
            VERIFY,
            {
                "case_id": f"c{i}",
                "context": f"Turn {i}: the patient is stable.",
                "question": f"Question {i}?",
                "options": options,
            },
            key=f"bench-{i}",
            context={"letters": list("ABCDE")},
        )
        return res.ok

    # Warm-up (connections, imports) outside the timed part.
    await asyncio.gather(*(one(-1 - i) for i in range(concurrency)))
    cpu0, t0 = time.process_time(), time.perf_counter()
    oks = await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await model.aclose()
    model.close()
    return wall, cpu, sum(oks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--threaded-server",
        action="store_true",
        help="serve with the tests' thread-per-connection server instead of the asyncio one",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        proc, base_url = _start_server(args.latency, folder, args.threaded_server)
        try:
            wall, cpu, ok = asyncio.run(
                _run(base_url, args.requests, args.concurrency, folder / "cache")
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ideal = args.requests * args.latency / args.concurrency
    print(
        f"requests: {args.requests} ({ok} validated), concurrency {args.concurrency}, "
        f"server latency {args.latency * 1000:.0f} ms, "
        f"{'threaded' if args.threaded_server else 'asyncio'} scripted server"
    )
    print(f"wall: {wall:.2f} s (ideal {ideal:.2f} s)")
    print(f"efficiency: {ideal / wall:.2f} (target >= 0.8)")
    print(f"client CPU per request: {cpu / args.requests * 1000:.2f} ms")


if __name__ == "__main__":
    main()

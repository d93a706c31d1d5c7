"""Benchmark: CDS Hooks latency and throughput of `behaviorsft serve` on CPU.

Starts the real `behaviorsft serve` command (a tiny local hf/ model with the
behaviour tokens, SQLite audit, JWT checks on) on 127.0.0.1, then sends
order-sign calls at concurrency 1, 8 and 32 and prints p50/p99 latency and
throughput. The CDS Hooks spec asks services to answer within about 500 ms.

    python benchmarks/bench_serve.py                      # 48 calls per level
    python benchmarks/bench_serve.py --calls 200 --max-new-tokens 64

The tiny model is random, so every reply runs to --max-new-tokens: the figure
is an upper bound for that reply length, not a real model's speed. No
assertions: figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

SPEC_MS = 500.0


def _model(folder: Path, hidden: int) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.taxonomy import BEHAVIOR_TOKENS
    from behaviorsft.tiny import build_tiny_model

    path = build_tiny_model(folder / "model", hidden_size=hidden, num_layers=2)
    tok = AutoTokenizer.from_pretrained(path)
    tok.add_tokens(list(BEHAVIOR_TOKENS), special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _level(
    url: str, tokens: list[str], bodies: list[dict[str, Any]], conc: int
) -> dict[str, float]:
    import httpx

    sem = asyncio.Semaphore(conc)
    lat: list[float] = []

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=conc)) as client:

        async def one(token: str, body: dict[str, Any]) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
                lat.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*[one(t, b) for t, b in zip(tokens, bodies, strict=True)])
        wall = time.perf_counter() - t0
    return {
        "p50_ms": statistics.median(lat),
        "p99_ms": _pct(lat, 0.99),
        "calls_per_s": len(bodies) / wall,
    }


def _audit_latencies(db: Path) -> list[float]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT latency_ms FROM hook_calls ORDER BY id")]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=48, help="Calls per concurrency level.")
    parser.add_argument("--levels", default="1,8,32", help="Concurrency levels.")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="Reply length.")
    parser.add_argument("--hidden-size", type=int, default=64, help="Tiny model width.")
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="Server's torch threads (default: torch's)."
    )
    parser.add_argument("--no-jwt", action="store_true", help="Turn JWT checks off (compare).")
    args = parser.parse_args()

    import jwt
    import yaml
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.serve.conftest import hook_request

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = _model(tmp, args.hidden_size)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1"}
        (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        cfg = {
            "model": f"hf/{model}",
            "model_options": {"dtype": "float32", "device": "cpu"},
            "db": f"sqlite:///{tmp / 'audit.db'}",
            "service_url": base,
            "issuers": [{"iss": "https://ehr.bench", "jwks_file": str(tmp / "jwks.json")}],
            "hash_salt": "bench",
            "threshold": 0.5,
            "max_new_tokens": args.max_new_tokens,
            "require_jwt": not args.no_jwt,
        }
        if args.torch_threads is not None:
            cfg["torch_threads"] = args.torch_threads
        (tmp / "serve.yaml").write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "behaviorsft.cli",
                "serve",
                "--config",
                str(tmp / "serve.yaml"),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import httpx

            for _ in range(600):
                try:
                    if httpx.get(base + "/cds-services", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("server did not start")
            path = "/cds-services/order-sign-safety"
            now = int(time.time())

            def token() -> str:
                claims = {
                    "iss": "https://ehr.bench",
                    "aud": base + path,
                    "exp": now + 3600,
                    "iat": now,
                    "jti": str(uuid.uuid4()),
                }
                return jwt.encode(claims, key, algorithm="RS384", headers={"kid": "k1"})

            # Warm-up: first calls pay for lazy initialisation.
            warm = [hook_request() for _ in range(4)]
            asyncio.run(_level(base + path, [token() for _ in warm], warm, 2))
            print(
                f"bench_serve: tiny hf/ model (hidden {args.hidden_size}), "
                f"{args.max_new_tokens} new tokens, {args.calls} calls per level, "
                f"CPUs {os.cpu_count()}, torch threads {args.torch_threads or 'default'}, "
                f"JWT {'off' if args.no_jwt else 'on'}"
            )
            print(
                f"{'concurrency':>11} {'p50 ms':>9} {'p99 ms':>9} {'calls/s':>9}  vs 500 ms"
                "   (server-side p50/p99 ms: JWT to response built, from the audit)"
            )
            seen = _audit_latencies(tmp / "audit.db")
            for conc in (int(x) for x in args.levels.split(",")):
                bodies = [hook_request() for _ in range(args.calls)]
                tokens = [token() for _ in bodies]
                res = asyncio.run(_level(base + path, tokens, bodies, conc))
                verdict = "within" if res["p99_ms"] <= SPEC_MS else "OVER"
                server = _audit_latencies(tmp / "audit.db")[len(seen) :]
                seen += server
                print(
                    f"{conc:>11} {res['p50_ms']:>9.0f} {res['p99_ms']:>9.0f} "
                    f"{res['calls_per_s']:>9.1f}  p99 {verdict:<6}   "
                    f"({statistics.median(server):.0f}/{_pct(server, 0.99):.0f})"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

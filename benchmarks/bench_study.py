"""Benchmark: many raters saving validation answers at once through `behaviorsft study serve`.

For each database (SQLite always; PostgreSQL when a URL is given), it seeds a
validation study of --answers tasks for --raters raters (each with a one-time
sign-in link), starts the real `behaviorsft study serve` on 127.0.0.1, and
runs the raters from a separate load process (asyncio + httpx, one client
each, all at once). Each rater signs in with the link, opens the first task
from the home page and, task after task, fetches the page and posts
"Save & Next" with its answers, following the redirect to the next task as a
browser would; at the end it re-sends its first save (a double submit) to
check that saves are idempotent.

Afterwards the database is read back through `study export`: rows saved vs
expected, rows lost (missing or holding other values than the rater sent)
and rows duplicated (more than one row per rater and task), then p50/p99
latency of one save (the POST) and saves per second (all saves over the
load's wall time). No assertions: figures are printed; the exit code is 1 if
a row was lost or duplicated or a save failed.

    python benchmarks/bench_study.py                          # SQLite, 50 raters x 30
    python benchmarks/bench_study.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    BEHAVIORSFT_TEST_POSTGRES_URL=... python benchmarks/bench_study.py --raters 10 --answers 5

The PostgreSQL URL must let the user create databases: a fresh one is made
for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from tests.pg import ENV as PG_ENV  # noqa: E402
from tests.pg import scratch_database  # noqa: E402

CONFIDENCE = ("low", "moderate", "high")
PLAUSIBILITY = ("yes", "no", "unsure")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONTINUE = re.compile(r'href="(/a/\d+)" data-testid="continue-([^"]+)"')
ANSWERS = "ABC"  # every task offers at least these
_LETTERS = re.compile(r'name="answer" id="answer-([A-F])"')


def expected_answer(rater: int, position: int) -> dict[str, Any]:
    """What rater number ``rater`` answers on its ``position``-th task (deterministic)."""
    k = rater * 31 + position
    return {
        "answer": ANSWERS[k % len(ANSWERS)],
        "confidence": CONFIDENCE[k % 3],
        "proactivity": round((k % 21) * 0.05, 2),
        "plausibility": PLAUSIBILITY[(k // 3) % 3],
        "note": f"r{rater} p{position}",
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------- the load process


async def _rater(
    client: Any, base: str, index: int, token: str, study: str, resend: bool, out: dict[str, Any]
) -> None:
    """One rater's session; fills ``out`` with its save latencies (ms), saves and failures."""
    page = await client.get(f"{base}/signin/{token}")
    csrf = _CSRF.search(page.text)
    resp = await client.post(
        f"{base}/signin/{token}", data={"csrf_token": csrf.group(1) if csrf else ""}
    )
    if resp.status_code != 303:
        out["fail"].append(f"sign-in: HTTP {resp.status_code}")
        return
    home = await client.get(f"{base}/")
    links = {name: href for href, name in _CONTINUE.findall(home.text)}
    if study not in links:
        out["fail"].append(f"home page (HTTP {home.status_code}): no link to {study}")
        return
    url = f"{base}{links[study]}"
    first: tuple[str, dict[str, str]] | None = None
    position = 0
    while "/a/" in url:
        position += 1
        page = await client.get(url)
        csrf = _CSRF.search(page.text)
        letters = set(_LETTERS.findall(page.text))
        if page.status_code != 200 or not csrf or not set(ANSWERS) <= letters:
            out["fail"].append(f"{url}: HTTP {page.status_code}, options {sorted(letters)}")
            return
        values = expected_answer(index, position)
        form = {"csrf_token": csrf.group(1), "action": "next"}
        form.update({k: str(v) for k, v in values.items()})
        t0 = time.perf_counter()
        resp = await client.post(url, data=form)
        out["lat"].append((time.perf_counter() - t0) * 1000)
        out["saves"] += 1
        if resp.status_code != 303:
            out["fail"].append(f"save {url}: HTTP {resp.status_code}")
            return
        out["acked"].append(position)
        first = first or (url, form)
        url = f"{base}{resp.headers['location']}"
    if resend and first is not None:
        t0 = time.perf_counter()
        resp = await client.post(first[0], data=first[1])
        out["lat"].append((time.perf_counter() - t0) * 1000)
        out["saves"] += 1
        if resp.status_code != 303:
            out["fail"].append(f"re-sent save {first[0]}: HTTP {resp.status_code}")


async def _load(
    base: str, tokens: list[str], study: str, resend: bool, timeout_s: float
) -> dict[str, Any]:
    import httpx

    async def one(index: int, token: str) -> dict[str, Any]:
        out: dict[str, Any] = {"lat": [], "fail": [], "saves": 0, "acked": []}
        # One client (cookie jar, connection) per rater, as one browser each.
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            try:
                await _rater(client, base, index, token, study, resend, out)
            except httpx.HTTPError as exc:
                try:
                    where = f" on {exc.request.method} {exc.request.url.path}"
                except RuntimeError:
                    where = ""
                out["fail"].append(f"b{index}: {type(exc).__name__}{where} {exc}".rstrip())
        return out

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    return {"wall_s": time.perf_counter() - t0, "raters": results}


def load_process(
    base: str, tokens: list[str], study: str, resend: bool, timeout_s: float, queue: Any
) -> None:
    """Entry point of the load process: run every rater at once, put the results on ``queue``."""
    queue.put(asyncio.run(_load(base, tokens, study, resend, timeout_s)))


# ---------------------------------------------------------------- the server side


def _seed(db_url: str, bench: Path, raters: int, answers: int) -> list[str]:
    """Raters b0..bN with one-time links and a validation study of ``answers`` tasks."""
    from behaviorsft.study.create import create_validation
    from behaviorsft.study.db import open_db
    from behaviorsft.study.users import add_user

    engine = open_db(db_url)
    names = [f"b{i}" for i in range(raters)]
    tokens = []
    for name in names:
        _, token = add_user(engine, name)
        assert token is not None
        tokens.append(token)
    create_validation(engine, bench, n=answers, seed=0, raters=names, name="load")
    engine.dispose()
    return tokens


@contextmanager
def _server(db_url: str, port: int) -> Iterator[str]:
    """`behaviorsft study serve` on 127.0.0.1:port (a subprocess)."""
    import httpx

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "behaviorsft.cli", "study", "serve", "--db", db_url,
         "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"study serve exited with {proc.returncode}:\n{err}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("study serve did not answer /healthz in 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _check(db_url: str, out: Path, acked: set[tuple[str, int]]) -> dict[str, int]:
    """Read the answers back through the export; count saved, lost and duplicated rows.

    Lost: a save the server acknowledged (303) whose row is missing or holds
    other values than the rater sent.
    """
    from behaviorsft.records import StudyValidationAnswer
    from behaviorsft.store import load_records
    from behaviorsft.study.db import open_db
    from behaviorsft.study.export import export_study

    engine = open_db(db_url)
    export_study(engine, out, study="load")
    engine.dispose()
    rows = load_records(out / "validation.jsonl", StudyValidationAnswer).records
    per_key = Counter((r.rater, r.task_id) for r in rows)
    intact = set()
    for r in rows:
        want = expected_answer(int(r.rater.removeprefix("b")), r.position)
        if all(getattr(r, field) == value for field, value in want.items()):
            intact.add((r.rater, r.position))
    return {
        "saved": len(rows),
        "lost": len(acked - intact),
        "duplicated": sum(n - 1 for n in per_key.values()),
    }


def run_backend(label: str, db_url: str, bench: Path, args: argparse.Namespace, tmp: Path) -> bool:
    from tests.study.live import free_port

    t0 = time.perf_counter()
    tokens = _seed(db_url, bench, args.raters, args.answers)
    seeded_s = time.perf_counter() - t0
    with _server(db_url, free_port()) as base:
        queue: Any = mp.get_context("spawn").Queue()
        proc = mp.get_context("spawn").Process(
            target=load_process,
            args=(base, tokens, "load", not args.no_resend, args.request_timeout, queue),
        )
        proc.start()
        result = queue.get(timeout=args.timeout)
        proc.join(30)
    acked = {(f"b{i}", p) for i, r in enumerate(result["raters"]) for p in r.get("acked", [])}
    counts = _check(db_url, tmp / f"export-{label}", acked)
    lat = [x for r in result["raters"] for x in r["lat"]]
    saves = sum(r["saves"] for r in result["raters"])
    fails = [f for r in result["raters"] for f in r["fail"]]
    expected = args.raters * args.answers
    print(
        f"{label:<10} {expected:>8} {counts['saved']:>6} {counts['lost']:>5} "
        f"{counts['duplicated']:>5} "
        f"{saves:>6} {len(fails):>6} {statistics.median(lat) if lat else float('nan'):>8.1f} "
        f"{_pct(lat, 0.99) if lat else float('nan'):>8.1f} {saves / result['wall_s']:>8.1f} "
        f"{result['wall_s']:>7.1f}  (seeding {seeded_s:.1f} s)"
    )
    for f in fails[:10]:
        print(f"  failed: {f}")
    if len(fails) > 10:
        print(f"  ... and {len(fails) - 10} more failures")
    complete = counts["saved"] == expected
    return complete and not fails and counts["lost"] == 0 and counts["duplicated"] == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50, help="Concurrent raters.")
    parser.add_argument("--answers", type=int, default=30, help="Validation tasks per rater.")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(PG_ENV),
        help=f"A PostgreSQL server URL (default ${PG_ENV}); without it, SQLite only.",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only.")
    parser.add_argument("--no-resend", action="store_true", help="No double submit at the end.")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds the load may take.")
    parser.add_argument(
        "--request-timeout", type=float, default=60, help="Seconds one request may take."
    )
    args = parser.parse_args()

    from tests.study.helpers import build_bench

    with tempfile.TemporaryDirectory(prefix="bench-study-") as name:
        tmp = Path(name)
        # About 18 tasks per case: enough cases for --answers tasks.
        bench = build_bench(tmp, n_cases=max(3, args.answers // 6 + 1))
        print(
            f"bench_study: {args.raters} raters x {args.answers} validation saves (Save & Next), "
            f"{'plus one re-sent save each, ' if not args.no_resend else ''}"
            f"one study serve process, load from a separate process; CPUs {os.cpu_count()}"
        )
        print(
            f"{'database':<10} {'expected':>8} {'rows':>6} {'lost':>5} {'dup':>5} {'saves':>6} "
            f"{'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'saves/s':>8} {'wall s':>7}"
        )
        ok = True
        if not args.no_sqlite:
            ok &= run_backend("sqlite", f"sqlite:///{tmp / 'study.db'}", bench, args, tmp)
        if args.pg_url:
            with scratch_database(args.pg_url, "bsft_bench") as url:
                ok &= run_backend("postgresql", url, bench, args, tmp)
        elif args.no_sqlite:
            raise SystemExit(f"--no-sqlite needs --pg-url or ${PG_ENV}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

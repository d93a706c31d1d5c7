"""Training benchmark: adapter size for real model shapes, throughput on a tiny model.

1. **Adapter size** for Qwen2.5-7B and Llama-3.1-8B *shapes*, instantiated on
   PyTorch's meta device (no weights, no download): trainable parameters and
   bytes saved, for our adapter (LoRA r=8 on all linear layers + the behaviour
   tokens' rows via ``trainable_token_indices``) against the common
   alternative (the same LoRA + ``modules_to_save=[embed_tokens, lm_head]``),
   as a ratio.
2. **Throughput** on the tiny model: real (non-padding) tokens per second and
   peak memory for one epoch of BehaviorSFT training, padded batches vs
   padding-free vs packing (BFD), each in its own process so peak memory is
   its own. Padding-free is only used when the attention implementation
   really keeps the packed sequences apart: the benchmark checks that the
   loss of one batch is the same both ways before timing it.

Run: ``python benchmarks/bench_train.py`` (``--help`` for sizes). Prints the
figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.conftest.make_task_dict

SHAPES: dict[str, dict[str, Any]] = {
    # Published configs of the two backbones of the paper.
    "Qwen2.5-7B": {
        "arch": "qwen2",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,  # 151665 tokenizer entries + spare rows
        "tokenizer_len": 151665,
        "tie_word_embeddings": False,
    },
    "Llama-3.1-8B": {
        "arch": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,  # no spare rows: two new tokens force a resize
        "tokenizer_len": 128256,
        "tie_word_embeddings": False,
    },
}


def _meta_model(shape: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    kw = {k: v for k, v in shape.items() if k not in ("arch", "tokenizer_len")}
    config = Qwen2Config(**kw) if shape["arch"] == "qwen2" else LlamaConfig(**kw)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    new_ids = [shape["tokenizer_len"], shape["tokenizer_len"] + 1]
    if max(new_ids) >= shape["vocab_size"]:  # the resize policy of train/tokens.py
        model.resize_token_embeddings(shape["tokenizer_len"] + 2, mean_resizing=False)
    return model, new_ids


def _adapter_figures(peft_model: Any) -> tuple[int, int]:
    from peft import get_peft_model_state_dict

    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    size = sum(t.numel() * t.element_size() for t in state.values())
    return trainable, size


def adapter_sizes() -> None:
    """Part 1: print trainable parameters and adapter bytes, ours vs modules_to_save."""
    import warnings

    from peft import LoraConfig, get_peft_model

    from behaviorsft.train.lora import lora_config, wrap_model

    print("== Adapter size (meta-device shapes; LoRA r=8, alpha=32, all linear layers)")
    head = f"{'model':14s} {'approach':32s} {'trainable':>14s} {'adapter':>11s}"
    print(head)
    for name, shape in SHAPES.items():
        model, ids = _meta_model(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = wrap_model(model, lora_config(model, ids))
        t_ours, s_ours = _adapter_figures(ours)
        model, ids = _meta_model(shape)
        mts_cfg = LoraConfig(
            r=8,
            lora_alpha=32,
            target_modules="all-linear",
            modules_to_save=["embed_tokens", "lm_head"],
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mts = get_peft_model(model, mts_cfg)
        t_mts, s_mts = _adapter_figures(mts)
        for label, t, size in (
            ("trainable_token_indices (ours)", t_ours, s_ours),
            ("modules_to_save (whole matrices)", t_mts, s_mts),
        ):
            print(f"{name:14s} {label:32s} {t:14,d} {size / 1e6:8.1f} MB")
        print(
            f"{name:14s} {'ratio modules_to_save / ours':32s} {t_mts / t_ours:13.1f}x "
            f"{s_mts / s_ours:9.1f}x"
        )


# ---------------------------------------------------------------------------
# Part 2: throughput on the tiny model
# ---------------------------------------------------------------------------

# Padding-free concatenates a whole batch into one row; packing (BFD) fills
# rows of max_length with whole examples and is padding-free too, so one packed
# row per step is the comparable batch (with sdpa/eager the block-diagonal
# mask is dense, quadratic in the row length).
MODES: dict[str, dict[str, Any]] = {
    "padded": {},
    "padding_free": {"padding_free": True, "max_length": None},  # lengths checked beforehand
    "packing_bfd": {"packing": True, "packing_strategy": "bfd", "per_device_train_batch_size": 1},
}


def _bench_folder(root: Path, n_tasks: int, seed: int) -> Path:
    """Tasks with contexts of very different lengths, so padding matters."""
    from behaviorsft.records import Task
    from behaviorsft.store import write_jsonl
    from tests.conftest import make_task_dict

    rng = random.Random(seed)
    types = [("fact_retrieval", 0.1), ("explicit_error_correction", 0.9)]
    tasks = []
    for i in range(n_tasks):
        task_type, score = types[i % 2]
        sentences = " ".join(
            f"Day {d}: potassium {rng.randint(30, 70) / 10} mmol/L, heparin continued."
            for d in range(rng.randint(1, 30))
        )
        tasks.append(
            Task.model_validate(
                make_task_dict(
                    id=f"t{i:04d}",
                    task_type=task_type,
                    behavior_score=score,
                    context={"excerpt": sentences},
                    perturbation=None,
                    split="train",
                    answer=rng.choice("ABCD"),
                )
            )
        )
    write_jsonl(root / "tasks.jsonl", tasks)
    return root


def _worker(args: argparse.Namespace) -> None:
    """One configuration, in its own process: train one epoch, print JSON."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from behaviorsft.bench import load_bench
    from behaviorsft.train.data import prepare_split, to_dataset
    from behaviorsft.train.lora import lora_config, wrap_model
    from behaviorsft.train.tokens import add_behavior_tokens

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        args.model_dir, attn_implementation=args.attn_implementation
    )
    setup = add_behavior_tokens(model, tok)
    examples, _ = prepare_split(load_bench(args.bench_dir), "train", mode="behavior")
    peft_model = wrap_model(model, lora_config(model, setup.token_ids))
    kwargs: dict[str, Any] = {
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        **MODES[args.mode],
    }
    sft = SFTConfig(
        output_dir=args.out_dir,
        num_train_epochs=1,
        learning_rate=1e-4,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        gradient_checkpointing=False,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        **kwargs,
    )
    trainer = SFTTrainer(
        model=peft_model, processing_class=tok, args=sft, train_dataset=to_dataset(examples)
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated()
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        json.dumps(
            {
                "mode": args.mode,
                "seconds": seconds,
                "tokens": int(trainer.state.num_input_tokens_seen),
                "steps": trainer.state.global_step,
                "batch": kwargs["per_device_train_batch_size"],
                "peak_bytes": int(peak),
                "peak_kind": "cuda allocated" if torch.cuda.is_available() else "process RSS",
            }
        )
    )


def padding_free_is_exact(model_dir: str, bench_dir: str, attn: str, max_length: int) -> float:
    """Largest |log p| difference between a padded and a padding-free batch (0: exact).

    Padding-free concatenates the batch into one row and relies on the
    attention implementation to keep the sequences apart by their position
    ids (transformers builds a block-diagonal mask for sdpa/eager when there
    is no attention mask and no cache; flash-attention uses varlen kernels).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from behaviorsft.bench import load_bench
    from behaviorsft.train.data import prepare_split

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn).eval()
    examples, _ = prepare_split(load_bench(bench_dir), "train", mode="general")
    rows = []
    for ex in examples[:6]:
        prompt = tok.apply_chat_template(
            ex.prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"][:max_length]
        full = tok.apply_chat_template(ex.prompt + ex.completion, tokenize=True, return_dict=True)[
            "input_ids"
        ][:max_length]
        labels = [-100] * len(prompt) + full[len(prompt) :]
        rows.append({"input_ids": full, "labels": labels})
    per_token = []
    for padding_free in (False, True):
        batch = DataCollatorForLanguageModeling(
            pad_token_id=tok.pad_token_id, padding_free=padding_free
        )(rows)
        keep = ("input_ids", "attention_mask", "position_ids")
        with torch.no_grad():  # use_cache=False, as in training
            logits = model(**{k: v for k, v in batch.items() if k in keep}, use_cache=False).logits
        labels = batch["labels"][:, 1:]
        lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        mask = labels != -100
        per_token.append(lp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)[mask])
    return float((per_token[0] - per_token[1]).abs().max())


def throughput(args: argparse.Namespace) -> None:
    """Part 2: run each mode in a subprocess and print tokens/s and peak memory."""
    from behaviorsft.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = _bench_folder(root / "bench", args.tasks, seed=0)
        model_dir = build_tiny_model(
            root / "model", hidden_size=args.hidden, num_layers=args.layers, spare_rows=8
        )
        gap = padding_free_is_exact(
            str(model_dir), str(bench), args.attn_implementation, args.max_length
        )
        exact = gap < 1e-3
        print(
            f"\n== Throughput, tiny model (hidden {args.hidden}, {args.layers} layers, "
            f"attn {args.attn_implementation}), {args.tasks} tasks, batch {args.batch_size}, "
            f"1 epoch, {os.cpu_count()} CPU core(s) visible"
        )
        verdict = "sequences kept apart" if exact else "sequences LEAK into each other"
        print(f"padding-free vs padded, max |log p| difference on one batch: {gap:.1e} ({verdict})")
        results = {}
        for mode in MODES:
            if mode != "padded" and not exact:
                attn = args.attn_implementation
                print(f"{mode:13s} skipped: {attn} does not separate packed sequences")
                continue
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                mode,
                "--model-dir",
                str(model_dir),
                "--bench-dir",
                str(bench),
                "--out-dir",
                str(root / mode),
                "--batch-size",
                str(args.batch_size),
                "--max-length",
                str(args.max_length),
                "--attn-implementation",
                args.attn_implementation,
            ]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                print(f"{mode:13s} failed: {done.stderr[-800:]}")
                continue
            results[mode] = json.loads(lines[-1])
        base = results.get("padded")
        print(
            f"{'mode':13s} {'tokens/s':>10s} {'vs padded':>10s} {'batch':>6s} {'steps':>6s} "
            f"{'peak memory':>14s}"
        )
        for mode, r in results.items():
            rate = r["tokens"] / r["seconds"]
            ratio = rate / (base["tokens"] / base["seconds"]) if base else float("nan")
            print(
                f"{mode:13s} {rate:10.0f} {ratio:9.2f}x {r['batch']:6d} {r['steps']:6d} "
                f"{r['peak_bytes'] / 2**20:9.0f} MiB ({r['peak_kind']})"
            )


def main() -> None:
    """Parse arguments; run both parts (or one worker)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=256, help="tasks in the throughput bench")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=64, help="tiny model hidden size")
    p.add_argument("--layers", type=int, default=2, help="tiny model layers")
    p.add_argument("--attn-implementation", default="sdpa")
    p.add_argument("--skip-sizes", action="store_true", help="only the throughput part")
    p.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--bench-dir", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.mode = args.worker
        _worker(args)
        return
    if not args.skip_sizes:
        adapter_sizes()
    throughput(args)


if __name__ == "__main__":
    main()

"""Write a BENCH split as an lm-evaluation-harness task folder.

The folder is self-contained (YAML, JSONL data, a small loader module) and runs
with::

    lm_eval --model hf --model_args pretrained=MODEL --include_path DIR --tasks behaviorbench

Layout::

    DIR/
      behaviorbench.yaml                 group: every task type, plus overall numbers
      behaviorbench_<task_type>.yaml     one multiple_choice task per task type present
      behaviorbench_utils.py             loads the JSONL next to it; macro-F1 metric
      behaviorbench.jsonl                one document per task (the prompt, choices, gold)
      README.md, manifest.json

What lm-eval scores: each document's ``query`` is the full prompt, already
rendered, ending with the assistant prefix ``<answer>``; the choices are the
option letters with an empty target delimiter, so lm-eval compares
log P(letter | prompt) across letters: exactly the quantity our ``hf``
backend's choice scoring reads (and the runner's ``--scoring choice``).

The prompt is our zero-shot prompt (``prompts.build_messages``) rendered in one
of two ways, chosen at export time:

* ``chat_template_from=MODEL``: through MODEL's tokenizer chat template, so
  the text (special tokens included) is what ``hf/MODEL`` sees. Run lm_eval
  *without* ``--apply_chat_template``: the template is already applied.
* otherwise plain text: the system and user contents separated by blank
  lines, then a blank line and the prefix (the ``hf`` backend's rendering for
  a tokenizer without a chat template), for base models.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorsft.bench import Bench
from behaviorsft.models.hf import render_chat
from behaviorsft.records import ChatMessage, Task
from behaviorsft.store import FileInfo, new_manifest, write_manifest
from behaviorsft.taxonomy import TABLE_ORDER

TASK_NAME = "behaviorbench"
# The text the answer letter follows; the same as evaluate.runner.CHOICE_PREFIX
# and the zero-shot prompt's <answer>X</answer> format.
DEFAULT_PREFIX = "<answer>"
EXPORT_STRATEGIES = ("zero_shot", "explicit")
DOCS_FILE = f"{TASK_NAME}.jsonl"
UTILS_MODULE = f"{TASK_NAME}_utils"

_UTILS_SOURCE = '''"""Loader and metric for the exported BehaviorBench tasks (by behaviorsft)."""

import json
from pathlib import Path

import datasets

DOCS = Path(__file__).with_name("{docs}")


def load_docs(task_type=None, **_metadata):
    """Test documents of one task type (all when None), from the JSONL beside this file."""
    with DOCS.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if task_type is not None:
        rows = [r for r in rows if r["task_type"] == task_type]
    return {{"test": datasets.Dataset.from_list(rows)}}


def process_results(doc, results):
    """Accuracy, and (gold, predicted) letters for macro F1; results are (loglik, is_greedy)."""
    lls = [r[0] for r in results]
    pred = max(range(len(lls)), key=lls.__getitem__)
    letters = doc["choices"]
    return {{"acc": float(pred == doc["gold"]), "macro_f1": (letters[doc["gold"]], letters[pred])}}


def macro_f1(items):
    """Macro F1 over option letters (labels: every letter seen as gold or prediction)."""
    from sklearn.metrics import f1_score

    golds, preds = zip(*items)
    return float(f1_score(golds, preds, average="macro"))
'''


@dataclass
class LmEvalExport:
    """What :func:`export_lm_eval` wrote."""

    folder: Path
    n_docs: int
    task_types: list[str]
    rendering: str


def prompt_text(
    messages: Sequence[ChatMessage], *, tokenizer: Any | None, assistant_prefix: str
) -> str:
    """The document text: chat-template rendering when a tokenizer is given, else plain text."""
    if tokenizer is not None:
        return render_chat(tokenizer, messages, assistant_prefix)
    return "\n\n".join(m.content for m in messages) + "\n\n" + assistant_prefix


def lm_eval_doc(task: Task, text: str) -> dict[str, Any]:
    """One lm-eval document for ``task`` whose prompt is ``text``."""
    letters = [o.label for o in task.options]
    return {
        "id": task.id,
        "task_type": task.task_type.value,
        "category": task.category.value,
        "query": text,
        "choices": letters,
        "gold": letters.index(task.answer),
        "answer": task.answer,
    }


def _task_yaml(task_type: str) -> str:
    return "\n".join(
        [
            f"task: {TASK_NAME}_{task_type}",
            f"custom_dataset: !function {UTILS_MODULE}.load_docs",
            "dataset_kwargs:",
            f"  task_type: {task_type}",
            "test_split: test",
            "output_type: multiple_choice",
            "doc_to_text: query",
            "doc_to_choice: choices",
            "doc_to_target: gold",
            # The query already ends with the prefix; the letter follows it directly.
            'target_delimiter: ""',
            f"process_results: !function {UTILS_MODULE}.process_results",
            "metric_list:",
            "  - metric: acc",
            "    aggregation: mean",
            "    higher_is_better: true",
            "  - metric: macro_f1",
            f"    aggregation: !function {UTILS_MODULE}.macro_f1",
            "    higher_is_better: true",
            "metadata:",
            "  version: 1.0",
            "",
        ]
    )


def _group_yaml(task_types: Sequence[str]) -> str:
    lines = [f"group: {TASK_NAME}", "task:"]
    lines += [f"  - {TASK_NAME}_{t}" for t in task_types]
    lines += [
        "aggregate_metric_list:",
        "  # overall accuracy: every document counts once",
        "  - metric: acc",
        "    aggregation: mean",
        "    weight_by_size: true",
        "  # mean of the per-task-type macro F1s",
        "  - metric: macro_f1",
        "    aggregation: mean",
        "    weight_by_size: false",
        "metadata:",
        "  version: 1.0",
        "",
    ]
    return "\n".join(lines)


def _readme(n_docs: int, rendering: str, split: str) -> str:
    return f"""# BehaviorBench as an lm-evaluation-harness task

Written by `behaviorsft export-lm-eval`: {n_docs} tasks from the `{split}` split.
Prompt rendering: {rendering}.

    lm_eval --model hf --model_args pretrained=MODEL,dtype=float32 \\
        --include_path {{this folder}} --tasks {TASK_NAME} --batch_size 8

Do not add `--apply_chat_template`: each document's prompt is already complete and
ends with `{DEFAULT_PREFIX}`; lm-eval compares the log-likelihood of each option letter
as the next token (`target_delimiter` is empty).

Metrics: `acc` per task type and overall (weighted by size); `macro_f1` over option
letters per task type, and its unweighted mean over task types for the group.
"""


def _load_tokenizer(name: str) -> Any:
    """The tokenizer of a model folder or hub id; ValueError (one line) when it cannot load."""
    from transformers import AutoTokenizer

    from behaviorsft.models import check_model_folder, load_error_line

    path = check_model_folder(name, "--chat-template")
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        why = load_error_line(exc)
        raise ValueError(f"--chat-template {name}: cannot load its tokenizer ({why})") from None


def export_lm_eval(
    bench: Bench,
    out: str | os.PathLike[str],
    *,
    split: str = "test",
    chat_template_from: str | None = None,
    strategy: str = "zero_shot",
    assistant_prefix: str = DEFAULT_PREFIX,
    overwrite: bool = False,
) -> LmEvalExport:
    """Write ``bench``'s ``split`` as an lm-eval task folder at ``out``.

    ``chat_template_from`` names a model or tokenizer folder whose chat
    template renders the prompts (see the module docstring).
    """
    from behaviorsft.prompts import build_messages

    if strategy not in EXPORT_STRATEGIES:
        raise ValueError(
            f"strategy {strategy!r}: the lm-eval export scores one letter right after the "
            f"prompt, which fits {', '.join(EXPORT_STRATEGIES)}"
        )
    tasks = bench.split(split)
    if not tasks:
        counts = Counter(t.split.value if t.split else "none" for t in bench.tasks)
        raise ValueError(f"{bench.path}: no tasks in split {split!r} (splits: {dict(counts)})")
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder}: not empty; pass --overwrite to replace it")

    # The tokenizer is loaded before the old export is replaced: a wrong name keeps it.
    tokenizer = None
    rendering = "plain text (no chat template)"
    if chat_template_from is not None:
        tokenizer = _load_tokenizer(chat_template_from)
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"{chat_template_from}: the tokenizer has no chat template; "
                "export without --chat-template for a plain-text prompt"
            )
        rendering = f"chat template of {chat_template_from}"
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)

    docs = []
    for task in tasks:
        messages = build_messages(task, bench.context_text(task), strategy)
        text = prompt_text(messages, tokenizer=tokenizer, assistant_prefix=assistant_prefix)
        docs.append(lm_eval_doc(task, text))
    with (folder / DOCS_FILE).open("w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")

    present = {d["task_type"] for d in docs}
    task_types = [t.value for t in TABLE_ORDER if t.value in present]
    for t in task_types:
        (folder / f"{TASK_NAME}_{t}.yaml").write_text(_task_yaml(t), encoding="utf-8")
    (folder / f"{TASK_NAME}.yaml").write_text(_group_yaml(task_types), encoding="utf-8")
    (folder / f"{UTILS_MODULE}.py").write_text(
        _UTILS_SOURCE.format(docs=DOCS_FILE), encoding="utf-8"
    )
    (folder / "README.md").write_text(_readme(len(docs), rendering, split), encoding="utf-8")
    manifest = new_manifest(
        "export-lm-eval",
        config={
            "bench": str(bench.path),
            "split": split,
            "strategy": strategy,
            "assistant_prefix": assistant_prefix,
            "chat_template_from": chat_template_from,
        },
        counts={t: sum(d["task_type"] == t for d in docs) for t in task_types},
        notes=[f"prompt rendering: {rendering}"],
    )
    manifest.files[DOCS_FILE] = FileInfo(record_type="lm_eval_doc", count=len(docs))
    write_manifest(folder, manifest)
    return LmEvalExport(folder=folder, n_docs=len(docs), task_types=task_types, rendering=rendering)

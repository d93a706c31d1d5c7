"""SFT examples: the harness's prompt, the BehaviorSFT target, and bad data reported by reason."""

from __future__ import annotations

import json
import random

import pytest
from transformers import AutoTokenizer

from behaviorsft.bench import load_bench
from behaviorsft.prompts import behaviorsft_target, build_messages
from behaviorsft.train.data import (
    BAD_DATA_REASONS,
    BadDataError,
    apply_policy,
    check_target,
    prepare_split,
    write_sft_data,
)
from behaviorsft.train.tokens import add_tokens_to_tokenizer
from tests.train.conftest import synthetic_task, write_bench


def test_prompt_is_the_harness_behaviorsft_prompt(small_bench):
    bench = load_bench(small_bench)
    examples, report = prepare_split(bench, "train", mode="behavior")
    assert report.kept == report.total == len(examples) > 0
    by_id = {t.id: t for t in bench.tasks}
    for ex in examples:
        task = by_id[ex.id]
        expected = build_messages(task, bench.context_text(task), "behaviorsft")
        assert ex.prompt == [{"role": m.role, "content": m.content} for m in expected]
        assert ex.completion == [
            {"role": "assistant", "content": behaviorsft_target(task, mode="behavior")}
        ]
        assert ex.target.startswith(task.behavior_token + " ")
        assert ex.target.endswith(f"<answer>{task.answer}</answer>")
        assert ex.token == task.behavior_token


def test_general_mode_drops_the_token(small_bench):
    bench = load_bench(small_bench)
    behavior, _ = prepare_split(bench, "train", mode="behavior")
    general, report = prepare_split(bench, "train", mode="general")
    assert report.tokens == {}
    by_id = {t.id: t for t in bench.tasks}
    for b, g in zip(behavior, general, strict=True):
        task = by_id[g.id]
        # No behavioural guidance anywhere: the prompt does not ask for a token either.
        expected = build_messages(task, bench.context_text(task), "general_sft")
        assert g.prompt == [{"role": m.role, "content": m.content} for m in expected]
        assert "<reactive>" not in g.prompt[-1]["content"]
        assert b.prompt[:-1] == g.prompt[:-1]  # same system message
        assert g.token is None
        assert b.target == f"{b.token} {g.target}"


def test_fine_inventory_uses_the_label_tokens(small_bench):
    bench = load_bench(small_bench)
    examples, report = prepare_split(bench, "train", mode="behavior", inventory="fine")
    assert {e.token for e in examples} <= {
        "<highly_reactive>",
        "<balanced>",
        "<primarily_proactive>",
        "<highly_proactive>",
    }
    assert sum(report.tokens.values()) == len(examples)
    # The prompt names the tokens the model is trained to emit, not the binary pair.
    instruction = examples[0].prompt[-1]["content"]
    assert "<highly_reactive>" in instruction and "<primarily_proactive>" in instruction
    assert "<proactive>" not in instruction


@pytest.mark.parametrize(
    ("target", "rationale", "mode", "inventory", "reason"),
    [
        ("<proactive> Flag it. <answer>B</answer>", "Flag it.", "behavior", "binary", None),
        ("Flag it. <answer>B</answer>", "Flag it.", "general", "binary", None),
        ("", "x", "behavior", "binary", "empty_completion"),
        ("<proactive> <answer>B</answer>", "", "behavior", "binary", "empty_rationale"),
        ("Flag it. <answer>B</answer>", "Flag it.", "behavior", "binary", "missing_token"),
        ("Flag <proactive> <answer>B</answer>", "Flag", "behavior", "binary", "missing_token"),
        ("<balanced> Hm. <answer>B</answer>", "Hm.", "behavior", "binary", "unknown_token"),
        ("<proactive> Hm. <answer>B</answer>", "Hm.", "behavior", "fine", "unknown_token"),
        ("<reactive> a <proactive> b", "a <proactive> b", "behavior", "binary", "stray_token"),
        ("<reactive> Hm. <answer>B</answer>", "Hm.", "general", "binary", "stray_token"),
    ],
)
def test_check_target(target, rationale, mode, inventory, reason):
    assert check_target(target, rationale, mode, inventory) == reason
    assert reason is None or reason in BAD_DATA_REASONS


@pytest.fixture
def messy_bench(tmp_path):
    rng = random.Random(1)
    extra = [
        synthetic_task(90, "fact_retrieval", "train", rng)
        | {"id": "no-rationale", "rationale": ""},
        synthetic_task(91, "omission_detection", "train", rng)
        | {"id": "huge", "context": {"excerpt": "potassium 5.1 " * 400}},
    ]
    return write_bench(tmp_path / "bench", {"train": 2, "val": 1}, extra=extra)


def test_bad_data_is_counted_by_reason_before_training(messy_bench, tiny_models):
    tok = AutoTokenizer.from_pretrained(tiny_models["tied"])
    add_tokens_to_tokenizer(tok)
    bench = load_bench(messy_bench)
    # max_length between a normal example (~200 tokens) and the huge prompt.
    examples, report = prepare_split(bench, "train", mode="behavior", tokenizer=tok, max_length=400)
    assert report.total == 2 * 6 + 2
    assert report.counts() == {"empty_rationale": 1, "prompt_too_long": 1}
    assert {p.id for p in report.problems} == {"no-rationale", "huge"}
    assert report.kept == len(examples) == 12
    assert "huge" not in {e.id for e in examples}
    text = report.summary()
    assert "2 bad" in text and "prompt_too_long" in text and "empty_rationale" in text
    # A limit that cuts into every completion but not the prompts.
    _, short = prepare_split(
        bench, "train", mode="behavior", tokenizer=tok, max_length=report.longest - 1
    )
    assert short.counts().get("completion_truncated", 0) >= 1


def test_policy_error_stops_and_drop_does_not(messy_bench):
    bench = load_bench(messy_bench)
    _, report = prepare_split(bench, "train", mode="behavior")
    apply_policy([report], "drop")  # nothing raised
    with pytest.raises(BadDataError, match=r"(?s)empty_rationale.*bad_data: drop") as err:
        apply_policy([report], "error")
    assert err.value.reports[0].counts() == {"empty_rationale": 1}


def test_write_sft_data(tmp_path, small_bench):
    bench = load_bench(small_bench)
    ex, rep = prepare_split(bench, "val", mode="behavior")
    paths = write_sft_data(tmp_path, {"val": ex}, [rep])
    rows = [json.loads(line) for line in (tmp_path / "val.jsonl").read_text().splitlines()]
    assert len(rows) == len(ex)
    assert rows[0]["prompt"][0]["role"] == "system"
    assert rows[0]["completion"][0]["role"] == "assistant"
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["val"]["kept"] == len(ex)
    assert tmp_path / "data_report.json" in paths

"""The lm-evaluation-harness export: files, prompt text, CLI, and a real lm-eval run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.cli_models import register
from behaviorsft.exit_codes import ExitCode
from behaviorsft.export.lm_eval import DEFAULT_PREFIX, DOCS_FILE, export_lm_eval
from behaviorsft.models import load_model
from behaviorsft.models.base import ChoiceRequest
from behaviorsft.models.hf import HFModel
from behaviorsft.prompts import build_messages, letters_of
from behaviorsft.records import Conversation, Task
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TaskType
from behaviorsft.tiny import build_tiny_model
from tests.conftest import make_task_dict

TYPES = list(TaskType)


def write_small_bench(folder: Path, n: int = 16) -> Path:
    """``n`` tasks over several types, 4-6 options, answers spread over letters; 3/4 in test."""
    tasks, convs = [], []
    for c in range(4):
        turns = [
            {"index": k, "speaker": f"Dr. {k}", "role": "attending", "text": f"Case {c} note {k}."}
            for k in range(5)
        ]
        convs.append(Conversation.model_validate({"case_id": f"c{c}", "turns": turns}))
    for i in range(n):
        letters = "ABCDEF"[: 4 + i % 3]
        options = [{"label": x, "text": f"Option {x} of task {i}."} for x in letters]
        tasks.append(
            Task.model_validate(
                make_task_dict(
                    id=f"t{i:03d}",
                    case_id=f"c{i % 4}",
                    task_type=TYPES[i % len(TYPES)].value,
                    options=options,
                    answer=letters[(i * 7) % len(letters)],
                    option_permutation=None,
                    context={"turn_start": 1, "turn_end": 3},
                    split="train" if i % 4 == 0 else "test",
                )
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "tasks.jsonl", tasks)
    write_jsonl(folder / "conversations.jsonl", convs)
    return folder


class _TagLoader(yaml.SafeLoader):
    """Reads lm-eval YAML, keeping `!function x.y` as the string 'x.y'."""


_TagLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", hidden_size=32, num_layers=2)


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return write_small_bench(tmp_path / "bench")


def _docs(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / DOCS_FILE).read_text().splitlines()]


def test_export_writes_a_task_folder_with_chat_rendered_prompts(
    bench: Path, tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lm"
    res = export_lm_eval(load_bench(bench), out, chat_template_from=str(tiny))
    b = load_bench(bench)
    test_tasks = b.split("test")
    assert res.n_docs == len(test_tasks) == 12
    docs = _docs(out)
    model = load_model(f"hf/{tiny}")
    assert isinstance(model, HFModel)
    for task, doc in zip(test_tasks, docs, strict=True):
        msgs = build_messages(task, b.context_text(task), "zero_shot")
        assert doc["query"] == model.render(msgs, DEFAULT_PREFIX)
        assert doc["query"].startswith("<|im_start|>system\n") and doc["query"].endswith(
            "<|im_start|>assistant\n<answer>"
        )
        assert doc["choices"] == list(letters_of(task))
        assert doc["choices"][doc["gold"]] == task.answer
    group = yaml.load((out / "behaviorbench.yaml").read_text(), Loader=_TagLoader)
    assert group["group"] == "behaviorbench"
    assert sorted(group["task"]) == sorted(f"behaviorbench_{t}" for t in res.task_types)
    sub = yaml.load(
        (out / f"behaviorbench_{res.task_types[0]}.yaml").read_text(), Loader=_TagLoader
    )
    assert sub["output_type"] == "multiple_choice" and sub["target_delimiter"] == ""
    assert sub["custom_dataset"] == "behaviorbench_utils.load_docs"
    assert sub["dataset_kwargs"] == {"task_type": res.task_types[0]}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"][DOCS_FILE]["count"] == 12


def test_plain_export_and_errors(bench: Path, tmp_path: Path) -> None:
    b = load_bench(bench)
    out = tmp_path / "plain"
    export_lm_eval(b, out, split="train")
    docs = _docs(out)
    assert len(docs) == 4
    task = b.split("train")[0]
    msgs = build_messages(task, b.context_text(task), "zero_shot")
    assert docs[0]["query"] == "\n\n".join(m.content for m in msgs) + "\n\n<answer>"
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_lm_eval(b, out)
    export_lm_eval(b, out, overwrite=True)
    assert len(_docs(out)) == 12
    with pytest.raises(ValueError, match="no tasks in split 'val'"):
        export_lm_eval(b, tmp_path / "val", split="val")
    with pytest.raises(ValueError, match="zero_shot, explicit"):
        export_lm_eval(b, tmp_path / "cot", strategy="cot")


def test_cli_export_command(bench: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def _unused() -> None:  # a second command keeps typer in multi-command mode
        pass

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["export-lm-eval", "--bench", str(bench), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote 12 tasks" in res.output and "--include_path" in res.output
    assert (out / "behaviorbench.yaml").exists()
    again = runner.invoke(app, ["export-lm-eval", "--bench", str(bench), "--out", str(out)])
    assert again.exit_code == ExitCode.INPUT_ERROR and "--overwrite" in again.output


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--split", "foo"], "train, val, test, all"),
        (["--chat-template", "./no-such-model", "--overwrite"], "no-such-model: no such folder"),
        (["--strategy", "cot"], "zero_shot, explicit"),
    ],
    ids=["split", "chat-template", "strategy"],
)
def test_cli_export_input_errors_exit_2_and_keep_the_old_export(
    bench: Path, tmp_path: Path, extra: list[str], says: str
) -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def _unused() -> None:
        pass

    out = tmp_path / "cli"
    export_lm_eval(load_bench(bench), out)
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    res = CliRunner().invoke(
        app, ["export-lm-eval", "--bench", str(bench), "--out", str(out), *extra]
    )
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert says in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before


@pytest.mark.slow
def test_lm_eval_runs_the_export_and_agrees_with_choice_scoring(
    bench: Path, tiny: Path, tmp_path: Path
) -> None:
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    out = tmp_path / "lm"
    export_lm_eval(load_bench(bench), out, chat_template_from=str(tiny))
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny), "dtype": "float32", "device": "cpu"},
        tasks=["behaviorbench"],
        task_manager=TaskManager(include_path=str(out)),
        batch_size=4,
        log_samples=True,
        bootstrap_iters=0,
    )
    assert results is not None
    theirs: dict[str, str] = {}
    for samples in results["samples"].values():
        for s in samples:
            lls = [r[0] for r in s["filtered_resps"]]
            theirs[s["doc"]["id"]] = s["doc"]["choices"][max(range(len(lls)), key=lls.__getitem__)]
    b = load_bench(bench)
    tasks = b.split("test")
    assert set(theirs) == {t.id for t in tasks}
    model = load_model(f"hf/{tiny}")
    ours = model.score_choices(
        [
            ChoiceRequest(
                messages=tuple(build_messages(t, b.context_text(t), "zero_shot")),
                letters=letters_of(t),
                assistant_prefix=DEFAULT_PREFIX,
            )
            for t in tasks
        ]
    )
    assert [s.best for s in ours] == [theirs[t.id] for t in tasks]
    acc = sum(s.best == t.answer for s, t in zip(ours, tasks, strict=True)) / len(tasks)
    assert results["results"]["behaviorbench"]["acc,none"] == pytest.approx(acc)
    assert "macro_f1,none" in results["results"]["behaviorbench"]


def test_prefix_matches_the_runner() -> None:
    runner = pytest.importorskip("behaviorsft.evaluate.runner")
    assert runner.CHOICE_PREFIX == DEFAULT_PREFIX

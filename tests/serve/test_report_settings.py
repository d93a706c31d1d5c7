"""The audit dashboard's numbers (checked by hand), settings errors, and the missing extra."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.serve.report import CallRow, FeedbackRow, summarise, to_markdown
from behaviorsft.serve.settings import load_settings


def _t(minute: int) -> datetime:
    return datetime(2026, 12, 7, 8, minute, tzinfo=timezone.utc)


def test_summary_counts_by_hand() -> None:
    calls = [
        CallRow("order-sign-safety", "2026-12-06", "a" * 64, "card", "warning", "c1", 0.8, 100),
        CallRow("order-sign-safety", "2026-12-07", "a" * 64, "card", "critical", "c2", 0.95, 300),
        CallRow("order-sign-safety", "2026-12-07", "b" * 64, "restraint", None, None, 0.1, 200),
        CallRow("patient-view-proactive", "2026-12-07", "b" * 64, "card", "warning", "c3", 0.7, 50),
        CallRow("patient-view-proactive", "2026-12-07", "b" * 64, "error", None, None, None, 10),
    ]
    feedback = [
        # c1: overridden, then accepted later: the latest outcome counts.
        FeedbackRow("c1", "overridden", "not-relevant", "Not relevant to this patient", _t(0)),
        FeedbackRow("c1", "accepted", None, None, _t(5)),
        FeedbackRow("c2", "overridden", "too-many-alerts", "Too many alerts", _t(1)),
        # c3: no feedback
    ]
    s = summarise(calls, feedback)
    assert (s["calls"], s["cards"], s["restraint"], s["errors"]) == (5, 3, 1, 1)
    assert s["card_rate"] == 0.6
    assert s["feedback"] == {
        "cards": 3,
        "with_feedback": 2,
        "no_feedback": 1,
        "accepted": 1,
        "overridden": 1,
        "acceptance_rate": 0.5,
        "override_rate": 0.5,
    }
    assert s["override_reasons"] == {"too-many-alerts (Too many alerts)": 1}
    assert s["by_indicator"]["warning"]["cards"] == 2
    assert s["by_indicator"]["warning"]["accepted"] == 1
    assert s["by_indicator"]["warning"]["no_feedback"] == 1
    assert s["by_indicator"]["critical"]["override_rate"] == 1.0
    assert s["by_indicator"]["info"]["acceptance_rate"] is None
    assert s["by_service"]["order-sign-safety"]["calls"] == 3
    assert s["by_service"]["order-sign-safety"]["restraint"] == 1
    assert s["by_service"]["patient-view-proactive"]["cards"] == 1
    assert s["cards_per_day"] == {
        "2026-12-06": {"calls": 1, "cards": 1},
        "2026-12-07": {"calls": 4, "cards": 2},
    }
    per = s["cards_per_patient"]
    assert per["patients"] == 2 and per["mean"] == 1.5 and per["max"] == 2
    assert "| critical | 1 | 1 | 0 | 1 | 0.0% | 100.0% |" in to_markdown(s)


def test_empty_audit() -> None:
    s = summarise([], [])
    assert s["calls"] == 0 and s["card_rate"] is None and s["feedback"]["override_rate"] is None
    assert "Hook calls: 0" in to_markdown(s)


def test_settings_errors_name_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("threshold: 1.5\n")
    with pytest.raises(ValueError, match=r"serve.yaml: threshold"):
        load_settings(cfg)
    cfg.write_text("services:\n  nope: {threshold: 0.2}\n")
    with pytest.raises(ValueError, match="unknown service"):
        load_settings(cfg)
    cfg.write_text("issuers:\n  - iss: https://ehr\n")
    with pytest.raises(ValueError, match="jwks_file and jwks_url"):
        load_settings(cfg)
    cfg.write_text("indicator_tiers: {warning: 0.9, critical: 0.5}\n")
    with pytest.raises(ValueError, match="warning must be <= critical"):
        load_settings(cfg)
    cfg.write_text("threshold: 0.3\nservices:\n  order-sign-safety: {threshold: 0.8}\n")
    s = load_settings(cfg, threshold=0.4)  # the command line wins over the file
    assert s.threshold_for("patient-view-proactive") == 0.4
    assert s.threshold_for("order-sign-safety") == 0.8
    with pytest.raises(ValueError, match="BEHAVIORSFT_SERVE_SALT"):
        s.salt()


def test_serve_without_the_web_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    result = CliRunner().invoke(app, ["serve", "--model", "hf/x"])
    assert result.exit_code == 2
    assert "pip install 'behaviorsft[web]'" in result.output
    result = CliRunner().invoke(app, ["serve", "audit", "--db", "sqlite:///x", "--out", "o"])
    assert result.exit_code == 2 and "fastapi" in result.output


def test_serve_refuses_to_start_without_issuers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEHAVIORSFT_SERVE_SALT", "s")
    result = CliRunner().invoke(
        app, ["serve", "--model", "hf/./nope", "--db", f"sqlite:///{tmp_path}/a.db"]
    )
    assert result.exit_code == 2
    assert "no such folder" in result.output
    (tmp_path / "m").mkdir()
    result = CliRunner().invoke(app, ["serve", "--model", f"hf/{tmp_path / 'm'}"])
    assert result.exit_code == 2 and "no issuers configured" in result.output


def test_the_core_cli_does_not_import_the_web_stack() -> None:
    import subprocess

    code = (
        "import sys, behaviorsft.cli; "
        "bad = [m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'jwt') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

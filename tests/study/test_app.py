"""The study web app at the HTTP level: sign-in, blinding, CSRF, ownership, saving."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from behaviorsft.study.app import create_app
from behaviorsft.study.db import (
    Assignment,
    ComparisonAnswer,
    Study,
    User,
    ValidationAnswer,
    open_db,
)
from behaviorsft.study.users import add_user
from tests.study.helpers import (
    PASSWORD,
    RUN_NAMES,
    SCRIPT,
    SCRIPT_RATER,
    SeededStudy,
    csrf_of,
    seed_study,
    sign_in,
)


def _client(seeded: SeededStudy, **kwargs: object) -> TestClient:
    return TestClient(create_app(seeded.db_url, secret="test-secret", **kwargs))  # type: ignore[arg-type]


def _queue(db_url: str, rater: str, kind: str) -> list[int]:
    engine = open_db(db_url)
    with Session(engine) as s:
        ids = list(
            s.scalars(
                select(Assignment.id)
                .join(User, User.id == Assignment.user_id)
                .join(Study, Study.id == Assignment.study_id)
                .where(User.name == rater, Study.kind == kind)
                .order_by(Assignment.position)
            )
        )
    engine.dispose()
    return ids


def _validation_row(db_url: str, assignment_id: int) -> ValidationAnswer | None:
    engine = open_db(db_url)
    with Session(engine) as s:
        row = s.get(ValidationAnswer, assignment_id)
        if row is not None:
            s.expunge(row)
    engine.dispose()
    return row


def _option_letters(html: str) -> list[str]:
    return re.findall(r'name="answer" id="answer-([A-F])"', html)


# ---------------------------------------------------------------- sign-in


def test_password_sign_in_sets_a_hardened_cookie(seeded: SeededStudy) -> None:
    client = _client(seeded)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login")
    resp = client.post(
        "/login",
        data={"name": "r1", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert "bsft_study=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/")
    assert 'data-testid="whoami">r1<' in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]


def test_wrong_password_is_refused(seeded: SeededStudy) -> None:
    client = _client(seeded)
    page = client.get("/login")
    resp = client.post(
        "/login",
        data={"name": "r1", "password": "wrong password", "csrf_token": csrf_of(page.text)},
    )
    assert resp.status_code == 401
    assert "Wrong name or password" in resp.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_rate_limit(seeded: SeededStudy) -> None:
    client = _client(seeded, login_attempts=3, login_window_s=600)
    for _ in range(3):
        page = client.get("/login")
        bad = {"name": "r1", "password": "nope-nope", "csrf_token": csrf_of(page.text)}
        assert client.post("/login", data=bad).status_code == 401
    page = client.get("/login")
    good = {"name": "r1", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    resp = client.post("/login", data=good, follow_redirects=False)
    # Even the right password waits: guesses cannot be mixed with a known one.
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 0
    # Another name from the same address is limited too (per-client count).
    page = client.get("/login")
    other = {"name": "r2", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    assert client.post("/login", data=other, follow_redirects=False).status_code == 429


def test_login_without_csrf_is_403(seeded: SeededStudy) -> None:
    client = _client(seeded)
    client.get("/login")
    resp = client.post("/login", data={"name": "r1", "password": PASSWORD})
    assert resp.status_code == 403


def test_one_time_link_signs_in_once(seeded: SeededStudy) -> None:
    client = _client(seeded)
    token = seeded.tokens["r2"]
    # Opening the link (GET), as a mail scanner would, does not use it up.
    for _ in range(2):
        page = client.get(f"/signin/{token}")
        assert page.status_code == 200 and 'data-testid="signin-submit"' in page.text
    resp = client.post(
        f"/signin/{token}", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert resp.status_code == 303
    assert 'data-testid="whoami">r2<' in client.get("/").text
    other = TestClient(client.app)
    again = other.get(f"/signin/{token}")
    assert again.status_code == 404 and 'data-testid="signin-invalid"' in again.text
    assert other.post(f"/signin/{token}", data={"csrf_token": "x"}).status_code == 403
    pre = csrf_of(other.get("/login").text)
    assert other.post(f"/signin/{token}", data={"csrf_token": pre}).status_code == 404


def test_forged_or_foreign_cookie_is_not_a_session(seeded: SeededStudy) -> None:
    client = _client(seeded)
    sign_in(client, "r1")
    cookie = client.cookies.get("bsft_study")
    assert cookie
    stranger = TestClient(create_app(seeded.db_url, secret="another-secret"))
    stranger.cookies.set("bsft_study", cookie)
    assert stranger.get("/", follow_redirects=False).status_code == 303  # to /login
    tampered = TestClient(client.app)
    tampered.cookies.set("bsft_study", cookie[:-3] + "abc")
    assert tampered.get("/", follow_redirects=False).status_code == 303


def test_secret_is_generated_once_and_kept(
    seeded: SeededStudy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEHAVIORSFT_STUDY_SECRET", raising=False)
    first = TestClient(create_app(seeded.db_url))
    sign_in(first, "r1")
    second = TestClient(create_app(seeded.db_url))  # a restart
    second.cookies.set("bsft_study", first.cookies.get("bsft_study") or "")
    assert 'data-testid="whoami">r1<' in second.get("/").text


# ---------------------------------------------------------------- ownership and CSRF


def test_a_rater_cannot_read_or_write_another_raters_task(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    theirs = _queue(seeded.db_url, "r2", "validation")[0]
    page = client.get(f"/a/{theirs}")
    assert page.status_code == 403
    resp = client.post(f"/a/{theirs}", data={"csrf_token": csrf, "answer": "A", "action": "save"})
    assert resp.status_code == 403
    assert _validation_row(seeded.db_url, theirs) is None
    comp = _queue(seeded.db_url, "r3", "comparison")[0]
    assert client.get(f"/a/{comp}").status_code == 403
    assert client.post(f"/a/{comp}", data={"csrf_token": csrf}).status_code == 403
    assert client.get("/a/999999").status_code == 404


def test_pages_need_a_session(seeded: SeededStudy) -> None:
    client = _client(seeded)
    mine = _queue(seeded.db_url, "r1", "validation")[0]
    assert client.get(f"/a/{mine}", follow_redirects=False).status_code == 303
    assert client.post(f"/a/{mine}", data={"answer": "A"}).status_code == 403
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_post_without_or_with_a_wrong_csrf_token_is_403(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    mine = _queue(seeded.db_url, "r1", "validation")[0]
    assert client.post(f"/a/{mine}", data={"answer": "A"}).status_code == 403
    assert (
        client.post(f"/a/{mine}", data={"answer": "A", "csrf_token": "forged"}).status_code == 403
    )
    assert client.post("/logout", data={}).status_code == 403
    assert _validation_row(seeded.db_url, mine) is None
    # The header form of the token works (htmx can send it that way).
    ok = client.post(
        f"/a/{mine}", data={"answer": "A"}, headers={"X-CSRF-Token": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303


def test_admin_page_is_for_admins_only(seeded: SeededStudy) -> None:
    rater = _client(seeded)
    sign_in(rater, "r1")
    assert rater.get("/admin").status_code == 403
    assert 'data-testid="admin-link"' not in rater.get("/").text
    admin = _client(seeded)
    sign_in(admin, "admin")
    page = admin.get("/admin")
    assert page.status_code == 200
    for name in ("r1", "r2", "r3"):
        assert f'data-testid="admin-validation-{name}"' in page.text
        assert f'data-testid="admin-comparison-{name}"' in page.text


# ---------------------------------------------------------------- blinding and escaping


def _rater_pages(client: TestClient, db_url: str, rater: str) -> list[str]:
    texts = [client.get("/").text, client.get("/login").text]
    for kind in ("validation", "comparison"):
        for aid in _queue(db_url, rater, kind):
            texts.append(client.get(f"/a/{aid}").text)
    return texts


def test_no_run_name_or_other_raters_answer_reaches_a_rater(seeded: SeededStudy) -> None:
    other = _client(seeded)
    csrf2 = sign_in(other, "r2")
    secret_note = "r2-private-note-5f3a"
    for aid in _queue(seeded.db_url, "r2", "validation"):
        other.post(f"/a/{aid}", data={"csrf_token": csrf2, "note": secret_note, "action": "save"})
    for aid in _queue(seeded.db_url, "r2", "comparison"):
        other.post(f"/a/{aid}", data={"csrf_token": csrf2, "unsafe_note_A": secret_note})
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    responses = _rater_pages(client, seeded.db_url, "r1")
    for aid in _queue(seeded.db_url, "r1", "comparison"):
        saved = client.post(
            f"/a/{aid}",
            data={"csrf_token": csrf, "order": ["B", "A", "C"], "ranked": "1", "action": "next"},
        )
        responses.append(saved.text)
        auto = client.post(f"/a/{aid}", data={"csrf_token": csrf}, headers={"HX-Request": "true"})
        responses.append(auto.text)
    assert any('data-testid="agent-A"' in t for t in responses)  # the comparison pages were seen
    for text in responses:
        for run in (*RUN_NAMES, *(str(p) for p in seeded.runs)):
            assert run not in text
        assert secret_note not in text
        assert "r2" not in re.sub(r"<[^>]+>", " ", text).split()  # no other rater is named


def test_case_text_is_escaped(tmp_path: Path, seeded: SeededStudy) -> None:
    study = seed_study(tmp_path / "xss", bench=seeded.bench, with_script=True)
    client = _client(study)
    sign_in(client, SCRIPT_RATER)
    queue = _queue(study.db_url, SCRIPT_RATER, "validation")
    assert len(queue) == 3
    for aid in queue:
        html = client.get(f"/a/{aid}").text
        assert SCRIPT not in html
        # question, first option, the first turn and the case summary: four escaped copies
        assert html.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 4


def test_comparison_replies_are_escaped(tmp_path: Path, seeded: SeededStudy) -> None:
    from behaviorsft.study.create import create_comparison
    from tests.study.helpers import make_run

    runs = [
        make_run(seeded.bench, tmp_path / f"xrun{i}", f"x{i}", extra_text=f" {SCRIPT}")
        for i in range(3)
    ]
    engine = open_db(seeded.db_url)
    add_user(engine, "x2", password=PASSWORD)
    create_comparison(
        engine, seeded.bench, [str(r) for r in runs], n=2, seed=3, raters=["x2"], name="xcmp"
    )
    engine.dispose()
    client = _client(seeded)
    sign_in(client, "x2")
    html = client.get(f"/a/{_queue(seeded.db_url, 'x2', 'comparison')[0]}").text
    assert SCRIPT not in html and html.count("&lt;script&gt;") == 3
    assert "&lt;proactive&gt;" not in html and "<proactive>" not in html  # tokens removed


# ---------------------------------------------------------------- validation saves


def test_slider_untouched_stays_unanswered(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "validation")[0]
    page = client.get(f"/a/{aid}").text
    assert 'name="proactivity" id="proactivity" value=""' in page
    assert 'data-testid="proactivity-value">not set<' in page
    letter = _option_letters(page)[0]
    form = {
        "csrf_token": csrf,
        "answer": letter,
        "confidence": "high",
        "plausibility": "yes",
        "proactivity": "",
    }
    resp = client.post(f"/a/{aid}", data={**form, "action": "next"})
    assert resp.status_code == 200  # stays: incomplete
    assert "still missing: proactivity slider" in resp.text
    row = _validation_row(seeded.db_url, aid)
    assert row is not None and row.proactivity is None and row.answer == letter


def test_reload_keeps_every_answer(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "validation")[1]
    letter = _option_letters(client.get(f"/a/{aid}").text)[-1]
    form = {
        "csrf_token": csrf,
        "answer": letter,
        "confidence": "moderate",
        "proactivity": "0.35",
        "plausibility": "unsure",
        "note": "Dose & <units> unclear",
    }
    # A background (htmx) save, as made while the rater is still on the page.
    auto = client.post(f"/a/{aid}", data=form, headers={"HX-Request": "true"})
    assert auto.status_code == 200 and auto.text == "Saved"
    page = TestClient(client.app, cookies=client.cookies).get(f"/a/{aid}").text  # a reload
    assert f'id="answer-{letter}" value="{letter}" data-testid="answer-{letter}" checked' in page
    assert 'value="moderate" data-testid="confidence-moderate" checked' in page
    assert 'value="unsure" data-testid="plausibility-unsure" checked' in page
    assert 'name="proactivity" id="proactivity" value="0.35"' in page
    assert ">Dose &amp; &lt;units&gt; unclear</textarea>" in page


def test_double_save_is_idempotent(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "validation")[0]
    letter = _option_letters(client.get(f"/a/{aid}").text)[0]
    form = {
        "csrf_token": csrf,
        "answer": letter,
        "confidence": "low",
        "proactivity": "1",
        "plausibility": "no",
        "action": "save",
    }
    for _ in range(2):
        assert client.post(f"/a/{aid}", data=form, follow_redirects=False).status_code == 303
    engine = open_db(seeded.db_url)
    with Session(engine) as s:
        rows = s.scalars(
            select(ValidationAnswer).where(ValidationAnswer.assignment_id == aid)
        ).all()
        assert len(rows) == 1
        assert (rows[0].answer, rows[0].confidence, rows[0].proactivity, rows[0].plausibility) == (
            letter,
            "low",
            1.0,
            "no",
        )
    engine.dispose()


def test_save_and_next_moves_along_the_queue_and_back(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    queue = _queue(seeded.db_url, "r1", "validation")
    first = client.get(f"/a/{queue[0]}").text
    assert f'data-testid="progress">Task 1 of {len(queue)}' in first
    form = {
        "csrf_token": csrf,
        "answer": _option_letters(first)[0],
        "confidence": "high",
        "proactivity": "0.8",
        "plausibility": "yes",
    }
    resp = client.post(f"/a/{queue[0]}", data={**form, "action": "next"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == f"/a/{queue[1]}"
    assert f"Task 2 of {len(queue)}" in client.get(f"/a/{queue[1]}").text
    back = client.post(
        f"/a/{queue[1]}", data={"csrf_token": csrf, "action": "prev"}, follow_redirects=False
    )
    assert back.headers["location"] == f"/a/{queue[0]}"
    # Going back and changing an answer replaces it.
    client.post(f"/a/{queue[0]}", data={**form, "confidence": "low", "action": "save"})
    row = _validation_row(seeded.db_url, queue[0])
    assert row is not None and row.confidence == "low"
    assert 'data-testid="progress-validation">1 of' in client.get("/").text


def test_last_task_leads_to_the_end_page(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    last = _queue(seeded.db_url, "r1", "validation")[-1]
    page = client.get(f"/a/{last}").text
    form = {
        "csrf_token": csrf,
        "answer": _option_letters(page)[0],
        "confidence": "high",
        "proactivity": "0",
        "plausibility": "yes",
        "action": "next",
    }
    resp = client.post(f"/a/{last}", data=form)
    assert 'data-testid="done-progress">1 of' in resp.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("answer", "Z"),
        ("confidence", "certain"),
        ("proactivity", "1.5"),
        ("proactivity", "nan"),
        ("plausibility", "maybe"),
    ],
)
def test_impossible_values_are_refused(seeded: SeededStudy, field: str, value: str) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "validation")[0]
    resp = client.post(f"/a/{aid}", data={"csrf_token": csrf, field: value})
    assert resp.status_code == 422 and field in resp.text
    assert _validation_row(seeded.db_url, aid) is None


# ---------------------------------------------------------------- comparison saves


def _comparison_rows(db_url: str, aid: int) -> dict[str, tuple[object, ...]]:
    engine = open_db(db_url)
    with Session(engine) as s:
        rows = {
            r.agent: (r.rank, r.likert, r.unsafe, r.unsafe_note)
            for r in s.scalars(
                select(ComparisonAnswer).where(ComparisonAnswer.assignment_id == aid)
            )
        }
    engine.dispose()
    return rows


def test_comparison_page_shows_key_and_blinded_agents(seeded: SeededStudy) -> None:
    client = _client(seeded)
    sign_in(client, "r1")
    html = client.get(f"/a/{_queue(seeded.db_url, 'r1', 'comparison')[0]}").text
    assert html.count('data-testid="key"') == 1 and "(correct answer)" in html
    assert [m for m in re.findall(r'data-testid="agent-([A-Z])"', html)] == ["A", "B", "C"]
    assert (
        'name="ranked" id="ranked" value="1" data-testid="ranking-confirmed">' in html
    )  # unticked
    for label in "ABC":
        assert (
            f'data-testid="rank-up-{label}"' in html and f'data-testid="likert-{label}-5"' in html
        )


def test_comparison_ranking_counts_only_when_confirmed(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "comparison")[0]
    form = {"csrf_token": csrf, "order": ["A", "B", "C"], "likert_A": "4", "action": "save"}
    client.post(f"/a/{aid}", data=form)
    assert 'data-testid="progress-comparison">0 of 4 complete' in client.get("/").text
    rows = _comparison_rows(seeded.db_url, aid)
    assert {k: v[0] for k, v in rows.items()} == {"A": None, "B": None, "C": None}
    assert rows["A"][1] == 4 and rows["B"][1] is None
    full = {
        "csrf_token": csrf,
        "order": ["C", "A", "B"],
        "ranked": "1",
        "likert_A": "2",
        "likert_B": "5",
        "likert_C": "3",
        "unsafe_B": "1",
        "unsafe_note_B": "misses the allergy",
        "action": "next",
    }
    for _ in range(2):  # idempotent
        assert client.post(f"/a/{aid}", data=full, follow_redirects=False).status_code == 303
    home = client.get("/").text
    assert 'data-testid="progress-comparison">1 of 4 complete' in home
    assert 'data-testid="progress-validation">0 of 6 complete' in home
    assert _comparison_rows(seeded.db_url, aid) == {
        "A": (2, 2, False, ""),
        "B": (3, 5, True, "misses the allergy"),
        "C": (1, 3, False, ""),
    }
    page = client.get(f"/a/{aid}").text  # reload: saved order shown, box ticked
    assert re.findall(r'data-testid="rank-item-([A-C])"', page) == ["C", "A", "B"]
    assert 'data-testid="ranking-confirmed" checked' in page
    assert ">misses the allergy</textarea>" in page


def test_comparison_rank_list_must_be_a_permutation(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "comparison")[0]
    resp = client.post(
        f"/a/{aid}", data={"csrf_token": csrf, "order": ["A", "A", "C"], "ranked": "1"}
    )
    assert resp.status_code == 422
    assert _comparison_rows(seeded.db_url, aid) == {}


def test_concurrent_raters_do_not_overwrite_each_other(seeded: SeededStudy) -> None:
    """Raters save the same task in interleaved order; each keeps their own answer."""
    clients = {}
    for name in ("r1", "r2", "r3"):
        c = _client(seeded)
        clients[name] = (c, sign_in(c, name))
    engine = open_db(seeded.db_url)
    with Session(engine) as s:
        study = s.scalars(select(Study).where(Study.kind == "validation")).one()
        task_id = s.scalars(
            select(Assignment.study_task_id).where(Assignment.study_id == study.id)
        ).first()
        mine = {
            name: s.scalars(
                select(Assignment.id)
                .join(User)
                .where(User.name == name, Assignment.study_task_id == task_id)
            ).one()
            for name in clients
        }
    confidences = {"r1": "low", "r2": "moderate", "r3": "high"}
    for round_ in range(3):
        for name, (c, csrf) in clients.items():
            c.post(
                f"/a/{mine[name]}",
                data={
                    "csrf_token": csrf,
                    "confidence": confidences[name],
                    "note": f"{name}-{round_}",
                },
            )
    with Session(engine) as s:
        got = {name: s.get(ValidationAnswer, aid) for name, aid in mine.items()}
        assert {n: (r.confidence, r.note) for n, r in got.items() if r} == {
            n: (confidences[n], f"{n}-2") for n in mine
        }
        assert s.scalar(select(func.count()).select_from(ValidationAnswer)) == 3
    engine.dispose()


def test_a_rater_signed_in_by_link_can_set_a_password(seeded: SeededStudy) -> None:
    client = _client(seeded)
    token = seeded.tokens["r3"]
    page = client.get(f"/signin/{token}")
    client.post(f"/signin/{token}", data={"csrf_token": csrf_of(page.text)})
    account = client.get("/account")
    csrf = csrf_of(account.text)
    new = "a new long password"
    assert client.post("/account", data={"password": new, "password2": new}).status_code == 403
    differ = client.post("/account", data={"csrf_token": csrf, "password": new, "password2": "x"})
    assert differ.status_code == 422 and "differ" in differ.text
    short = client.post(
        "/account", data={"csrf_token": csrf, "password": "short", "password2": "short"}
    )
    assert short.status_code == 422 and "at least 8" in short.text
    ok = client.post("/account", data={"csrf_token": csrf, "password": new, "password2": new})
    assert ok.status_code == 200 and "Password saved." in ok.text
    fresh = _client(seeded)
    sign_in(fresh, "r3", new)
    assert 'data-testid="whoami">r3<' in fresh.get("/").text


def test_parallel_saves_on_sqlite_lose_and_duplicate_nothing(seeded: SeededStudy) -> None:
    """Threads save every validation assignment several times at once: one row each."""
    from concurrent.futures import ThreadPoolExecutor

    from behaviorsft.study.answers import ValidationValues, save_validation

    engine = open_db(seeded.db_url)
    with Session(engine) as s:
        ids = list(s.scalars(select(Assignment.id).where(Assignment.agent_runs.is_(None))))

    def save(job: tuple[int, int]) -> None:
        aid, round_ = job
        save_validation(engine, aid, ValidationValues(plausibility="yes", note=f"{aid}-{round_}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(save, [(aid, r) for r in range(3) for aid in ids]))
    with Session(engine) as s:
        rows = s.scalars(select(ValidationAnswer)).all()
        assert sorted(r.assignment_id for r in rows) == sorted(ids)
        assert all(
            r.note.startswith(f"{r.assignment_id}-") and r.plausibility == "yes" for r in rows
        )
    engine.dispose()


def test_an_oversized_form_is_refused_before_it_is_read(seeded: SeededStudy) -> None:
    client = _client(seeded)
    csrf = sign_in(client, "r1")
    aid = _queue(seeded.db_url, "r1", "validation")[0]
    resp = client.post(f"/a/{aid}", data={"csrf_token": csrf, "note": "x" * 300_000})
    assert resp.status_code == 413
    too_long = client.post(f"/a/{aid}", data={"csrf_token": csrf, "note": "x" * 5001})
    assert too_long.status_code == 422 and "note: at most 5000" in too_long.text
    assert _validation_row(seeded.db_url, aid) is None


def test_a_save_needs_one_connection_at_a_time(seeded: SeededStudy) -> None:
    """A request never holds a pooled connection while asking for another.

    The save used to run inside the request's open session, so each save held
    two connections: with the pool's connections all taken by saves in flight
    (50 raters in benchmarks/bench_study.py) every save waited for a second
    one until the pool timed out. With a one-connection pool that shows at once.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import QueuePool

    engine = create_engine(
        seeded.db_url,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=2,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _fk(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.execute("PRAGMA foreign_keys=ON")  # type: ignore[attr-defined]

    client = TestClient(create_app(seeded.db_url, secret="test-secret", engine=engine))
    csrf = sign_in(client, "r1")
    validation = _queue(seeded.db_url, "r1", "validation")[0]
    resp = client.post(
        f"/a/{validation}",
        data={"csrf_token": csrf, "answer": "B", "confidence": "high", "action": "save"},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 200, resp.text
    saved = _validation_row(seeded.db_url, validation)
    assert saved is not None
    assert (saved.answer, saved.confidence) == ("B", "high")
    comparison = _queue(seeded.db_url, "r1", "comparison")[0]
    resp = client.post(
        f"/a/{comparison}",
        data={"csrf_token": csrf, "likert_A": "4"},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 200, resp.text
    engine.dispose()

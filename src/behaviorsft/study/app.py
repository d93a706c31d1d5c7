"""The study web app: sign-in, the validation and comparison screens, the admin page.

``create_app(db_url)`` builds it (the schema is upgraded first);
``behaviorsft study serve`` runs it under uvicorn. Pages are rendered on the
server with Jinja2 (autoescaped: case text can never become markup); htmx
saves a form in the background as the rater changes it, and SortableJS drags
the ranking. Both are vendored in ``static/``: the app works offline.

Rules every route keeps:

- a rater sees and changes only their own assignments (403 otherwise);
- run names (which agent is which) and other raters' answers are in no page
  a rater can load; only the admin page lists raters' progress (counts);
- every POST carries the session's CSRF token (403 otherwise);
- failed sign-ins are rate-limited per client address and per user name.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from behaviorsft import __version__
from behaviorsft.serve.app import BodyLimit
from behaviorsft.study.answers import (
    CONFIDENCE,
    LIKERT,
    PLAUSIBILITY,
    ComparisonValues,
    FormError,
    ValidationValues,
    labels_of,
    load_comparison,
    load_validation,
    parse_comparison,
    parse_validation,
    progress,
    save_comparison,
    save_validation,
    studies_of,
    task_of,
)
from behaviorsft.study.db import AgentResponse, Assignment, Study, User, as_utc, open_db
from behaviorsft.study.security import (
    PRE_COOKIE,
    PRE_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginLimiter,
    SessionData,
    Signer,
    load_secret,
    same_token,
)
from behaviorsft.study.users import (
    consume_token,
    hash_password,
    token_is_valid,
    verify_password,
)

PACKAGE = resources.files("behaviorsft.study")
# No inline script or style anywhere: every script is a file under /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
MAX_BODY = 256 * 1024
CONFIDENCE_LABELS = {"low": "Low", "moderate": "Moderate", "high": "High"}
PLAUSIBILITY_LABELS = {"yes": "Yes", "no": "No", "unsure": "Unsure"}
LIKERT_LABELS = {
    1: "1 (very inappropriate)",
    2: "2",
    3: "3 (neutral)",
    4: "4",
    5: "5 (very appropriate)",
}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(
    db_url: str,
    *,
    secret: str | None = None,
    login_attempts: int = 5,
    login_window_s: float = 300.0,
    engine: Engine | None = None,
) -> FastAPI:
    """The app for the study database at ``db_url`` (schema upgraded on start)."""
    engine = engine or open_db(db_url)
    signer = Signer(load_secret(engine, secret))
    limiter = LoginLimiter(login_attempts, login_window_s)
    # autoescape everywhere, whatever the file name: case text never becomes markup.
    env = Environment(loader=FileSystemLoader(str(PACKAGE / "templates")), autoescape=True)
    env.filters["when"] = _when
    templates = Jinja2Templates(env=env)
    app = FastAPI(
        title="behaviorsft study",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    # The largest form is a comparison with three 5,000-character notes.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        if request.headers.get("HX-Request"):
            return PlainTextResponse(str(exc), status_code=exc.status)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status, "message": str(exc), "user": None, "csrf": ""},
            status_code=exc.status,
        )

    # ------------------------------------------------------------------ helpers

    def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )

    def _session(request: Request) -> SessionData | None:
        return signer.read_session(request.cookies.get(SESSION_COOKIE))

    def _user(s: Session, request: Request) -> tuple[User, SessionData]:
        data = _session(request)
        user = s.get(User, data.user_id) if data else None
        if data is None or user is None:
            raise _Refused(401, "Please sign in.")
        return user, data

    async def _form(request: Request, expected: str | None) -> FormData:
        form = await request.form()
        given = form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        if not same_token(expected, str(given) if given else None):
            raise _Refused(403, "The form's security token is missing or stale: reload the page.")
        return form

    def _client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _page(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def _own_assignment(s: Session, user: User, assignment_id: int) -> tuple[Assignment, Study]:
        a = s.get(Assignment, assignment_id)
        if a is None:
            raise _Refused(404, "No such task.")
        if a.user_id != user.id:
            raise _Refused(403, "This task is in another rater's queue.")
        study = s.get(Study, a.study_id)
        assert study is not None
        return a, study

    def _login_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        cookie, csrf = signer.pre_cookie()
        response = _page(
            request, "login.html", {"user": None, "csrf": csrf, "error": error}, status
        )
        _set_cookie(request, response, PRE_COOKIE, cookie, PRE_SECONDS)
        return response

    def _signed_in(request: Request, user: User) -> Response:
        cookie, _ = signer.session_cookie(user.id)
        response = RedirectResponse("/", status_code=303)
        _set_cookie(request, response, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ sign-in

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return _login_page(request)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request, signer.read_pre(request.cookies.get(PRE_COOKIE)))
        # argon2 and the database work off the event loop (here and in every POST).
        return await run_in_threadpool(_login, request, form)

    def _login(request: Request, form: FormData) -> Response:
        name = str(form.get("name") or "").strip()
        password = str(form.get("password") or "")
        keys = (f"ip:{_client(request)}", f"name:{name.casefold()}")
        wait = limiter.retry_after(*keys)
        if wait:
            response = _login_page(
                request, f"Too many failed sign-ins: try again in {wait} s.", status=429
            )
            response.headers["Retry-After"] = str(wait)
            return response
        with Session(engine) as s:
            user = s.scalars(select(User).where(User.name == name)).one_or_none()
            ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok:
            limiter.failed(*keys)
            return _login_page(request, "Wrong name or password.", status=401)
        return _signed_in(request, user)

    @app.get("/signin/{token}", response_class=HTMLResponse)
    def signin_form(request: Request, token: str) -> Response:
        # A GET only shows a button: mail scanners that open links must not use them up.
        with Session(engine) as s:
            valid = token_is_valid(s, token)
        cookie, csrf = signer.pre_cookie()
        response = _page(
            request,
            "signin.html",
            {"user": None, "csrf": csrf, "token": token, "valid": valid},
            200 if valid else 404,
        )
        _set_cookie(request, response, PRE_COOKIE, cookie, PRE_SECONDS)
        return response

    @app.post("/signin/{token}")
    async def signin(request: Request, token: str) -> Response:
        await _form(request, signer.read_pre(request.cookies.get(PRE_COOKIE)))
        return await run_in_threadpool(_signin, request, token)

    def _signin(request: Request, token: str) -> Response:
        key = f"ip:{_client(request)}"
        wait = limiter.retry_after(key)
        if wait:
            raise _Refused(429, f"Too many failed sign-ins: try again in {wait} s.")
        with Session(engine, expire_on_commit=False) as s, s.begin():
            user = consume_token(s, token)
        if user is None:
            limiter.failed(key)
            raise _Refused(404, "This sign-in link is unknown, used or expired: ask for a new one.")
        return _signed_in(request, user)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        data = _session(request)
        await _form(request, data.csrf if data else None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ rater pages

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        if _session(request) is None:
            return RedirectResponse("/login", status_code=303)
        with Session(engine) as s:
            try:
                user, data = _user(s, request)
            except _Refused:
                return RedirectResponse("/login", status_code=303)
            rows = [progress(s, st, user) for st in studies_of(s, user)]
            return _page(request, "home.html", {"user": user, "csrf": data.csrf, "progress": rows})

    def _render_assignment(
        request: Request,
        s: Session,
        user: User,
        data: SessionData,
        a: Assignment,
        study: Study,
        *,
        message: str = "",
        values: ValidationValues | ComparisonValues | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        task = task_of(s, a)
        queue = s.execute(
            select(Assignment.id, Assignment.position)
            .where(Assignment.study_id == study.id, Assignment.user_id == user.id)
            .order_by(Assignment.position)
        ).all()
        ids = [row[0] for row in queue]
        i = ids.index(a.id)
        context: dict[str, Any] = {
            "user": user,
            "csrf": data.csrf,
            "study": study,
            "assignment": a,
            "task": task,
            "position": a.position,
            "total": len(ids),
            "prev_id": ids[i - 1] if i > 0 else None,
            "next_id": ids[i + 1] if i + 1 < len(ids) else None,
            "message": message,
            "prog": progress(s, study, user),
            # Validation is about the case; comparison about the replies (case on demand).
            "conversation_open": study.kind == "validation",
        }
        if study.kind == "validation":
            context.update(
                values=values or load_validation(s, a.id) or ValidationValues(),
                confidence=[(c, CONFIDENCE_LABELS[c]) for c in CONFIDENCE],
                plausibility=[(p, PLAUSIBILITY_LABELS[p]) for p in PLAUSIBILITY],
            )
            return _page(request, "validation.html", context, status)
        labels = labels_of(a)
        by_run = {
            r.run: r.text
            for r in s.scalars(select(AgentResponse).where(AgentResponse.study_task_id == task.id))
        }
        # Only labels and texts reach the template: never the run names.
        agents = [
            {"label": label, "text": by_run.get(run, "")}
            for label, run in zip(labels, a.agent_runs or [], strict=True)
        ]
        cvalues = values or load_comparison(s, a) or ComparisonValues()
        assert isinstance(cvalues, ComparisonValues)
        ranked = bool(cvalues.agents) and all(v.rank is not None for v in cvalues.agents.values())
        order = sorted(labels, key=lambda lab: cvalues.agents[lab].rank or 0) if ranked else labels
        context.update(
            agents=agents,
            values=cvalues,
            ranked=ranked,
            order=order,
            likert=[(x, LIKERT_LABELS[x]) for x in LIKERT],
        )
        return _page(request, "comparison.html", context, status)

    @app.get("/a/{assignment_id}", response_class=HTMLResponse)
    def assignment_page(request: Request, assignment_id: int) -> Response:
        if _session(request) is None:
            return RedirectResponse("/login", status_code=303)
        with Session(engine) as s:
            user, data = _user(s, request)
            a, study = _own_assignment(s, user, assignment_id)
            return _render_assignment(request, s, user, data, a, study)

    @app.post("/a/{assignment_id}")
    async def save_assignment(request: Request, assignment_id: int) -> Response:
        data = _session(request)
        form = await _form(request, data.csrf if data else None)
        return await run_in_threadpool(_save, request, form, assignment_id)

    def _save(request: Request, form: FormData, assignment_id: int) -> Response:
        autosave = bool(request.headers.get("HX-Request"))
        with Session(engine, expire_on_commit=False) as s:
            user, data = _user(s, request)
            a, study = _own_assignment(s, user, assignment_id)
            task = task_of(s, a)
            values: ValidationValues | ComparisonValues
            try:
                if study.kind == "validation":
                    values = parse_validation(form, [o["label"] for o in task.options])
                else:
                    labels = labels_of(a)
                    values = parse_comparison(form, [str(x) for x in form.getlist("order")], labels)
            except FormError as exc:
                raise _Refused(422, f"Not saved: {exc}") from None
            # Give this session's connection back before the save takes its own: a
            # request holding two at once starves the pool when many raters save.
            s.commit()
            if isinstance(values, ValidationValues):
                save_validation(engine, a.id, values)
            else:
                save_comparison(engine, a.id, values)
            if autosave:
                note = "Saved" if values.complete else "Saved (incomplete)"
                return PlainTextResponse(note)
            action = str(form.get("action") or "save")
            queue = [
                row[0]
                for row in s.execute(
                    select(Assignment.id)
                    .where(Assignment.study_id == study.id, Assignment.user_id == user.id)
                    .order_by(Assignment.position)
                ).all()
            ]
            i = queue.index(a.id)
            if action == "prev" and i > 0:
                return RedirectResponse(f"/a/{queue[i - 1]}", status_code=303)
            if action == "next":
                if not values.complete:
                    return _render_assignment(
                        request,
                        s,
                        user,
                        data,
                        a,
                        study,
                        values=values,
                        message="Saved, but still missing: "
                        + ", ".join(values.missing())
                        + ". Complete them, or use the links to move on and come back later.",
                    )
                if i + 1 < len(queue):
                    return RedirectResponse(f"/a/{queue[i + 1]}", status_code=303)
                return RedirectResponse(f"/done/{study.id}", status_code=303)
            return RedirectResponse(f"/a/{a.id}", status_code=303)

    @app.get("/done/{study_id}", response_class=HTMLResponse)
    def done(request: Request, study_id: int) -> Response:
        if _session(request) is None:
            return RedirectResponse("/login", status_code=303)
        with Session(engine) as s:
            user, data = _user(s, request)
            study = s.get(Study, study_id)
            if study is None or study not in studies_of(s, user):
                raise _Refused(404, "No such study in your queue.")
            return _page(
                request,
                "done.html",
                {"user": user, "csrf": data.csrf, "prog": progress(s, study, user)},
            )

    # ------------------------------------------------------------------ account

    def _account_page(
        request: Request, user: User, data: SessionData, error: str = "", message: str = ""
    ) -> HTMLResponse:
        context = {
            "user": user,
            "csrf": data.csrf,
            "error": error,
            "message": message,
            "has_password": user.password_hash is not None,
        }
        return _page(request, "account.html", context, 422 if error else 200)

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request) -> Response:
        if _session(request) is None:
            return RedirectResponse("/login", status_code=303)
        with Session(engine) as s:
            user, data = _user(s, request)
            return _account_page(request, user, data)

    @app.post("/account")
    async def set_password(request: Request) -> Response:
        data = _session(request)
        form = await _form(request, data.csrf if data else None)
        return await run_in_threadpool(_set_password, request, form)

    def _set_password(request: Request, form: FormData) -> Response:
        password = str(form.get("password") or "")
        with Session(engine) as s, s.begin():
            user, data = _user(s, request)
            if password != str(form.get("password2") or ""):
                return _account_page(request, user, data, error="The two passwords differ.")
            try:
                user.password_hash = hash_password(password)
            except ValueError as exc:
                return _account_page(request, user, data, error=f"Not saved: {exc}.")
            return _account_page(request, user, data, message="Password saved.")

    # ------------------------------------------------------------------ admin

    @app.get("/admin", response_class=HTMLResponse)
    def admin(request: Request) -> Response:
        if _session(request) is None:
            return RedirectResponse("/login", status_code=303)
        with Session(engine) as s:
            user, data = _user(s, request)
            if not user.is_admin:
                raise _Refused(403, "Only an administrator can see this page.")
            studies = list(s.scalars(select(Study).order_by(Study.id)))
            table = []
            for st in studies:
                raters = s.scalars(
                    select(User)
                    .where(
                        User.id.in_(select(Assignment.user_id).where(Assignment.study_id == st.id))
                    )
                    .order_by(User.name)
                ).all()
                table.append((st, [progress(s, st, r) for r in raters]))
            return _page(request, "admin.html", {"user": user, "csrf": data.csrf, "table": table})

    return app


def _when(value: datetime | None) -> str:
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"

"""``dossier serve``: read-only pages and a JSON API for auditors, analysts and subscribers.

Starlette with Jinja2 templates; the live alert feed is server-sent events
(``/api/alerts/stream``); charts are drawn by plotly.js served from the
installed ``plotly`` package (no CDN, no JavaScript build step). Every route
is a GET: nothing here can write to the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from analytics.reader import AnalyticsBusy
from ledger.settings import Settings
from web.site import ALERT_LEVELS, DEADLINE_STATES, Site

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=1)
schemas = SchemaGenerator(
    {"openapi": "3.0.0", "info": {"title": "dossier-ledger read API", "version": "1"}}
)
MAX_LIMIT = 500
POLL_SECONDS = 1.0


class BadParameter(HTTPException):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(400, f"{name}: {reason}")


def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(name, f"not an integer: {text!r}") from None
    if not lo <= value <= hi:
        raise BadParameter(name, f"must be between {lo} and {hi} (got {value})")
    return value


def _choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in choices:
        raise BadParameter(name, f"one of {', '.join(choices)} (got {value!r})")
    return value


def _site(request: Request) -> Site:
    return request.app.state.site


async def _agency(request: Request, agency: str | None) -> str | None:
    if agency is None:
        return None
    if agency not in await run_in_threadpool(_site(request).agencies):
        raise HTTPException(404, f"unknown agency {agency!r}")
    return agency


def _page(request: Request, name: str, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, {"q": "", **context})


# --- pages ---------------------------------------------------------------------------


async def dashboard_page(request: Request) -> Response:
    agency = await _agency(request, request.path_params.get("agency"))
    site = _site(request)
    data = await run_in_threadpool(site.dashboard, agency)
    agencies = await run_in_threadpool(site.agencies)
    return _page(request, "dashboard.html", d=data, agencies=agencies, states=DEADLINE_STATES)


async def dossier_page(request: Request) -> Response:
    code = request.path_params["code"]
    d = await run_in_threadpool(_site(request).dossier, code)
    if d is None:
        raise HTTPException(404, f"unknown dossier {code!r}")
    return _page(request, "dossier.html", d=d, q=code)


async def search_page(request: Request) -> Response:
    q = _query(request)
    rows = await run_in_threadpool(_site(request).search, q, 50) if q else []
    if len(rows) == 1 and rows[0]["dossier_id"] == q:
        return RedirectResponse(f"/dossiers/{q}", status_code=303)
    return _page(request, "search.html", q=q, rows=rows)


async def alerts_page(request: Request) -> Response:
    level = _choice_param(request, "level", ALERT_LEVELS)
    agency = await _agency(request, request.query_params.get("agency") or None)
    try:
        rows = await run_in_threadpool(
            lambda: _site(request).alerts(limit=100, agency=agency, level=level)
        )
    except AnalyticsBusy as e:
        raise HTTPException(503, str(e)) from None
    last = max((r["seq"] for r in rows), default=0)
    return _page(request, "alerts.html", rows=rows, last=last, level=level, agency=agency)


def _query(request: Request) -> str:
    q = (request.query_params.get("q") or "").strip()
    if len(q) > 100:
        raise BadParameter("q", "at most 100 characters")
    return q


# --- JSON API ------------------------------------------------------------------------


async def api_dossier(request: Request) -> Response:
    """
    summary: A dossier by its code
    description: Timeline (audit trail), control sheet (Form 05), state and deadline state at
      the stream's latest business time, whether its hash chain verifies, its alerts and signals.
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: the dossier}
      404: {description: unknown dossier code}
    """
    code = request.path_params["code"]
    d = await run_in_threadpool(_site(request).dossier, code)
    if d is None:
        raise HTTPException(404, f"unknown dossier {code!r}")
    return JSONResponse(d)


async def api_search(request: Request) -> Response:
    """
    summary: Dossiers whose code contains q
    parameters:
      - {name: q, in: query, required: true, schema: {type: string, maxLength: 100}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 20}}
    responses:
      200: {description: matching dossiers}
      400: {description: bad parameter}
    """
    q = _query(request)
    if not q:
        raise BadParameter("q", "required")
    limit = _int_param(request, "limit", 20, 1, MAX_LIMIT)
    return JSONResponse(await run_in_threadpool(_site(request).search, q, limit))


async def api_dashboard(request: Request) -> Response:
    """
    summary: The dashboard, for the province or one agency
    description: On-time trend (metrics_daily), open dossiers by deadline state, top signals,
      officials' workload.
    parameters:
      - {name: agency, in: query, schema: {type: string}}
    responses:
      200: {description: the dashboard's data}
      404: {description: unknown agency}
    """
    agency = await _agency(request, request.query_params.get("agency") or None)
    return JSONResponse(await run_in_threadpool(_site(request).dashboard, agency))


async def api_agencies(request: Request) -> Response:
    """
    summary: Agency codes that have dossiers
    responses:
      200: {description: a list of agency codes}
    """
    return JSONResponse(await run_in_threadpool(_site(request).agencies))


async def api_alerts(request: Request) -> Response:
    """
    summary: Alerts, newest first (or those after a seq, oldest first)
    parameters:
      - {name: after, in: query, schema: {type: integer, minimum: 0}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
      - {name: level, in: query, schema: {type: string, enum: [half, three_quarters, due, warning, severe]}}
      - {name: agency, in: query, schema: {type: string}}
    responses:
      200: {description: alert rows (streams.outputs shape) with their seq}
      400: {description: bad parameter}
    """
    after = _int_param(request, "after", None, 0, 2**62)
    limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
    level = _choice_param(request, "level", ALERT_LEVELS)
    agency = await _agency(request, request.query_params.get("agency") or None)
    try:
        rows = await run_in_threadpool(
            lambda: _site(request).alerts(after=after, limit=limit, agency=agency, level=level)
        )
    except AnalyticsBusy as e:
        raise HTTPException(503, str(e)) from None
    return JSONResponse(rows)


async def api_alert_stream(request: Request) -> Response:
    """
    summary: Live alerts as server-sent events
    description: One `alert` event per new row of the alerts table (id = its seq); resumes
      after the Last-Event-ID header or the `after` parameter, else from the newest alert.
    parameters:
      - {name: after, in: query, schema: {type: integer, minimum: 0}}
      - {name: level, in: query, schema: {type: string, enum: [half, three_quarters, due, warning, severe]}}
      - {name: agency, in: query, schema: {type: string}}
    responses:
      200: {description: text/event-stream}
      400: {description: bad parameter}
    """
    site = _site(request)
    after = _int_param(request, "after", None, 0, 2**62)
    header = request.headers.get("last-event-id")
    if header and header.isdigit():
        after = int(header)
    level = _choice_param(request, "level", ALERT_LEVELS)
    agency = await _agency(request, request.query_params.get("agency") or None)
    if after is None:
        after = await run_in_threadpool(_safe_last_seq, site)
    poll = request.app.state.poll_seconds

    async def events() -> AsyncIterator[str]:
        nonlocal after
        yield f"retry: 2000\n: watching alerts after {after}\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            try:
                rows = await run_in_threadpool(
                    functools.partial(
                        site.alerts, after=after, limit=200, agency=agency, level=level
                    )
                )
            except AnalyticsBusy:
                rows = []
            for row in rows:
                after = row["seq"]
                yield f"id: {after}\nevent: alert\ndata: {json.dumps(row, ensure_ascii=False)}\n\n"
            if rows:
                idle = 0.0
            else:
                idle += poll
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(poll)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _safe_last_seq(site: Site) -> int:
    try:
        return site.last_alert_seq()
    except AnalyticsBusy:
        return 0


async def openapi(request: Request) -> Response:
    """The OpenAPI document of the JSON API (from the endpoints' docstrings)."""
    return JSONResponse(schemas.get_schema(routes=request.app.routes))


async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package (the machine may have no internet)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


# --- errors ----------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail, "status": exc.status_code}, exc.status_code)
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": exc.status_code, "detail": exc.detail, "q": ""},
        status_code=exc.status_code,
    )


def create_app(settings: Settings, *, poll_seconds: float = POLL_SECONDS) -> Starlette:
    """The web application over one data directory (opened once, read-only)."""
    routes = [
        Route("/", dashboard_page, methods=["GET"]),
        Route("/agencies/{agency}", dashboard_page, methods=["GET"]),
        Route("/dossiers/{code}", dossier_page, methods=["GET"]),
        Route("/search", search_page, methods=["GET"]),
        Route("/alerts", alerts_page, methods=["GET"]),
        Route("/api/dossiers/{code}", api_dossier, methods=["GET"]),
        Route("/api/search", api_search, methods=["GET"]),
        Route("/api/dashboard", api_dashboard, methods=["GET"]),
        Route("/api/agencies", api_agencies, methods=["GET"]),
        Route("/api/alerts", api_alerts, methods=["GET"]),
        Route("/api/alerts/stream", api_alert_stream, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/static/plotly.min.js", plotly_js, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    site = Site(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        site.close()  # the analytics snapshot, read-model and verifier threads

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan
    )
    app.state.site = site
    app.state.poll_seconds = poll_seconds
    return app

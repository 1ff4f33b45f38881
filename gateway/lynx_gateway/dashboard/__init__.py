"""The live dashboard the gateway serves: HTML pages under / and /ui/, and the public events stream.

`register(app, gw)` adds the routes. The pages are server-rendered (Jinja2) and enhanced with htmx, its
SSE extension and uPlot, vendored under static/vendor/; nothing is fetched from a CDN.
"""

from __future__ import annotations

from aiohttp import web

from lynx_gateway.dashboard.events import EventsHub
from lynx_gateway.dashboard.pages import HERE, Pages
from lynx_gateway.errors import error_response

STATIC = (HERE / "static").resolve()

__all__ = ["EVENTS", "register"]
EVENTS = web.AppKey("dashboard_events", EventsHub)


async def static(request: web.Request) -> web.StreamResponse:
    """A file under static/ (the vendored libraries, the dashboard's script and style); nothing outside it."""
    path = (STATIC / request.match_info["path"]).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        return error_response(404, "no such file", "path")
    return web.FileResponse(path, headers={"cache-control": "max-age=3600"})


def register(app: web.Application, gw) -> None:
    """Add the dashboard's routes to the gateway's application (gw: the gateway with its gRPC stubs)."""
    pages = Pages(gw)
    hub = EventsHub(lambda: gw.scheduler, lambda: pages.runs)
    app[EVENTS] = hub
    app.add_routes(
        [
            web.get("/", pages.index),
            web.get("/batches/{id}/events", hub.handle),
            web.get("/ui/batches/{id}", pages.batch),
            web.get("/ui/batches/{id}/runs", pages.runs_table),
            web.get("/ui/batches/{id}/charts.json", pages.charts),
            web.get("/ui/batches/{id}/overlay", pages.overlay),
            web.get("/ui/batches/{id}/overlay.json", pages.overlay_data),
            web.get("/ui/jobs/{id}", pages.job),
            web.get("/ui/runners", pages.runners),
            web.get("/ui/static/{path:.+}", static),
        ]
    )

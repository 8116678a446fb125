"""The web view for on-call engineers, under ``/ui``: one HTML page, a script and a style
sheet, shipped as package data (``api/ui/``) and served by the API itself, with no
build step and nothing loaded from elsewhere.

The page holds no data: it calls the API from the browser with the key the engineer
enters (kept in the tab's ``sessionStorage``), so the API's scopes apply as they do to
any client: ``read`` to look, ``ingest`` to merge, split or record a resolution. The
assets need no key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parents[1] / "ui"

# The page must not be framed by another site (clickjacking a merge button), and needs
# nothing from anywhere else.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def install(app: FastAPI) -> None:
    @app.get("/ui", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(UI_DIR / "index.html", media_type="text/html", headers=_HEADERS)

    @app.get("/ui/", include_in_schema=False)
    def slash(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/ui", status_code=308)

    app.mount("/ui/static", StaticFiles(directory=UI_DIR), name="ui-assets")

"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with every asset served by triage itself.

FastAPI's own pages load Swagger UI's and ReDoc's script and styles from a public CDN
(and ReDoc its fonts from Google): on a machine without internet, which is common
where alert pipelines run, they are blank pages. The assets come from the
``fastapi-standalone-docs`` distribution instead (Swagger UI's ``swagger-ui-dist``,
Apache-2.0, and ReDoc's standalone bundle, MIT, each with its licence beside it,
served at ``/docs/LICENSE`` and ``/redoc/redoc.standalone.js.LICENSE.txt``). Only the
files are used, not that package's FastAPI glue, which patches FastAPI module-wide.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_standalone_docs
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_standalone_docs.__file__).resolve().parent / "static"
FAVICON = "/ui/static/favicon.svg"   # triage's own (see triage.api.routers.ui)


def install(app: FastAPI) -> None:
    """Add ``/docs`` and ``/redoc`` to an app made with ``docs_url=None, redoc_url=None``."""

    def root(request: Request) -> str:
        # Behind a proxy that strips a prefix, links must carry it (FastAPI does the same).
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{app.openapi_url}", title=f"{app.title} - API docs",
            swagger_js_url=f"{prefix}/docs/swagger-ui-bundle.js", swagger_css_url=f"{prefix}/docs/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{FAVICON}", oauth2_redirect_url=None,
            # The validator badge would ask a public service about the spec.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        return get_redoc_html(openapi_url=f"{prefix}{app.openapi_url}", title=f"{app.title} - API reference",
                              redoc_js_url=f"{prefix}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{prefix}{FAVICON}", with_google_fonts=False)

    # Mounted after the two pages, so "/docs" itself is the page and "/docs/<file>" an asset.
    # The ReDoc bundle of that distribution asks for its logo at "<page path>/logo-mini.svg".
    app.mount("/docs", StaticFiles(directory=ASSETS / "swagger"), name="swagger-ui-assets")
    app.mount("/redoc", StaticFiles(directory=ASSETS / "redoc"), name="redoc-assets")

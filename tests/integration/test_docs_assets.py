"""/docs and /redoc load everything they need from triage itself (air-gapped networks)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EMBEDDER
from triage.api import create_app
from triage.store import SqlStore


class _Links(HTMLParser):
    """Every URL an HTML page makes a browser load: src and href attributes, and the spec
    URL Swagger UI's inline script and ReDoc's element name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)
        self._script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._script:
            self.urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", data)
            self.urls += re.findall(r"""https?://[^\s'"]+""", data)


def loaded_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def client(sqlite_store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_store, embedder=EMBEDDER)) as c:
        yield c


@pytest.mark.parametrize("page, bundle", [("/docs", "/docs/swagger-ui-bundle.js"),
                                          ("/redoc", "/redoc/redoc.standalone.js")])
def test_docs_pages_load_only_same_origin_assets_that_exist(client: TestClient, page: str, bundle: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = loaded_urls(response.text)
    assert bundle in urls and "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert client.get(url).status_code == 200, f"{page} loads {url}, which is not served"


def test_the_bundles_are_served_with_their_licences(client: TestClient) -> None:
    swagger = client.get("/docs/swagger-ui-bundle.js")
    assert swagger.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle" in swagger.text
    assert "Apache License" in client.get("/docs/LICENSE").text
    assert "ReDoc" in client.get("/redoc/redoc.standalone.js.LICENSE.txt").text
    # The ReDoc bundle asks for its logo at "<page>/logo-mini.svg" rather than at a CDN.
    assert "cdn.redoc.ly" not in client.get("/redoc/redoc.standalone.js").text
    assert client.get("/redoc/logo-mini.svg").status_code == 200


def test_the_web_view_loads_only_its_own_assets(client: TestClient) -> None:
    response = client.get("/ui")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    # Nothing from elsewhere, no inline script or style, never framed by another site.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    urls = loaded_urls(response.text)
    assert {"/ui/static/app.js", "/ui/static/app.css", "/ui/static/favicon.svg"} <= set(urls)
    for url in urls:
        if url.startswith("#"):
            continue   # the page's own views
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"/ui loads {url} from elsewhere"
        assert client.get(url).status_code == 200, f"/ui loads {url}, which is not served"
    script = client.get("/ui/static/app.js").text
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "") and "https://" not in script
    assert client.get("/ui/").status_code == 200   # the redirect, followed

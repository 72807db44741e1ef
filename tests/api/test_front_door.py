"""GET /: a page for a person, JSON for a program, the links in a Link header for both; and the
derivation, as the README gives it, in the API's own documentation."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from service.app import create_app

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[2] / "README.md"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value or "" for name, value in attrs if tag == "a" and name == "href"]


def link_header(answer: httpx.Response) -> dict[str, str]:
    return {
        rel: url for url, rel in re.findall(r'<([^>]+)>; rel="([^"]+)"', answer.headers["link"])
    }


async def test_a_program_gets_json_links_that_lead_somewhere(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["name"] == "gradserve"
    assert body["links"] == link_header(answer)
    assert body["links"]["service-desc"] == "/openapi.json"
    for url in body["links"].values():
        assert (await client.get(url)).status_code == 200, url


async def test_a_browser_gets_a_page_whose_links_lead_somewhere(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["vary"] == "Accept"
    anchors = Anchors()
    anchors.feed(answer.text)
    assert set(anchors.hrefs) == set(link_header(answer).values())
    assert "/docs" in anchors.hrefs
    for href in anchors.hrefs:
        assert (await client.get(href)).status_code == 200, href


async def test_links_follow_the_root_path() -> None:
    """Behind a proxy that serves the app under /api, the links say /api/docs."""
    transport = httpx.ASGITransport(app=create_app(), root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/api/", headers={"Accept": BROWSER_ACCEPT})
    assert link_header(answer)["service-doc"] == "/api/docs"
    assert 'href="/api/docs"' in answer.text


async def test_the_documentation_shows_the_readmes_derivation(client: httpx.AsyncClient) -> None:
    readme = README.read_text()
    match = re.search(r"\nThe gradients follow from matrix differentials.+?\n\n", readme, re.DOTALL)
    assert match, "README has no derivation"
    steps = re.search(r"\n1\. d\(loss\).+?\*\*dloss/dW1 = X\^T dloss/dH\*\*\.", readme, re.DOTALL)
    assert steps, "README has no five steps"
    description = (await client.get("/openapi.json")).json()["info"]["description"]
    assert match.group(0).strip() in description
    assert steps.group(0).strip() in description

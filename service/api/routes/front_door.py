"""``GET /``: where a newcomer starts, a person in a browser or a program.

A browser (Accept rating text/html above JSON) gets a short page linking the documentation; a
program gets the same links as JSON. Both carry them in a ``Link`` header too (RFC 8288), with the
relations RFC 8631 defines for an API's description (``service-desc``) and documentation
(``service-doc``), so a client can find the contract without knowing its path. Where the
deployment offers the page for learners (`service.api.routes.learn`), it is linked first, with
the relation ``help``; the OpenAPI document's examples, built without a deployment, leave it out.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from service import __version__
from service.api.negotiation import HTML, JSON, prefers_html
from service.api.routes.learn import offered

router = APIRouter()

LINKS: dict[str, tuple[str, str]] = {
    "service-doc": ("/docs", "The API's documentation, to try each operation (Swagger UI)"),
    "alternate": ("/redoc", "The same documentation as one page (ReDoc)"),
    "service-desc": ("/openapi.json", "The contract: the OpenAPI document clients build on"),
    "status": ("/healthz", "Whether the service can compute"),
}
"""Each link by its relation: its path and what a person finds there."""

LEARN: dict[str, tuple[str, str]] = {
    "help": (
        "/learn",
        "For learners: a problem solved step by step, and your own answers checked",
    ),
}
"""The page for learners' link, where the deployment offers that page."""

SUMMARY = (
    "gradserve computes the loss and all five gradients of a two-layer ReLU network, exactly, "
    "and grades students' hand-derived ones."
)


def linked(learn: bool) -> dict[str, tuple[str, str]]:
    """The links of the front door: the page for learners' first, if `learn`."""
    return {**LEARN, **LINKS} if learn else LINKS


def links(root: str, learn: bool = False) -> dict[str, str]:
    """Each relation's URL below the app's root path (``root_path`` behind a proxy)."""
    return {rel: root + path for rel, (path, _) in linked(learn).items()}


def page(root: str, learn: bool = False) -> str:
    """The page a browser gets: the summary and each link with what it leads to."""
    items = "".join(
        f'<li><a href="{escape(root + path)}">{escape(text)}</a></li>'
        for path, text in linked(learn).values()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gradserve</title>
</head>
<body>
<main>
<h1>gradserve {escape(__version__)}</h1>
<p>{escape(SUMMARY)}</p>
<ul>
{items}
</ul>
</main>
</body>
</html>
"""


@router.get(
    "/",
    operation_id="index",
    summary="Where to start: links to the documentation and the contract",
    tags=["operations"],
    response_model=None,
    responses={
        200: {
            "description": "The links, as HTML for a browser and JSON for a program; also in "
            "the Link header.",
            "headers": {
                "Link": {
                    "description": "The same links (RFC 8288; relations of RFC 8631).",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "version": {"type": "string"},
                            "summary": {"type": "string"},
                            "links": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                        "required": ["name", "version", "summary", "links"],
                    },
                    "example": {
                        "name": "gradserve",
                        "version": __version__,
                        "summary": SUMMARY,
                        "links": links("", learn=True),
                    },
                },
                HTML: {"schema": {"type": "string"}, "example": page("", learn=True)},
            },
        }
    },
)
async def index(request: Request) -> Response:
    """HTML when Accept rates it above JSON (a browser), JSON otherwise."""
    root: str = request.scope.get("root_path", "")
    learn = bool(offered(request))
    urls = links(root, learn)
    headers = {
        "Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in urls.items()),
        "Vary": "Accept",
    }
    if prefers_html(request.headers.get("accept")):
        return HTMLResponse(page(root, learn), headers=headers)
    body = {"name": "gradserve", "version": __version__, "summary": SUMMARY, "links": urls}
    return JSONResponse(body, headers=headers)

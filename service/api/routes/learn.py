"""``GET /learn``: the page for learners, and its scripts and styles, all served by gradserve.

The page (``service/web/learn/``: plain HTML, CSS and ES modules, no build step) calls the same
endpoints as any client, from the same origin: /v1/gradients to solve a problem step by step,
/v1/problems to generate one, /v1/grade to check a student's answers. It is told two things
about the deployment, written into its ``<body>``: the modes it offers (`Settings.learn_solve`,
`Settings.learn_check`; with neither, there is no page) and whether API keys are configured, so
that it asks for one. Its Content-Security-Policy lets it load and call nothing but this origin:
offline by construction.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.settings import Settings

router = APIRouter()

WEB = Path(__file__).parents[2] / "web" / "learn"
"""The page's files."""

PAGE = "index.html"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
"""The assets served below /learn/, by suffix; the page itself is served at /learn alone."""

POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Nothing from another origin, no inline script or style: what the page needs and no more."""

HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def modes(settings: Settings) -> list[str]:
    """The modes of the page this deployment offers, in the page's order."""
    return [
        mode
        for mode, on in (("solve", settings.learn_solve), ("check", settings.learn_check))
        if on
    ]


def offered(request: Request) -> list[str]:
    settings: Settings = request.app.state.settings
    return modes(settings)


ASSETS: dict[str, bytes] = {
    path.name: path.read_bytes() for path in WEB.iterdir() if path.suffix in MEDIA_TYPES
}
"""The page's scripts and styles by name, read once: a request names one of these or gets a 404."""


TEMPLATE = (WEB / PAGE).read_text(encoding="utf-8")
"""The page, with the places for the deployment's modes and whether it needs a key."""


def page(page_modes: list[str], keys_required: bool) -> str:
    """The page, told the deployment's modes and whether it needs an API key."""
    return TEMPLATE.replace("__MODES__", escape(" ".join(page_modes))).replace(
        "__KEYS__", "required" if keys_required else "none"
    )


@router.get("/learn", include_in_schema=False, response_class=HTMLResponse)
async def learn(request: Request) -> Response:
    """The page for learners; a 404 where the deployment offers neither mode."""
    settings: Settings = request.app.state.settings
    page_modes = modes(settings)
    if not page_modes:
        raise HTTPException(status_code=404)
    return HTMLResponse(page(page_modes, bool(settings.api_keys)), headers=HEADERS)


@router.get("/learn/", include_in_schema=False)
async def learn_slash() -> Response:
    """/learn/ is /learn: the page's relative links are written for the path without a slash."""
    return RedirectResponse("../learn", status_code=308)


@router.get("/learn/{name}", include_in_schema=False)
async def learn_asset(request: Request, name: str) -> Response:
    """A script or style of the page."""
    body = ASSETS.get(name) if offered(request) else None
    if body is None:
        raise HTTPException(status_code=404)
    media_type = MEDIA_TYPES[Path(name).suffix]
    return Response(body, media_type=media_type, headers=HEADERS)

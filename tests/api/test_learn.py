"""GET /learn, the page for learners, through ASGI: the page and every file it loads are served
by the service itself, with a policy that lets it reach nothing else; the deployment's switches
turn each mode off, and both off leave no page and no link to it. The page at work, in a real
browser, is tested in tests/system/test_learn_page.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from service.api.routes.learn import WEB
from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def client_of(settings: Settings, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings), root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://gradserve.test")


def loaded(text: str) -> set[str]:
    """The files a page or module loads: src and href attributes (but links within the page),
    and ES module imports."""
    attributes = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    imports = re.findall(r'^import .* from "\./([^"]+)";$', text, re.MULTILINE)
    return {*attributes, *(f"learn/{name}" for name in imports)}


async def test_the_page_and_everything_it_loads_come_from_the_service(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/learn")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "https:" not in policy
    assert "*" not in policy
    seen: set[str] = set()
    waiting = loaded(page.text) - {"data:,", "./"}
    while waiting:
        reference = waiting.pop()
        seen.add(reference)
        assert reference.startswith("learn/"), f"loaded from elsewhere: {reference}"
        answer = await client.get(f"/{reference}")
        assert answer.status_code == 200, reference
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert answer.headers["x-content-type-options"] == "nosniff"
        if reference.endswith(".js"):
            waiting |= loaded(answer.text) - seen
    served = {f"learn/{path.name}" for path in WEB.iterdir() if path.suffix in (".js", ".css")}
    assert seen == served, "every file of service/web/learn is loaded, and nothing else"


def test_no_file_of_the_page_names_another_origin() -> None:
    for path in WEB.iterdir():
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path


async def test_the_page_says_which_modes_and_whether_a_key_is_needed(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/learn")).text
    assert 'data-modes="solve check"' in page
    assert 'data-keys="none"' in page


@pytest.mark.parametrize(
    ("solve", "check", "modes"),
    [
        pytest.param(True, False, "solve", id="solve-only"),
        pytest.param(False, True, "check", id="check-only"),
    ],
)
async def test_a_deployment_turns_a_mode_off(solve: bool, check: bool, modes: str) -> None:
    async with client_of(Settings(learn_solve=solve, learn_check=check)) as client:
        page = await client.get("/learn")
    assert page.status_code == 200
    assert f'data-modes="{modes}"' in page.text


async def test_both_modes_off_leave_no_page_and_no_link() -> None:
    async with client_of(Settings(learn_solve=False, learn_check=False)) as client:
        assert (await client.get("/learn")).status_code == 404
        assert (await client.get("/learn/app.js")).status_code == 404
        links = (await client.get("/")).json()["links"]
        html = (await client.get("/", headers={"Accept": BROWSER_ACCEPT})).text
    assert "help" not in links
    assert "/learn" not in html


async def test_the_front_door_links_the_page_first(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert next(iter(answer.json()["links"].items())) == ("help", "/learn")
    assert answer.headers["link"].startswith('</learn>; rel="help"')
    html = (await client.get("/", headers={"Accept": BROWSER_ACCEPT})).text
    assert html.index('href="/learn"') < html.index('href="/docs"')


async def test_the_link_follows_the_root_path() -> None:
    async with client_of(Settings(), root_path="/api") as client:
        answer = await client.get("/api/")
    assert answer.json()["links"]["help"] == "/api/learn"


async def test_the_page_needs_no_key_but_asks_for_one_where_keys_are_configured() -> None:
    async with client_of(Settings(api_keys={"k3y-of-a-student": "grade"})) as client:
        page = await client.get("/learn")
        script = await client.get("/learn/app.js")
        computed = await client.post("/v1/gradients", json={})
    assert (page.status_code, script.status_code) == (200, 200)
    assert 'data-keys="required"' in page.text
    assert computed.status_code == 401


async def test_a_trailing_slash_leads_to_the_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/learn/")
    assert answer.status_code == 308
    assert httpx.URL("http://gradserve.test/learn/").join(answer.headers["location"]).path == (
        "/learn"
    )


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/learn/index.html", id="the-template"),
        pytest.param("/learn/nothing.js", id="no-such-file"),
        pytest.param("/learn/..%2F..%2Fsettings.py", id="traversal"),
        pytest.param("/learn/%2Fetc%2Fpasswd", id="absolute"),
    ],
)
async def test_only_the_pages_scripts_and_styles_are_served(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 404


def test_the_page_is_packaged() -> None:
    """hatchling puts every file under service/ in the wheel, the page's included: the image
    serves it too."""
    assert (WEB / "index.html").is_file()
    assert Path(WEB).is_relative_to(Path(__file__).parents[2] / "service")

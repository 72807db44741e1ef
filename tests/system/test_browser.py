"""A real browser on another origin: headless Chromium (Debian's chromium, driven by Playwright)
loads a page from one loopback origin that imports the JavaScript client (clients/js) and calls
a real gradserve process on another, allowed by GRADSERVE_CORS_ORIGINS, with an API key. From
the allowed origin the answers are the reference's, and error answers are readable problem
details; from an origin not allowed the browser keeps the answer from the page, and the client
says CORS. Without chromium the test fails, saying how to install it (tests/system/conftest.py):
it is never skipped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from service.api import examples
from tests.support.generate import as_json, random_problem
from tests.support.oracle import reference, relative_error
from tests.support.server import free_port, running_server

pytestmark = pytest.mark.slow

CLIENT = Path(__file__).parents[2] / "clients" / "js"
KEY = "browser-key-5d1c07"

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>gradserve from another origin</title>
<script type="module">
  import * as gradserve from "/src/index.js";

  // Call `method` of a client of `baseUrl` with `args`: { value } or what its error carries.
  window.call = async (baseUrl, apiKey, method, args) => {
    const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 };
    const client = new gradserve.GradserveClient({ baseUrl, apiKey, retry });
    try {
      return { value: await client[method](...args) };
    } catch (error) {
      const header = (name) => error.response?.headers.get(name) ?? null;
      return {
        error: {
          name: error.name, message: error.message, attempts: error.attempts,
          status: error.status ?? null, type: error.type ?? null, errors: error.errors ?? null,
          origin: error.origin ?? null,
          requestId: header("x-request-id"), challenge: header("www-authenticate"),
        },
      };
    }
  };
</script>
"""
"""The page: the client imported as an ES module, one function for the test to call."""


class PageHandler(SimpleHTTPRequestHandler):
    """`PAGE` at /, and the client's files below it (/src/index.js)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(CLIENT), **kwargs)

    def do_GET(self) -> None:
        if self.path != "/":
            super().do_GET()
            return
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows no request lines."""


@contextmanager
def page_origin() -> Iterator[str]:
    """An HTTP server of `PageHandler` on a free loopback port, in a thread; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    """Two page origins: the one the service allows, and one it does not."""
    with ExitStack() as stack:
        yield stack.enter_context(page_origin()), stack.enter_context(page_origin())


@pytest.fixture(scope="module")
def service(origins: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gradserve allowing the first origin, with an instructor key; yields its URL."""
    allowed, _ = origins
    env = {"GRADSERVE_CORS_ORIGINS": allowed, "GRADSERVE_API_KEYS": json.dumps({KEY: "instructor"})}
    log = tmp_path_factory.mktemp("browser") / "gradserve.log"
    with running_server(log=log, env=env) as server:
        yield server.url


def open_page(browser: Browser, origin: str) -> Page:
    page = browser.new_page()
    page.goto(f"{origin}/")
    page.wait_for_function("typeof window.call === 'function'")
    return page


@pytest.fixture
def allowed_page(browser: Browser, origins: tuple[str, str]) -> Iterator[Page]:
    page = open_page(browser, origins[0])
    yield page
    page.close()


def call(page: Page, base_url: str, method: str, *args: Any, key: str | None = KEY) -> Any:
    """`method` of a client in the page; its { value } or { error }."""
    return page.evaluate(
        "([baseUrl, apiKey, method, args]) => window.call(baseUrl, apiKey, method, args)",
        [base_url, key, method, list(args)],
    )


def test_gradients_from_an_allowed_origin(allowed_page: Page, service: str) -> None:
    problem = random_problem(np.random.default_rng(13), N=5, D_in=4, H=6, D_out=3)
    answer = call(allowed_page, service, "gradients", as_json(problem))["value"]
    loss, gradients = reference(**problem)
    assert relative_error(answer["loss"], loss) < 1e-12
    for name, expected in gradients.items():
        assert relative_error(answer["gradients"][name], expected) < 1e-12, name
    worked = call(allowed_page, service, "gradients", examples.REQUEST)
    assert worked == {"value": examples.RESPONSE}


def test_a_grade_from_an_allowed_origin(allowed_page: Page, service: str) -> None:
    options = {"json": examples.GRADE_REQUEST}
    answer = call(allowed_page, service, "request", "POST", "/v1/grade", options)
    assert answer == {"value": examples.GRADE_RESPONSE}


def test_an_invalid_problem_is_readable_problem_details(allowed_page: Page, service: str) -> None:
    error = call(allowed_page, service, "gradients", examples.SHAPE_MISMATCH_REQUEST)["error"]
    assert (error["name"], error["status"], error["attempts"]) == ("ValidationError", 422, 1)
    assert error["type"] == "urn:gradserve:problem:invalid-request"
    assert [fault["pointer"] for fault in error["errors"]] == ["/W1"]
    assert error["requestId"]


def test_a_missing_key_is_readable_with_its_challenge(allowed_page: Page, service: str) -> None:
    error = call(allowed_page, service, "gradients", examples.REQUEST, key=None)["error"]
    assert (error["name"], error["status"]) == ("ClientError", 401)
    assert error["challenge"] == 'Bearer realm="gradserve"'


def test_an_origin_not_allowed_is_refused_and_named(
    browser: Browser, origins: tuple[str, str], service: str
) -> None:
    _, refused = origins
    page = open_page(browser, refused)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        error = call(page, service, "gradients", examples.REQUEST)["error"]
    finally:
        page.close()
    assert (error["name"], error["origin"], error["attempts"]) == ("CorsError", refused, 1)
    assert f"origin {refused}" in error["message"]
    assert f"{service}/v1/gradients" in error["message"]
    assert "CORS" in error["message"]
    assert any("blocked by CORS policy" in text for text in console), console


def test_an_unreachable_service_is_no_cors_refusal(allowed_page: Page) -> None:
    """The client's check tells a CORS refusal from a service that is not there."""
    error = call(allowed_page, f"http://127.0.0.1:{free_port()}", "health")["error"]
    assert (error["name"], error["attempts"]) == ("ConnectError", 2)

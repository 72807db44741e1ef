"""Fixtures of the system tests: a real browser, Debian's chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium; without it the test fails, saying how to install it: never skipped.

    One a module: Playwright's synchronous API runs an event loop of its own while it is open,
    which the anyio tests of other modules must not find running."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: apt-get install chromium (Debian's; CI's .ci/run "
            "installs it). Playwright drives it; its own browser download is not used."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()

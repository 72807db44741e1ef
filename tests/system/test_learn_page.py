"""The page for learners in a real browser (Debian's chromium, driven by Playwright), against a
real gradserve process: a problem typed in three formats is solved, and the numbers read back
from the page are autograd's (tests/support/oracle.py), never the service's own; the ReLU's mask
is marked where H <= 0; an entry of dloss/dW1 is traced back; a dropped factor 2 is diagnosed,
in English and in Chinese; a deployment that offers checking alone, with keys, is checked with
a student's key and never asked for a reference; the page works with every other host blocked,
with the keyboard alone and at phone width; axe-core finds nothing serious or critical. The
screenshots go to docs/screenshots/, which the README shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from service.api import examples
from tests.support.generate import random_problem
from tests.support.oracle import reference
from tests.support.server import running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "tools" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 740}
STUDENT_KEY = "k3y-of-a-student-0d41"
TIMEOUT_MS = 10_000

Matrix = list[list[float]]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gradserve with its default settings: both modes, no keys."""
    log = tmp_path_factory.mktemp("learn") / "gradserve.log"
    with running_server(log=log) as server:
        yield server.url


@pytest.fixture(scope="module")
def checking_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A course's deployment: checking only, and a key for each student, of the grade role."""
    env = {
        "GRADSERVE_LEARN_SOLVE": "false",
        "GRADSERVE_API_KEYS": json.dumps({STUDENT_KEY: "grade"}),
    }
    log = tmp_path_factory.mktemp("learn-check") / "gradserve.log"
    with running_server(log=log, env=env) as server:
        yield server.url


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, service: str) -> Page:
    """The page, with the worked example loaded and solved."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{service}/learn")
    solved(page)
    assert not errors
    return page


def solved(page: Page) -> None:
    expect(page.locator("#service-status")).to_have_attribute("data-kind", "ok")
    page.locator('table[data-quantity="grad-W1"]').wait_for()


def matrix(page: Page, quantity: str) -> Matrix:
    """The numbers of a table of the page, as shown."""
    rows = page.locator(f'table[data-quantity="{quantity}"] tbody tr').all()
    return [[float(text) for text in row.locator(".num").all_inner_texts()] for row in rows]


def marked(page: Page, quantity: str, kind: str) -> set[tuple[int, int]]:
    """The (row, column) of the cells of a table that carry a mark: masked, wrong, traced."""
    cells = page.locator(f'table[data-quantity="{quantity}"] td.{kind}').all()
    return {
        (int(cell.get_attribute("data-r") or ""), int(cell.get_attribute("data-c") or ""))
        for cell in cells
    }


def type_problem(page: Page, fields: dict[str, str]) -> None:
    for name, text in fields.items():
        page.locator(f"#in-{name}").fill(text)


def numpy_print(matrix: np.ndarray) -> str:
    return np.array2string(matrix)


def csv_rows(matrix: np.ndarray) -> str:
    return "\n".join(",".join(repr(float(x)) for x in row) for row in matrix)


def with_zero_and_negative_in_h(seed: int) -> dict[str, np.ndarray]:
    """An integer problem whose H = X W1 has an exact zero and a negative entry."""
    rng = np.random.default_rng(seed)
    while True:
        problem = random_problem(rng, N=3, D_in=2, H=4, D_out=2, integers=True)
        H = problem["X"] @ problem["W1"]
        if (H == 0).any() and (H < 0).any() and (H > 0).any():
            return problem


def test_a_typed_problem_is_solved_as_autograd_solves_it(page: Page) -> None:
    rng = np.random.default_rng(14)
    problem = {
        name: np.round(matrix, 2)
        for name, matrix in random_problem(rng, N=4, D_in=3, H=5, D_out=2).items()
    }
    type_problem(
        page,
        {
            "X": json.dumps(problem["X"].tolist()),
            "Y": numpy_print(problem["Y"]),
            "W1": csv_rows(problem["W1"]),
            "W2": f"array({problem['W2'].tolist()})",
        },
    )
    expect(page.locator("#st-Y")).to_have_text("4 × 2")
    expect(page.locator('table[data-quantity="X"] tbody tr')).to_have_count(4)
    solved(page)
    loss, gradients = reference(**problem)
    H = problem["X"] @ problem["W1"]
    forward = {"H": H, "H_relu": np.maximum(H, 0)}
    forward["Y_pred"] = forward["H_relu"] @ problem["W2"]
    # Shown to 6 significant digits: within 5e-6 of each entry, relatively.
    for name, expected in forward.items():
        np.testing.assert_allclose(matrix(page, name), expected, rtol=1e-5, atol=1e-12)
    for name, expected in gradients.items():
        np.testing.assert_allclose(matrix(page, f"grad-{name}"), expected, rtol=1e-5, atol=1e-12)
    shown_loss = float(page.locator('output[data-quantity="loss"]').inner_text())
    assert shown_loss == pytest.approx(loss, rel=1e-5)


def test_the_relu_mask_is_marked_with_exact_zeros_apart(page: Page) -> None:
    problem = with_zero_and_negative_in_h(seed=7)
    type_problem(page, {name: json.dumps(matrix.tolist()) for name, matrix in problem.items()})
    expect(page.locator('table[data-quantity="X"] tbody tr')).to_have_count(3)
    solved(page)
    H = problem["X"] @ problem["W1"]
    _, gradients = reference(**problem)
    masked = {(int(i), int(j)) for i, j in zip(*np.nonzero(H <= 0), strict=True)}
    zeros = {(int(i), int(j)) for i, j in zip(*np.nonzero(H == 0), strict=True)}
    for quantity in ("H", "H_relu", "grad-H_relu", "grad-H"):
        assert marked(page, quantity, "masked") == masked, quantity
        assert marked(page, quantity, "zero") == zeros, quantity
    for quantity in ("H", "grad-H"):
        cells = page.locator(f'table[data-quantity="{quantity}"] td.masked')
        marks = cells.locator(".mark").all_inner_texts()
        assert sorted(marks) == sorted("○" if H[cell] == 0 else "✕" for cell in masked)
    # dloss/dH shows what the mask zeroes: dloss/dH_relu's value, struck through, then 0.
    for i, j in masked:
        cell = page.locator(f'table[data-quantity="grad-H"] td[data-r="{i}"][data-c="{j}"]')
        assert float(cell.locator("del").inner_text()) == gradients["H_relu"][i, j]
        assert float(cell.locator(".num").inner_text()) == 0.0
    np.testing.assert_array_equal(matrix(page, "grad-H"), gradients["H"])


def test_an_entry_of_dw1_is_followed_back_with_the_keyboard(page: Page) -> None:
    entry = page.locator('table[data-quantity="grad-W1"] button.entry[data-r="1"][data-c="0"]')
    entry.focus()
    page.keyboard.press("Enter")
    trace = page.locator("#trace")
    expect(trace.locator("h5")).to_have_text("Where dloss/dW1 at row 2, column 1 comes from")
    # dloss/dW1[2, 1] = X[1, 2] dloss/dH[1, 1] + X[2, 2] dloss/dH[2, 1] = 2 * 2 + (-1) * 2 = 2.
    expect(trace.locator("code.sum")).to_have_text(
        "dloss/dW1[2, 1] = X[1, 2] · dloss/dH[1, 1] + X[2, 2] · dloss/dH[2, 1] = 2 · 2 + -1 · 2 = 2"
    )
    assert marked(page, "X", "traced") == {(0, 1), (1, 1)}
    assert marked(page, "grad-H", "traced") == {(0, 0), (1, 0)}
    assert marked(page, "grad-W1", "traced") == {(1, 0)}
    expect(page.locator("button.entry[aria-pressed=true]")).to_have_count(1)
    focused = page.evaluate("[document.activeElement.dataset.r, document.activeElement.dataset.c]")
    assert focused == ["1", "0"], "the chosen entry keeps the focus"


def test_the_services_shape_message_is_shown_under_the_field(page: Page) -> None:
    page.locator("#in-W1").fill("[[1, -1, 2]]")
    message = examples.PROBLEMS[422]["errors"][0]["detail"]
    expect(page.locator("#st-W1")).to_have_text(f"⚠ {message}")
    expect(page.locator("#in-W1")).to_have_attribute("aria-invalid", "true")
    page.locator("#in-X").fill("[[1, 2], [3, x]]")
    expect(page.locator("#st-X")).to_contain_text("“x” is not a number")


def check_dropped_factor_2(page: Page) -> None:
    """In check mode, submit the worked example's dloss/dY_pred without its factor 2, and the
    dloss/dW2 that follows from it."""
    page.locator("#mode-check").check()
    expect(page.locator("#sh-Y_pred")).to_have_text("Expected shape 2 × 1.")
    page.locator("#ans-Y_pred").fill("[[1], [1]]")
    page.locator("#ans-W2").fill("[[5], [1], [7]]")
    page.locator("#check-button").click()
    page.locator(".verdicts").wait_for()


def test_a_dropped_factor_2_is_diagnosed_in_english_then_chinese(page: Page, service: str) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    check_dropped_factor_2(page)
    Y_pred = page.locator('.verdict[data-quantity="Y_pred"]')
    expect(Y_pred).to_have_attribute("data-status", "incorrect")
    expect(Y_pred.locator("h4")).to_have_text("✗ dloss/dY_pred: wrong (0 / 1)")
    expect(Y_pred.locator(".message")).to_have_text(
        "dloss/dY_pred is wrong in 2 of 2 entries, the first at row 1, column 1."
    )
    expect(Y_pred.locator('[data-code="missing_factor_2"] .diagnosis')).to_have_text(
        "This is half the right answer: dloss/dY_pred = 2 (Y_pred - Y), and the factor 2 seems "
        "to be missing."
    )
    assert marked(page, "answer-Y_pred", "wrong") == {(0, 0), (1, 0)}
    W2 = page.locator('.verdict[data-quantity="W2"]')
    expect(W2.locator(".follows")).to_have_text("↳ Follows from your dloss/dY_pred")
    expect(page.locator(".score")).to_have_text("Score: 0.5 of 6")
    assert "/v1/gradients" not in asked, "check mode asked for the reference"

    page.locator("#language").select_option("zh")
    expect(Y_pred.locator('[data-code="missing_factor_2"] .diagnosis')).to_have_text(
        "这是正确答案的一半：dloss/dY_pred = 2 (Y_pred - Y)，似乎漏掉了系数 2。"
    )
    expect(Y_pred.locator(".status-text")).to_have_text("错误")
    expect(page.locator("h1")).to_have_text("反向传播，一步一步")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "/v1/gradients" not in asked


def test_a_chinese_browser_gets_chinese(browser: Browser, service: str) -> None:
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{service}/learn")
        expect(page.locator("#language")).to_have_value("zh")
        expect(page.locator("#mode-heading")).to_have_text("2. 查看解答，或检查你的答案")
        expect(page.locator("#service-status")).to_have_text("已求解：loss = 2。")
        page.locator("#language").select_option("en")
        expect(page.locator("#service-status")).to_have_text("Solved: loss = 2.")
    finally:
        context.close()


def test_a_course_that_only_checks_asks_for_the_students_key(
    context: BrowserContext, checking_service: str
) -> None:
    page = context.new_page()
    asked: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda request: asked.append(
            (urlsplit(request.url).path, request.headers.get("authorization"))
        ),
    )
    page.goto(f"{checking_service}/learn")
    expect(page.locator("#mode-choice")).to_be_hidden()
    expect(page.locator("#solve")).to_be_hidden()
    expect(page.locator("#service-status")).to_contain_text("401")
    page.locator("#api-key").fill(STUDENT_KEY)
    page.locator("#api-key").press("Enter")
    expect(page.locator("#service-status")).to_have_text("The service accepts this problem.")
    page.locator("#ans-loss").fill("2")
    page.locator("#ans-loss").press("Enter")  # submits the form, as a keyboard user would
    expect(page.locator('.verdict[data-quantity="loss"]')).to_have_attribute(
        "data-status", "correct"
    )
    paths = {path for path, _ in asked}
    assert "/v1/gradients" not in paths
    assert ("/v1/grade", f"Bearer {STUDENT_KEY}") in asked
    assert page.evaluate("sessionStorage.getItem('gradserve-learn-api-key')") == STUDENT_KEY


def test_a_generated_problem_is_graded_by_its_id(page: Page) -> None:
    bodies: list[Any] = []
    page.on(
        "request",
        lambda request: (
            bodies.append(request.post_data_json) if request.url.endswith("/v1/grade") else None
        ),
    )
    page.locator("#generate summary").click()
    page.locator("#seed").fill("student-042")
    page.locator("#generate-form button").click()
    expect(page.locator("#problem-note")).to_contain_text("Generated problem gsp1.")
    solved(page)
    assert matrix(page, "X") == examples.PROBLEM["X"]
    page.locator("#mode-check").check()
    page.locator("#ans-loss").fill("1")
    page.locator("#check-button").click()
    page.locator(".verdicts").wait_for()
    assert bodies[-1]["problem"] == {"problem_id": examples.PROBLEM["problem_id"]}


def test_the_page_is_one_click_from_the_front_door_with_every_other_host_blocked(
    context: BrowserContext, service: str
) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(service))
    elsewhere: list[str] = []

    def only_the_service(route: Route, request: Request) -> None:
        url = urlsplit(request.url)
        if f"{url.scheme}://{url.netloc}" == origin or url.scheme == "data":
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_service)
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{service}/")
    page.get_by_role("link", name="For learners").click()
    page.wait_for_url(f"{service}/learn")
    solved(page)
    check_dropped_factor_2(page)
    expect(page.locator('[data-code="missing_factor_2"]').first).to_be_visible()
    assert elsewhere == [], "the page tried to reach another host"
    assert failed == []


def test_the_page_fits_a_phone(browser: Browser, service: str) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{service}/learn")
        solved(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        check_dropped_factor_2(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def axe_findings(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical, on the page as it is."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: `make test` installs it (npm ci in tools/a11y)")
    page.evaluate(AXE.read_text())
    results: dict[str, Any] = page.evaluate("axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_serious_or_critical(
    browser: Browser, service: str, viewport: ViewportSize
) -> None:
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.goto(f"{service}/learn")
        solved(page)
        page.locator('button.entry[data-r="0"][data-c="0"]').click()
        assert axe_findings(page) == []
        check_dropped_factor_2(page)
        assert axe_findings(page) == []
        page.locator("#language").select_option("zh")
        expect(page.locator(".status-text").nth(1)).to_have_text("错误")
        assert axe_findings(page) == []
    finally:
        context.close()


def test_screenshots(browser: Browser, service: str) -> None:
    """The worked example solved, one entry of dloss/dW1 traced, and checked with a dropped
    factor 2, at desktop and phone widths: for a reviewer, without running anything."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, locale="en-GB")
        try:
            page = context.new_page()
            page.goto(f"{service}/learn")
            solved(page)
            page.locator('button.entry[data-r="0"][data-c="2"]').click()
            expect(page.locator("#trace h5")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / f"learn-solve-{name}.png", full_page=True)
            check_dropped_factor_2(page)
            page.screenshot(path=SCREENSHOTS / f"learn-check-{name}.png", full_page=True)
        finally:
            context.close()
    for path in SCREENSHOTS.glob("learn-*.png"):
        assert path.stat().st_size > 10_000, path

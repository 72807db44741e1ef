"""The layers of service/: core and grading import nothing of the web, and the import contracts
that `make lint` checks (pyproject.toml, `[tool.importlinter]`) fail when one is broken."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import service.core
import service.grading

ROOT = Path(__file__).parents[1]
WEB_PACKAGES = ("fastapi", "starlette", "pydantic", "pydantic_core", "pydantic_settings", "uvicorn")
PURE_MODULES = [
    module.name
    for package in (service.core, service.grading)
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
]


def imported_by(module: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing `module`."""
    code = f"import sys, {module}; print(' '.join({{name.split('.')[0] for name in sys.modules}}))"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(completed.stdout.split())


def test_the_pure_layers_hold_modules() -> None:
    assert {"service.core.network", "service.grading.grader"} <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_web_package(module: str) -> None:
    assert imported_by(module).isdisjoint(WEB_PACKAGES)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the copy of the project in `tree`, with that copy's service/ imported."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """service/ and pyproject.toml, copied where a test may break them."""
    shutil.copytree(ROOT / "service", tmp_path / "service")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line"),
    [
        pytest.param("core/network.py", "import fastapi", id="web-in-core"),
        pytest.param("grading/grader.py", "import pydantic", id="pydantic-in-grading"),
        pytest.param("core/workload.py", "import service.settings", id="settings-in-core"),
        pytest.param("core/network.py", "import service.grading.grader", id="core-above-grading"),
        pytest.param("api/errors.py", "import service.ops.auth", id="api-above-ops"),
    ],
)
def test_a_broken_contract_fails_the_linter(project_copy: Path, module: str, line: str) -> None:
    assert lint_imports(project_copy).returncode == 0
    path = project_copy / "service" / module
    path.write_text(f"{line}\n{path.read_text()}")
    linted = lint_imports(project_copy)
    assert linted.returncode != 0
    assert "BROKEN" in linted.stdout

"""The README's examples print what the README says they print, against a live server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

READMES = {
    "client": Path(__file__).parent.parent / "README.md",
    "project": Path(__file__).parents[3] / "README.md",
}
EXAMPLES = {
    f"{name}-{index}": example
    for name, readme in READMES.items()
    for index, example in enumerate(
        re.findall(r"```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", readme.read_text(), re.S)
    )
}


@pytest.mark.parametrize(("code", "output"), EXAMPLES.values(), ids=EXAMPLES.keys())
def test_readme_example_prints_what_the_readme_says(
    live_server: str, code: str, output: str
) -> None:
    assert "http://127.0.0.1:8000" in code
    code = code.replace("http://127.0.0.1:8000", live_server)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == output

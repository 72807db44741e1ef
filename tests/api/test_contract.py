"""The contract vectors: as the generator writes them, answered by the app, and sent with curl."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract import generate
from tests.contract.vectors import DIRECTORY, Vector, check_answer, load_vectors

VECTORS = load_vectors()


def test_vectors_are_what_the_generator_writes() -> None:
    written = {path.name: path.read_text() for path in DIRECTORY.glob("*.json")}
    assert written == generate.files(), "run `make vectors` and commit the result"


def test_there_are_vectors_of_every_kind() -> None:
    statuses = {vector.response["status"] for vector in VECTORS}
    assert len(VECTORS) >= 20
    assert statuses == {200, 400, 404, 405, 415, 422}


def test_a_changed_number_is_caught() -> None:
    vector = next(v for v in VECTORS if v.name == "worked-example")
    answer = json.loads(json.dumps(vector.response["json"]))
    answer["gradients"]["W1"][1][2] += 1e-9
    assert check_answer(vector, 200, "application/json", answer) == [
        "/gradients/W1/1/2: -1.999999999 != -2.0"
    ]


def send(vector: Vector) -> dict[str, Any]:
    """httpx keyword arguments for the vector's request."""
    request = vector.request
    headers = {"Content-Type": request.get("content_type", "application/json")}
    if "json" in request:
        return {"content": json.dumps(request["json"]).encode(), "headers": headers}
    if "body" in request:
        return {"content": request["body"].encode(), "headers": headers}
    return {}


@pytest.mark.anyio
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
async def test_app_answers_each_vector(client: httpx.AsyncClient, vector: Vector) -> None:
    response = await client.request(
        vector.request["method"], vector.request["path"], **send(vector)
    )
    problems = check_answer(
        vector, response.status_code, response.headers["content-type"], response.json()
    )
    assert problems == []


@pytest.mark.slow
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_curl_answers_each_vector(live_server: str, vector: Vector, tmp_path: Path) -> None:
    """Each vector sent by the curl command line, as a shell script would."""
    curl = shutil.which("curl")
    assert curl, "curl is not installed"
    request = vector.request
    command = [
        curl,
        "-sS",
        "-X",
        request["method"],
        "-o",
        str(tmp_path / "body"),
        "-w",
        "%{http_code} %{content_type}",
        f"{live_server}{request['path']}",
    ]
    if "json" in request or "body" in request:
        body = json.dumps(request["json"]) if "json" in request else request["body"]
        (tmp_path / "request").write_text(body)
        command += [
            "-H",
            f"Content-Type: {request.get('content_type', 'application/json')}",
            "--data-binary",
            f"@{tmp_path / 'request'}",
        ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    status, content_type = run.stdout.split(" ", 1)
    answer = json.loads((tmp_path / "body").read_text())
    assert check_answer(vector, int(status), content_type, answer) == []

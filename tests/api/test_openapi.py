"""The OpenAPI document as generators read it: stable operation ids, request and answer schemas
apart where they differ, typed batch items, one answer schema per grade operation, the headers of
refusals, servers and a licence; and valid under the OpenAPI 3.1 schema (`make lint` also runs
Redocly's linter and openapi-generator's validator)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from service.api import examples

pytestmark = pytest.mark.anyio

OPERATIONS = {
    ("post", "/v1/gradients"): "gradients",
    ("post", "/v1/gradients/batch"): "gradients_batch",
    ("post", "/v1/problems"): "create_problem",
    ("post", "/v1/grade"): "grade",
    ("post", "/v1/grade/gradescope"): "grade_gradescope",
    ("post", "/v1/grade/prairielearn"): "grade_prairielearn",
    ("post", "/v1/grade/batch"): "grade_batch",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/"): "index",
}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer: dict[str, Any] = (await client.get("/openapi.json")).json()
    return answer


def schema_of(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)


async def test_every_operation_has_its_stable_id(document: dict[str, Any]) -> None:
    ids = {
        (method, path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert ids == OPERATIONS


async def test_a_spec_is_optional_in_its_defaults_as_asked_and_complete_as_answered(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/v1/problems"]["post"]["requestBody"]["content"]
    answer = document["paths"]["/v1/problems"]["post"]["responses"]["200"]["content"]
    asked = schema_of(document, body["application/json"]["schema"]["$ref"])
    generated = schema_of(document, answer["application/json"]["schema"]["$ref"])
    answered = schema_of(document, generated["properties"]["spec"]["$ref"])
    assert asked["required"] == ["seed", "shape"]
    assert set(answered["required"]) == set(answered["properties"]) == set(asked["properties"])
    assert examples.PROBLEM["spec"].keys() == set(answered["required"])


async def test_batch_problems_are_typed_as_gradients_requests(document: dict[str, Any]) -> None:
    batch = document["components"]["schemas"]["GradientsBatchRequest"]
    assert batch["properties"]["problems"]["items"] == {
        "$ref": "#/components/schemas/GradientsRequest"
    }


@pytest.mark.parametrize(
    ("path", "answers"),
    [
        ("/v1/grade", ["GradeOut"]),
        ("/v1/grade/gradescope", ["GradescopeResult"]),
        ("/v1/grade/prairielearn", ["PrairieLearnResult", "UngradablePrairieLearnResult"]),
    ],
)
async def test_each_grade_operation_answers_one_format(
    document: dict[str, Any], path: str, answers: list[str]
) -> None:
    """One format per operation: a generated client parses an answer by its operation, not by
    guessing among formats. PrairieLearn's two results differ in `gradable` (true or false)."""
    schema = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    refs = [option["$ref"] for option in schema.get("anyOf", [schema])]
    assert refs == [f"#/components/schemas/{name}" for name in answers]
    if len(answers) == 2:
        gradable = [schema_of(document, ref)["properties"]["gradable"]["const"] for ref in refs]
        assert gradable == [True, False]
    parameters = {
        parameter["name"] for parameter in document["paths"][path]["post"].get("parameters", [])
    }
    assert "format" not in parameters


@pytest.mark.parametrize(
    ("status", "header"),
    [(401, "WWW-Authenticate"), (429, "Retry-After"), (503, "Retry-After")],
)
async def test_refusals_document_their_headers(
    document: dict[str, Any], status: int, header: str
) -> None:
    for path, operations in document["paths"].items():
        if path.startswith("/v1/"):
            assert header in operations["post"]["responses"][str(status)]["headers"], path


async def test_the_document_names_its_server_and_licence(document: dict[str, Any]) -> None:
    assert document["servers"] == [
        {"url": "/", "description": "The server that serves this document."}
    ]
    assert document["info"]["license"] == {"name": "MIT", "identifier": "MIT"}

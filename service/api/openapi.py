"""The OpenAPI document: request bodies read by `service.api.body` declared with their examples.

FastAPI documents the request models it parses itself; gradserve parses its bodies off the event
loop (`service.api.body.json_body`), so each such route declares its body with `json_request_body`
and its error answers with `problem_responses`, and the app adds those models to the document's
components with `openapi_schema`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from service.api.errors import HTTP_TITLES, MEDIA_TYPE, ProblemDetails

REF_TEMPLATE = "#/components/schemas/{model}"


def json_request_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model`, with a worked example."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)},
                    "example": example,
                }
            },
        }
    }


PROBLEM_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'The scheme to authenticate with: Bearer realm="gradserve".',
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before the next request can succeed.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying: the service is full or stopping.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
"""The headers that come with a problem of each status, whichever endpoint answers it."""


def problem_responses(examples: dict[int, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problem details an endpoint may answer, one example each,
    with the headers of their status (`PROBLEM_HEADERS`)."""
    return {
        status: {
            "description": HTTP_TITLES[status],
            "content": {
                MEDIA_TYPE: {
                    "schema": {"$ref": REF_TEMPLATE.format(model=ProblemDetails.__name__)},
                    "example": example,
                }
            },
        }
        | ({"headers": PROBLEM_HEADERS[status]} if status in PROBLEM_HEADERS else {})
        for status, example in examples.items()
    }


def openapi_schema(
    app: FastAPI, inputs: list[type[BaseModel]], outputs: list[type[BaseModel]]
) -> dict[str, Any]:
    """The app's OpenAPI document, built once, with the JSON schemas of its request bodies
    (`inputs`) and answers (`outputs`, and `ProblemDetails`) as its components.

    A model whose schema differs as read and as written (defaults that are optional in a request
    are always present in an answer) gets two components, ``<Model>-Input`` and
    ``<Model>-Output`` (titled ``<Model>Input`` and ``<Model>Output``, as generated clients name
    their classes), and each request body and answer refers to its own."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
            license_info=app.license_info,
        )
        read: JsonSchemaMode = "validation"
        written: JsonSchemaMode = "serialization"
        answers: list[type[BaseModel]] = [*outputs, ProblemDetails]
        modes = [(model, read) for model in inputs] + [(model, written) for model in answers]
        refs, definitions = models_json_schema(modes, ref_template=REF_TEMPLATE)
        schemas = definitions["$defs"]
        for name, schema in schemas.items():
            if "-" in name:  # a model apart as read and as written: a title of its own for each,
                schema["title"] = name.replace("-", "")  # the generators name classes by it
        document.setdefault("components", {})["schemas"] = schemas
        by_name = {(model.__name__, mode): refs[model, mode]["$ref"] for model, mode in modes}
        for operations in document["paths"].values():
            for operation in operations.values():
                _refer(operation.get("requestBody", {}), by_name, "validation")
                _refer(operation["responses"], by_name, "serialization")
        app.openapi_schema = document
    return app.openapi_schema


def _refer(node: Any, by_name: dict[tuple[str, JsonSchemaMode], str], mode: JsonSchemaMode) -> None:
    """Point each reference to a model under `node` at the model's component for `mode`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            node["$ref"] = by_name.get((ref.removeprefix(REF_TEMPLATE.format(model="")), mode), ref)
        for value in node.values():
            _refer(value, by_name, mode)
    elif isinstance(node, list):
        for value in node:
            _refer(value, by_name, mode)

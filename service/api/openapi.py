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


def problem_responses(examples: dict[int, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problem details an endpoint may answer, one example each."""
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
        for status, example in examples.items()
    }


def openapi_schema(app: FastAPI, models: list[type[BaseModel]]) -> dict[str, Any]:
    """The app's OpenAPI document with `models` (and `ProblemDetails`) in its components;
    built once."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        documented: list[type[BaseModel]] = [*models, ProblemDetails]
        inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
            (model, "validation") for model in documented
        ]
        _, definitions = models_json_schema(inputs, ref_template=REF_TEMPLATE)
        document.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
        app.openapi_schema = document
    return app.openapi_schema

"""The HTTP API: schemas, codecs, request bodies, routes, errors and the OpenAPI document."""

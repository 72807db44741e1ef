"""The service's logs: one JSON object a line, on stdout, from every logger.

::

    {"level":"INFO","logger":"uvicorn.error","message":"Started server process [8]","time":"..."}
    {"level":"INFO","logger":"gradserve.access","message":"POST /v1/gradients 200",
     "request_id":"...","method":"POST","path":"/v1/gradients","route":"/v1/gradients",...}

`LOGGING_CONFIG` is the one configuration, for `logging.config.dictConfig`: python-json-logger's
formatter (`json_formatter`) on a single handler, the root logger's, so that the lines of every
logger are JSON, uvicorn's and any library's included. Each has `time` (UTC, ISO 8601),
`level`, `logger` and `message`, the fields a call adds with ``extra=`` (the access log's,
`service.ops.observability`), and an exception's traceback as `exc_info`.

It is applied wherever the app may be served from, so that the logs are the same either way:

- `gradserve serve` gives it to uvicorn (``log_config``), which applies it in its own process
  and again in each worker before the worker imports the app: the supervisor's lines are JSON too;
- `service.app` applies it when it is imported, before it builds ``app`` (`configure_logging`):
  ``uvicorn service.app:app`` has applied its own configuration by then, plain text, and has
  written nothing yet; this one replaces it. With uvicorn's own ``--workers`` or ``--reload``,
  the supervisor, which never imports the app, still writes its few lines as plain text: serve
  several workers with ``gradserve serve --workers N``.

Applying it again is safe, as under `gradserve serve`: `logging.config.dictConfig` closes the
handlers configured before (uvicorn's write to the standard streams, which stay open), and
leaves every existing logger working (``disable_existing_loggers`` is off).

Levels: gradserve's loggers from INFO (the access log is INFO), uvicorn's from INFO (its start
and stop; ``uvicorn --log-level`` still sets that of `uvicorn.error`), every other from WARNING.
uvicorn's own access log is off whichever way the app is served: ``uvicorn.access`` has no
handler, so uvicorn formats nothing for it; gradserve writes its own, which has the request id,
the route, the duration and the size (`Settings.access_log`).
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

FIELDS = ("levelname", "name", "message")
"""The record's attributes every line has, renamed by `RENAMED`; `time` comes after them."""

RENAMED = {"levelname": "level", "name": "logger"}

NOT_FIELDS = (*RESERVED_ATTRS, "color_message")
"""Attributes of a record that are not fields of its line: the `logging.LogRecord`'s own and
uvicorn's ``extra={"color_message": ...}``, the message with terminal colours."""


def json_formatter() -> logging.Formatter:
    """python-json-logger's formatter for a line of `FIELDS`, the fields added with ``extra=``
    and `time`, serialized with orjson (as the API's answers are)."""
    return OrjsonFormatter(
        FIELDS, rename_fields=RENAMED, reserved_attrs=NOT_FIELDS, timestamp="time"
    )


LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": json_formatter}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["stdout"], "level": "WARNING"},
    "loggers": {
        "gradserve": {"level": "INFO"},
        # uvicorn's configuration gives these handlers of their own, in plain text: none here,
        # so that uvicorn's lines go to the root's handler.
        "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": False},
    },
}
"""The logging configuration of every process serving the app (the module docstring)."""


def configure_logging() -> None:
    """Apply `LOGGING_CONFIG` to this process, replacing any handler configured before."""
    logging.config.dictConfig(LOGGING_CONFIG)

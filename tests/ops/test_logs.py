"""The log lines' format and configuration, in this process; `test_observability` checks the
lines real servers write, started by `gradserve serve` and by uvicorn alone."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta

from service.ops.logs import LOGGING_CONFIG, configure_logging, json_formatter


def formatted(record: logging.LogRecord) -> dict[str, object]:
    line = json_formatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_line_has_its_time_level_logger_and_message() -> None:
    record = logging.makeLogRecord(
        {"name": "uvicorn.error", "levelno": logging.INFO, "levelname": "INFO", "msg": "Up [%d]"}
    )
    record.args = (8,)
    line = formatted(record)
    assert {key: line[key] for key in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "uvicorn.error",
        "message": "Up [8]",
    }
    logged_at = datetime.fromisoformat(str(line["time"]))
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)


def test_fields_given_with_extra_but_not_uvicorns_coloured_message() -> None:
    logger = logging.getLogger("tests.logs")
    record = logger.makeRecord(
        "tests.logs",
        logging.INFO,
        __file__,
        1,
        "GET / 200",
        (),
        None,
        extra={"status": 200, "color_message": "\x1b[32mGET\x1b[0m"},
    )
    line = formatted(record)
    assert line["status"] == 200
    assert "color_message" not in line
    assert set(line) == {"time", "level", "logger", "message", "status"}


def test_a_traceback_stays_on_the_line() -> None:
    try:
        raise ValueError("a fault")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.getLogger("service.api.handlers").makeRecord(
        "service.api.handlers", logging.ERROR, __file__, 1, "Failed", (), exc_info
    )
    line = formatted(record)
    assert line["level"] == "ERROR"
    assert "ValueError: a fault" in str(line["exc_info"])


def test_the_configuration_applies_again_and_keeps_the_root_handler_json() -> None:
    """As under `gradserve serve`, where uvicorn applies it and then the app's import does."""
    configure_logging()
    configure_logging()
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "stdout"]
    assert handler.formatter is not None
    assert type(handler.formatter) is type(json_formatter())
    assert logging.getLogger("gradserve.access").isEnabledFor(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    assert not access.hasHandlers()  # uvicorn then writes no access line of its own
    assert LOGGING_CONFIG["formatters"]["json"]["()"] is json_formatter  # not consumed

"""How the service logs: text for people, or one JSON object per line for a log shipper
(``IDSVC_LOG_FORMAT=json``), the same for idsvc's own loggers and uvicorn's."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from idsvc.core.times import rfc3339


class JsonLogFormatter(JsonFormatter):
    """``{"time": "2026-12-01T10:00:00.123456Z", "level": "INFO", "logger": "...", "message": "...", ...}``:
    times in RFC 3339 UTC like every answer; ``extra={...}`` fields become keys."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return rfc3339(datetime.fromtimestamp(record.created, UTC))


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the whole process (uvicorn takes it as ``log_config``)."""
    if log_format == "json":
        formatters: dict[str, Any] = {"default": {"()": JsonLogFormatter}, "access": {"()": JsonLogFormatter}}
    else:
        formatters = {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(asctime)s %(levelprefix)s %(name)s: %(message)s", "use_colors": None},
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": '%(asctime)s %(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'},
        }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }

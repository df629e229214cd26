"""Logging that never records credentials: query strings are cut from access-log lines.

The server refuses a token in a URL, but uvicorn writes the access-log line (with the full
path and query) for every request, refused ones included.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG


class RedactQueryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access records carry (client, method, path with query, http version, status).
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, separator, _query = args[2].partition("?")
            if separator:
                record.args = (*args[:2], f"{path}?[query removed]", *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQueryFilter}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    return config

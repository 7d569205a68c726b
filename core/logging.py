"""Structured logs: one line per request and per task, as JSON when LUCID_LOG_FORMAT=json."""

import json
import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.http.clients import client_address

request_logger = logging.getLogger("lucid.request")

_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """A JSON object per line: time, level, logger, message and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RequestLogMiddleware:
    """Log each request with its status, duration, client and the session and chunk it
    addressed: the service's one access log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        kwargs = request.resolver_match.kwargs if request.resolver_match else {}
        user = getattr(request, "user", None)
        request_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user": user.get_username() if user and user.is_authenticated else None,
                "client": client_address(request),
                "session_id": kwargs.get("session_id") or kwargs.get("pk"),
                "sequence": kwargs.get("sequence"),
            },
        )
        return response

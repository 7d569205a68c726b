"""/health and /metrics for the Celery roles, served by a small thread inside the process."""

import json
import logging
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import connections
from prometheus_client import CONTENT_TYPE_LATEST

from lucid.health import run_checks
from lucid.metrics import metrics_text

logger = logging.getLogger(__name__)


class RoleHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/health":
                healthy, checks = run_checks()
                body = json.dumps({"status": "ok" if healthy else "fail", "checks": checks})
                status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, "application/json", body.encode())
            elif self.path == "/metrics":
                self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, metrics_text())
            else:
                self._send(HTTPStatus.NOT_FOUND, "application/json", b'{"code": "not_found"}')
        finally:
            connections.close_all()

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        logger.debug(format, *args)


def role_http_start(*, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /health and /metrics on host:port from a daemon thread."""
    server = ThreadingHTTPServer((host, port), RoleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="role-http", daemon=True).start()
    logger.info("serving /health and /metrics on %s:%d", host, port)
    return server


def role_http_serve(**signal_kwargs) -> None:
    """A Celery role answers /health and /metrics on LUCID_HEALTH_PORT when it is set."""
    port = os.environ.get("LUCID_HEALTH_PORT")
    if port:
        role_http_start(host=os.environ.get("LUCID_BIND", "127.0.0.1"), port=int(port))

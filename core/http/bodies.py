"""Request bodies: read as the server hands them over, and never left unread behind a response.

A body comes with a Content-Length, or chunked. gunicorn undoes the chunked coding and marks its
input `wsgi.input_terminated`; Django reads a body only as far as its Content-Length, so a
chunked body is read from the server's input here.

A response sent before its request's body was read leaves the rest of the body on the
connection, where the client's next request is read from. gunicorn reads away only 64 KiB of it
after the response, then closes a connection it has just announced as `keep-alive`, and it drops
a `Connection` header the application sends. So `RequestBodyMiddleware` reads the rest before the
response, up to DRAIN_LIMIT, and beyond that sets CLOSE_CONNECTION in the WSGI environ for the
server to close the connection (lucid/gunicorn.conf.py makes gunicorn honour it).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.errors import ApplicationError
from core.sizes import MIB

# A recorder that sends a chunk somewhat over its session's chunk_size gets its 413 and keeps
# its connection; more is not worth a thread's time for a request already refused.
DRAIN_LIMIT = 16 * MIB
READ_PIECE = MIB
CLOSE_CONNECTION = "lucid.close_connection"
_BODY = "lucid.request_body"


class LengthRequired(ApplicationError):
    status_code = 411
    default_code = "length_required"


class IncompleteBody(ApplicationError):
    """The body ended, or broke off, before the end its Content-Length or chunks announced."""

    default_code = "incomplete_body"


class RequestBody:
    """One request's body, read in pieces; a body that ends before its announced end fails."""

    def __init__(self, request: HttpRequest) -> None:
        environ = request.META
        codings = environ.get("HTTP_TRANSFER_ENCODING", "")
        self.chunked = codings.rsplit(",", 1)[-1].strip().lower() == "chunked"
        declared = environ.get("CONTENT_LENGTH") or ""
        announced = not self.chunked and declared.isascii() and declared.isdigit()
        self.length = int(declared) if announced else None
        self.received = 0
        self._read: Callable[[int], bytes] | None = None
        if self.chunked and environ.get("wsgi.input_terminated"):
            self._read = environ["wsgi.input"].read
        elif self.length:
            self._read = request.read
        # Chunked, but not undone by the server (Django's runserver): its end cannot be found.
        self.undecodable = self.chunked and self._read is None
        self.finished = self._read is None and not self.chunked

    def read(self, size: int = READ_PIECE) -> bytes:
        """Up to `size` bytes of the body; b"" at its end."""
        if self._read is None:
            return b""
        try:
            piece = self._read(size)
        except Exception as error:  # the server's own errors for a body that broke off
            raise self._break_off() from error
        self.received += len(piece)
        if not piece:
            if self.length is not None and self.received < self.length:
                raise self._break_off()
            self.finished = True
        return piece

    def drain(self, limit: int) -> bool:
        """Read away the rest of the body, up to `limit` bytes; whether it all went."""
        if self.finished:
            return True
        if self._read is None or (self.length or 0) - self.received > limit:
            return False
        drained = 0
        try:
            while piece := self._read(min(READ_PIECE, limit + 1 - drained)):
                drained += len(piece)
                if drained > limit:
                    return False
        except Exception:
            return False
        self.finished = True
        return True

    def _break_off(self) -> IncompleteBody:
        """Stop reading a body that ended early; the error to raise."""
        self._read = None
        return IncompleteBody(
            "The body ended before the end its Content-Length or chunked coding announced; "
            "nothing of it was kept. Send it again."
        )


def _body_of(request: HttpRequest) -> RequestBody:
    """The request's one body reader, shared by the view and the middleware."""
    body = request.META.get(_BODY)
    if body is None:
        body = request.META[_BODY] = RequestBody(request)
    return body


def request_body(request: HttpRequest, *, required: bool = False) -> RequestBody:
    """The request's body; 411 when it cannot be read, or is `required` and its length unknown.

    Without Content-Length or chunked coding a request has no body: an empty one, unless
    `required`.
    """
    body = _body_of(request)
    if body.undecodable:
        raise LengthRequired(
            "This server does not undo chunked transfer coding here; send a Content-Length."
        )
    if required and body.length is None and not body.chunked:
        raise LengthRequired("Send the body with a Content-Length or Transfer-Encoding: chunked.")
    return body


class RequestBodyMiddleware:
    """Read away what the view left of the request's body, so the connection stays usable.

    A body too long for that (over DRAIN_LIMIT) or unreadable asks the server to close the
    connection after the response instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not _body_of(request).drain(DRAIN_LIMIT):
            request.META[CLOSE_CONNECTION] = True
        return response

"""gunicorn's HTTP/1 response, sending the status line and headers in the same write as the body's first bytes.

gunicorn writes the head and the body with two `sendall` calls: two system calls, two TCP segments and, on the
client, often two wake-ups for one small JSON response. Here the head waits for the first body bytes and leaves
with them; a response without a body (204, HEAD) sends it when it closes, and anything that writes to the socket
directly (sendfile, chunked framing) gets the head first. Measured with bench/claim.py (claim-next over HTTP,
five alternating pairs of runs against gunicorn's own Response): HTTP/SQL ratio +6 to +14 % at 16 clients; at one
client between −8 and +14 %.

`install()` makes gunicorn build this response (gunicorn.http.wsgi.create looks `Response` up when it is called);
it leaves gunicorn alone if its Response no longer has the methods this class relies on.
"""
from __future__ import annotations

from gunicorn import util
from gunicorn.http import wsgi


class CoalescingResponse(wsgi.Response):
    _pending_head: bytes | None = None

    def send_headers(self):
        if self.headers_sent:
            return
        head = self.default_headers()
        head.extend(["%s: %s\r\n" % (name, value) for name, value in self.headers])
        self._pending_head = util.to_bytestring("%s\r\n" % "".join(head), "latin-1")
        self.headers_sent = True

    def flush_head(self):
        head, self._pending_head = self._pending_head, None
        if head:
            util.write(self.sock, head)

    def _emit_body(self, data):
        head, self._pending_head = self._pending_head, None
        if head and not self.chunked:
            util.write(self.sock, head + data)
            return
        if head:
            util.write(self.sock, head)
        super()._emit_body(data)

    def sendfile(self, respiter):
        # gunicorn's sendfile calls send_headers, then writes framing and file bytes to the socket itself.
        original = self.send_headers

        def send_headers_now():
            original()
            self.flush_head()

        self.send_headers = send_headers_now
        try:
            return super().sendfile(respiter)
        finally:
            del self.send_headers

    def close(self):
        self.send_headers()
        self.flush_head()
        super().close()


REQUIRED = ("send_headers", "_emit_body", "sendfile", "close", "default_headers")


def install() -> bool:
    """Make gunicorn build CoalescingResponse; False (gunicorn untouched) if its Response has changed shape."""
    base = CoalescingResponse.__mro__[1]
    if not all(callable(getattr(base, name, None)) for name in REQUIRED) or not hasattr(wsgi, "create"):
        return False
    wsgi.Response = CoalescingResponse
    return True

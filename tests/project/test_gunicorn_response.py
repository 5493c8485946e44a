"""workflow_project.gunicorn_response: the head of a response leaves in the same write as its body.

Each test parses a real request with gunicorn's own parser from one end of a socket pair and answers through
gunicorn.http.wsgi.create (as the sync and gthread workers do), then reads what the other end received.
"""
import socket

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from workflow_project import gunicorn_response


class RecordingSocket:
    """The server end of the pair, counting the writes gunicorn makes."""

    def __init__(self, sock):
        self._sock = sock
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(wsgi, "Response", wsgi.Response)  # restored after the test
    assert gunicorn_response.install()
    assert wsgi.Response is gunicorn_response.CoalescingResponse


def serve(request: bytes, app_response):
    """Send `request`, answer it with `app_response(resp)`, return (writes, bytes the client received)."""
    client, server = socket.socketpair()
    try:
        client.sendall(request)
        cfg = Config()
        req = next(iter(RequestParser(cfg, server, ("127.0.0.1", 50000))))
        recorder = RecordingSocket(server)
        resp, _environ = wsgi.create(req, recorder, ("127.0.0.1", 50000), ("127.0.0.1", 8000), cfg)
        app_response(resp)
        resp.close()
        server.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        return recorder.writes, received
    finally:
        client.close()
        server.close()


GET = b"GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n"


def test_head_and_body_leave_in_one_write(installed):
    def app(resp):
        resp.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
        resp.write(b'{"id": 42}\n')

    writes, received = serve(GET, app)
    assert len(writes) == 1
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 11" in head
    assert body == b'{"id": 42}\n'


def test_a_response_without_body_sends_its_head_on_close(installed):
    writes, received = serve(GET, lambda resp: resp.start_response("204 No Content", []))
    assert len(writes) == 1
    assert received.startswith(b"HTTP/1.1 204 No Content\r\n") and received.endswith(b"\r\n\r\n")


def test_head_request_gets_the_head_only(installed):
    def app(resp):
        resp.start_response("200 OK", [("Content-Length", "5")])
        resp.write(b"hello")

    writes, received = serve(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n", app)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"\r\n\r\n")


def test_chunked_response_is_framed_after_its_head(installed):
    def app(resp):
        resp.start_response("200 OK", [("Content-Type", "text/plain")])  # no length: chunked on HTTP/1.1
        resp.write(b"first ")
        resp.write(b"second")

    _writes, received = serve(GET, app)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"6\r\nfirst \r\n6\r\nsecond\r\n0\r\n\r\n"


def test_sendfile_sends_the_head_before_the_file(installed, tmp_path):
    path = tmp_path / "static.txt"
    path.write_bytes(b"x" * 10000)

    def app(resp):
        resp.start_response("200 OK", [("Content-Length", "10000")])
        with open(path, "rb") as handle:
            assert resp.sendfile(wsgi.FileWrapper(handle))

    _writes, received = serve(GET, app)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"x" * 10000


def test_install_leaves_a_changed_gunicorn_alone(monkeypatch):
    monkeypatch.setattr(wsgi, "Response", wsgi.Response)
    monkeypatch.delattr(gunicorn_response.CoalescingResponse.__mro__[1], "_emit_body")
    stock = wsgi.Response
    assert gunicorn_response.install() is False
    assert wsgi.Response is stock


def test_the_worker_hook_installs_it(monkeypatch):
    import gc

    from workflow_project import gunicorn_config

    monkeypatch.setattr(wsgi, "Response", wsgi.Response)
    try:
        gunicorn_config.post_worker_init(worker=None)
    finally:
        gc.unfreeze()
    assert wsgi.Response is gunicorn_response.CoalescingResponse

"""A WSGI application with no work of its own, for tests of gunicorn's workers."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]

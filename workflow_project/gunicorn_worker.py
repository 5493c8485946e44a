"""A gunicorn sync worker that is woken alone for a new connection.

gunicorn's sync workers each wait for a connection with `select()` on the shared listening socket, so every new
connection wakes every idle worker: one accepts it, the others find nothing (EAGAIN) and go back to waiting. Each
of those wake-ups runs the worker loop in Python, and the worker that does accept rarely is the one whose memory
is still in the CPU's caches. With four workers and one client that cost about a third of the workers' CPU per
request (0.85–1.04 ms against 0.61 ms with a single worker, measured with bench/claim.py's HTTP claimer).

`ExclusiveAcceptWorker` waits with epoll and registers the listening sockets with EPOLLEXCLUSIVE (Linux 4.5+),
which wakes one waiting worker per event, as nginx does. Everything else (accepting, keep-alive rules, the
heartbeat, signals, graceful shutdown) is gunicorn's SyncWorker. Use it with
`--worker-class workflow_project.gunicorn_worker.ExclusiveAcceptWorker`; where epoll or EPOLLEXCLUSIVE is missing
it waits as gunicorn's sync worker does.
"""
from __future__ import annotations

import os
import select

from gunicorn.workers.sync import SyncWorker


def exclusive_wakeups_supported() -> bool:
    return hasattr(select, "epoll") and hasattr(select, "EPOLLEXCLUSIVE")


class ExclusiveAcceptWorker(SyncWorker):
    _poller = None

    def run(self):
        if exclusive_wakeups_supported():
            self._poller = select.epoll()
            self._listeners = {listener.fileno(): listener for listener in self.sockets}
            for fd in self._listeners:
                self._poller.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
            self._poller.register(self.PIPE[0], select.EPOLLIN)
        super().run()

    def wait(self, timeout):
        """What SyncWorker.wait returns: the ready listeners (and the signal pipe, drained), or None on timeout."""
        if self._poller is None:
            return super().wait(timeout)
        self.notify()
        ready = []
        for fd, _events in self._poller.poll(timeout):
            if fd == self.PIPE[0]:
                os.read(self.PIPE[0], 1)
                ready.append(fd)
            elif (listener := self._listeners.get(fd)) is not None and listener.fileno() != -1:
                ready.append(listener)
        return ready or None

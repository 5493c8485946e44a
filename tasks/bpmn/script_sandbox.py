"""Runs workflow model expressions and scripts in child processes bounded in CPU time and memory.

Hand-written rather than RestrictedPython, which we considered for the compile step: its policy is a deny-list
(names starting with `_`, a list of frame attributes) with guard hooks that we would still have to write
(`_getattr_` would become our attribute allow-list), it rewrites `+=`, item access and iteration into guard
calls on every operation, and its refusals would change the deploy-time messages clients already see. It
bounds neither CPU nor memory either, and that needs a separate process whatever compiles the code. So the
allow-list below (`unsafe_source`) stays the compile-time check, run in the web process and again here.

Why a process: a thread cannot be interrupted inside one C call (`10**10**10`, `"a" * 10**10`), and a
Python-level loop holds a web or worker thread until it ends. So each evaluation is sent, as one JSON line
over a pipe, to a long-lived child started with `python -I -S <this file>`: it imports only the standard
library (no Django, no inherited database connections, a fast start) and is never a fork of the web worker.
Before each evaluation the child sets its RLIMIT_CPU soft limit to the CPU time it has used so far plus the
limit (the kernel kills it with SIGXCPU) and RLIMIT_AS to its current address space plus the memory limit
(allocations then fail with MemoryError, reported as the memory limit). The parent also waits at most the
CPU limit plus DEADLINE_GRACE_SECONDS of wall-clock time, then kills the child. A child that hit a limit,
died or overran is discarded; the next evaluation starts a fresh one.

ScriptPool is thread-safe (gunicorn gthread workers, Celery threads) and holds at most `size` children;
a caller waits for a free one. Process variables are JSON values, so context and results cross the pipe
as JSON: a script may leave only JSON values behind (checked in the child, like the engine did before).

Request (one line):  {"mode": "eval"|"exec", "source": str, "context": {...}, "external": {...},
                      "cpu_seconds": float, "memory_bytes": int}
Reply (one line):    {"value": ...}  (eval; or {"opaque": {"truthy": bool, "repr": str}} for a non-JSON value)
                     {"context": {...}}  (exec)
                     {"raised": {"type": str, "message": str}}  the code raised
                     {"refused": str}  unsafe source, or a script left a non-JSON value
                     {"limit": "memory"}
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import math
import os
import resource
import select
import subprocess
import sys
import threading
import time
from typing import Any

SAFE_BUILTIN_NAMES = (
    "len",
    "min",
    "max",
    "sum",
    "abs",
    "round",
    "int",
    "float",
    "str",
    "bool",
    "list",
    "dict",
    "set",
    "tuple",
    "sorted",
    "any",
    "all",
    "range",
    "enumerate",
    "zip",
    "isinstance",
)
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES} | {
    "True": True,
    "False": False,
    "None": None,
}

# Wall-clock time the parent allows beyond the CPU limit before it kills a child: the child's start, the
# JSON round trip, and a machine busy with other work all take wall-clock time that is not the script's CPU.
DEADLINE_GRACE_SECONDS = 0.5
# Longest text of a non-JSON expression value kept for a timer's message (repr of what it gave).
OPAQUE_REPR_CHARS = 200
_READ_CHUNK = 1 << 16


class SandboxError(Exception):
    """Base of what an evaluation in the sandbox can end with, besides a value."""


class LimitExceeded(SandboxError):
    """The evaluation was stopped: `kind` is "cpu" or "memory"; `detail` says so for a human."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class ScriptRaised(SandboxError):
    """The expression or script raised `type_name` with `message`."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class ScriptRefused(SandboxError):
    """The source is not allowed, or a script left a value that is not JSON."""


# --- the allow-list, checked in the web process at deploy and run time, and again in the child ------------

# Attribute access is limited to the public methods of the values process variables can hold (they are JSON).
# An allow-list, not a deny-list: introspection such as generator.gi_frame.f_back reaches real builtins
# without any dunder name. str.format is excluded because "{0.__class__}".format(x) walks attributes too.
ALLOWED_ATTRIBUTES = frozenset(
    name for kind in (str, int, float, bool, list, dict) for name in dir(kind) if not name.startswith("_")
) - {"format", "format_map"}


@functools.lru_cache(maxsize=2048)
def unsafe_source(source: str, mode: str) -> tuple[str, int | None] | None:
    """Why `source` may not run in the sandbox, with its line, or None when it is acceptable."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        excerpt = source.strip() if len(source.strip()) <= 80 else source.strip()[:77] + "..."
        return f"invalid Python ({exc.msg}): {excerpt!r}", exc.lineno
    nodes = list(ast.walk(tree))
    # Attributes are checked last so that `__import__('os').system(...)` is reported for its worst part.
    for node in nodes:
        line = getattr(node, "lineno", None)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return "imports are not allowed in expressions or scripts", line
        if isinstance(node, ast.ClassDef):
            return "class definitions are not allowed in scripts", line
        if any(name.startswith("__") for name in _bound_names(node)):
            return f"the name '{_bound_names(node)[0]}' is not allowed in expressions or scripts", line
    for node in nodes:
        if isinstance(node, ast.Attribute) and node.attr not in ALLOWED_ATTRIBUTES:
            return f"the attribute '.{node.attr}' is not allowed in expressions or scripts", node.lineno
    return None


def _bound_names(node: ast.AST) -> list[str]:
    """The names a node reads or binds, dunder ones first."""
    if isinstance(node, ast.Name):
        names = [node.id]
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
        names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
        if not isinstance(node, ast.Lambda):
            names.append(node.name)
    else:
        return []
    return sorted(names, key=lambda name: not name.startswith("__"))


def non_json_value(value: Any, path: str = "") -> str | None:
    """Describe the first value that would not survive JSON storage, or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path or 'a value'} = {value}"
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if problem := non_json_value(item, f"{path}[{index}]"):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a non-string key {key!r} in {path or 'the variables'}"
            if problem := non_json_value(item, f"{path}.{key}" if path else key):
                return problem
        return None
    return f"{path or 'a value'} of type {type(value).__name__}"


# --- the parent side: a bounded pool of children ----------------------------------------------------------


class _Child:
    """One child process and the bytes read from it beyond the last reply."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            bufsize=0,
        )
        self.buffer = b""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def exchange(self, request: bytes, *, deadline_seconds: float) -> bytes | None:
        """Send one request line and return the reply line; None if the child died or overran (it is killed)."""
        try:
            self.process.stdin.write(request)
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        stdout = self.process.stdout.fileno()
        ends_at = time.monotonic() + deadline_seconds
        while b"\n" not in self.buffer:
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                self.kill()
                return None
            readable, _, _ = select.select([stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(stdout, _READ_CHUNK)
            if not chunk:  # the child died: SIGXCPU, or killed from outside
                self.kill()
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


class ScriptPool:
    """At most `size` sandbox children shared by the threads of one process."""

    def __init__(self, *, cpu_seconds: float, memory_mb: int, size: int) -> None:
        if cpu_seconds <= 0 or memory_mb <= 0 or size <= 0:
            raise ValueError("the script sandbox needs a positive CPU limit, memory limit and pool size")
        self.cpu_seconds = float(cpu_seconds)
        self.memory_bytes = int(memory_mb) * 1024 * 1024
        self.size = int(size)
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()

    def evaluate(self, source: str, context: dict, external: dict | None = None) -> Any:
        """The value of expression `source` over `context`; JSON values come back as such."""
        reply = self._run("eval", source, context, external)
        if "opaque" in reply:
            return OpaqueValue(**reply["opaque"])
        return reply["value"]

    def execute(self, source: str, context: dict, external: dict | None = None) -> dict:
        """Run script `source` over `context`; returns the variables it leaves (callables and builtins dropped)."""
        return self._run("exec", source, context, external)["context"]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()

    def _run(self, mode: str, source: str, context: dict, external: dict | None) -> dict:
        request = (
            json.dumps(
                {
                    "mode": mode,
                    "source": source,
                    "context": context,
                    "external": external or {},
                    "cpu_seconds": self.cpu_seconds,
                    "memory_bytes": self.memory_bytes,
                }
            ).encode()
            + b"\n"
        )
        with self._slots:
            child = self._take()
            line = child.exchange(request, deadline_seconds=self.cpu_seconds + DEADLINE_GRACE_SECONDS)
            if line is None:
                raise LimitExceeded("cpu", self._cpu_detail())
            reply = json.loads(line)
            if "limit" in reply:
                child.kill()  # its heap may be fragmented or half-built: start afresh
                raise LimitExceeded(
                    "memory", f"stopped: it needed more than {self.memory_bytes // (1024 * 1024)} MB of memory"
                )
            self._give_back(child)
        if "raised" in reply:
            raise ScriptRaised(reply["raised"]["type"], reply["raised"]["message"])
        if "refused" in reply:
            raise ScriptRefused(reply["refused"])
        return reply

    def _cpu_detail(self) -> str:
        seconds = f"{self.cpu_seconds:g}"
        return f"stopped: it ran longer than the limit of {seconds} s of CPU time"

    def _take(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                child.kill()  # died while idle (killed from outside): replace it
        return _Child()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            self._idle.append(child)


class OpaqueValue:
    """What a non-JSON expression value (a set, a range) looks like on this side: its truth and its text."""

    def __init__(self, truthy: bool, repr: str) -> None:  # noqa: A002  (the reply's field name)
        self.truthy = truthy
        self.text = repr

    def __bool__(self) -> bool:
        return self.truthy

    def __repr__(self) -> str:
        return self.text


_default_pool: ScriptPool | None = None
_default_pool_lock = threading.Lock()


def default_pool() -> ScriptPool:
    """The process's pool, as Django settings configure it now; a fresh one in a forked child (pipes are not
    shared across a fork) or after the settings changed (then the old pool's idle children are stopped)."""
    global _default_pool
    from django.conf import settings

    wanted = (
        float(settings.WORKFLOW_SCRIPT_CPU_SECONDS),
        int(settings.WORKFLOW_SCRIPT_MEMORY_MB) * 1024 * 1024,
        int(settings.WORKFLOW_SCRIPT_POOL_SIZE),
    )
    with _default_pool_lock:
        pool = _default_pool
        if pool is None or pool._owner_pid != os.getpid() or (pool.cpu_seconds, pool.memory_bytes, pool.size) != wanted:
            if pool is not None and pool._owner_pid == os.getpid():
                pool.close()
            pool = _default_pool = ScriptPool(
                cpu_seconds=settings.WORKFLOW_SCRIPT_CPU_SECONDS,
                memory_mb=settings.WORKFLOW_SCRIPT_MEMORY_MB,
                size=settings.WORKFLOW_SCRIPT_POOL_SIZE,
            )
        return pool


# --- the child side -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, mode: str):
    return compile(source, "<workflow script>", mode)


def _answer(request: dict) -> dict:
    source, mode = request["source"], request["mode"]
    if mode not in ("eval", "exec"):
        return {"refused": f"unknown mode {mode!r}"}
    if problem := unsafe_source(source, mode):
        return {"refused": problem[0]}
    code = _compiled(source, mode)
    external = request.get("external") or {}
    context = request["context"]
    if mode == "eval":
        scope = {"__builtins__": SAFE_BUILTINS, **external, **context}
        value = eval(code, scope)  # noqa: S307  (checked source, safe builtins, bounded process)
        if non_json_value(value) is None:
            return {"value": value}
        return {"opaque": {"truthy": bool(value), "repr": repr(value)[:OPAQUE_REPR_CHARS]}}
    # As SpiffWorkflow's TaskDataEnvironment.execute: the script's globals are the variables themselves.
    scope = {**context, **external, "__builtins__": SAFE_BUILTINS}
    exec(code, scope)  # noqa: S102  (checked source, safe builtins, bounded process)
    left = {
        key: value
        for key, value in scope.items()
        if key != "__builtins__" and key not in external and not callable(value)
    }
    if problem := non_json_value(left):
        return {"refused": f"script left {problem}; process variables must be JSON values"}
    return {"context": left}


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_used_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(stdin, stdout) -> None:
    unlimited = resource.RLIM_INFINITY
    for line in stdin:
        request = json.loads(line)
        cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        as_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        # RLIMIT_CPU counts whole seconds; the parent's deadline is the finer bound.
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(_cpu_used_seconds() + request["cpu_seconds"]), cpu_hard))
        resource.setrlimit(resource.RLIMIT_AS, (_address_space_bytes() + request["memory_bytes"], as_hard))
        try:
            reply = json.dumps(_answer(request))
        except MemoryError:
            reply = None
        except Exception as exc:  # the script's own error, reported to the parent as data
            try:
                reply = json.dumps({"raised": {"type": type(exc).__name__, "message": str(exc)}})
            except MemoryError:
                reply = None
        if reply is None:
            reply = json.dumps({"limit": "memory"})
        resource.setrlimit(resource.RLIMIT_AS, (unlimited if as_hard == unlimited else as_hard, as_hard))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
        stdout.write(reply.encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)

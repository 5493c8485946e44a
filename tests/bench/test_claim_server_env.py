"""bench/claim.py starts gunicorn with the API's per-account rate limit off: its claimers are one account calling
as fast as they can, and a 429 would measure the limit instead of the claim."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def claim_bench():
    sys.path.insert(0, str(BENCH_DIR))  # the script imports its neighbour `common` as a top-level module
    try:
        spec = importlib.util.spec_from_file_location("bench_claim_env", BENCH_DIR / "claim.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_claim_env", None)
        sys.path.remove(str(BENCH_DIR))


class ServerStarted(Exception):
    pass


def test_the_benchmark_server_runs_without_the_per_account_rate_limit(claim_bench, monkeypatch):
    seen = {}

    def popen(command, **kwargs):
        seen.update(kwargs["env"])
        raise ServerStarted

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.delenv("API_THROTTLE_USER_RATE", raising=False)
    args = Namespace(pool=False, http_workers=1, http_threads=1, http_worker_class="sync")
    bench = claim_bench.Bench(database_url="postgresql://x/y", queues=[], user_id=1, token="t", port=1)
    with pytest.raises(ServerStarted):
        claim_bench.start_gunicorn(args, bench)
    assert seen["API_THROTTLE_USER_RATE"] == "off"


def test_the_benchmark_server_runs_a_worker_class_of_gunicorn_itself_by_default(claim_bench, monkeypatch):
    from gunicorn.workers import SUPPORTED_WORKERS

    seen = []

    def popen(command, **kwargs):
        seen.extend(command)
        raise ServerStarted

    monkeypatch.setattr(subprocess, "Popen", popen)
    args = claim_bench.parse_args([])
    bench = claim_bench.Bench(database_url="postgresql://x/y", queues=[], user_id=1, token="t", port=1)
    with pytest.raises(ServerStarted):
        claim_bench.start_gunicorn(args, bench)
    assert seen[seen.index("--worker-class") + 1] in SUPPORTED_WORKERS

"""Throwaway PostgreSQL clusters for tests (core/local_cluster.py), or a streaming standby of one (pg_basebackup -R);
a test skips where the server binaries are not installed."""

from __future__ import annotations

import pytest

from core.local_cluster import LocalCluster, ServerBinaryMissing, free_port
from core.local_cluster import postgres_bin as _postgres_bin

__all__ = ["ThrowawayCluster", "free_port", "postgres_bin"]


def postgres_bin(name: str) -> str:
    try:
        return _postgres_bin(name)
    except ServerBinaryMissing as missing:
        pytest.skip(str(missing))


class ThrowawayCluster(LocalCluster):
    def __init__(self, **kwargs) -> None:
        try:
            super().__init__(**kwargs)
        except ServerBinaryMissing as missing:
            pytest.skip(str(missing))

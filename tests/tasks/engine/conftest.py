"""Engine fixtures: the demo definition parsed once, and a fixed clock."""

from datetime import UTC, datetime

import pytest

from tasks.bpmn import engine

from .documents import DEMO_FILE, PARALLEL_FILE

CASE_OPENED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo_definition() -> engine.ParsedDefinition:
    return engine.parse_definition(bpmn_xml=DEMO_FILE.read_text())


@pytest.fixture(scope="session")
def parallel_definition() -> engine.ParsedDefinition:
    return engine.parse_definition(bpmn_xml=PARALLEL_FILE.read_text())


@pytest.fixture
def t0() -> datetime:
    return CASE_OPENED_AT

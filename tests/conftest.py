from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakes import KINDS, Target, make_target


@pytest.fixture(params=KINDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """Each warehouse backend in turn (tests/lakes.py): the test runs once against each."""
    yield from make_target(request.param, tmp_path)


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Target]:
    """A DuckLake with a PostgreSQL catalog and its data on the S3 server (tests/lakes.py)."""
    yield from make_target("lake_postgres_s3", tmp_path)

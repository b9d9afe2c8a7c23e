"""`orusage activity`: OpenRouter's bill (`GET /activity`, a management key) into the warehouse's
`activity` table, where `orusage reconcile` (reports.reconcile) sets it against the generations the
logs name. The API keeps the last 30 completed UTC days; the table keeps every day fetched, each
day fetched again replaced whole (in one transaction with the others of the response).
"""

from __future__ import annotations

import asyncio
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from pipeline import config, warehouse
from pipeline.client import FatalAPIError, OpenRouterClient, RetryPolicy
from pipeline.normalize import normalize_activity


class ManagementKeyRefused(Exception):
    """The API answered /activity with 403: the key is not a management key (one line)."""


@dataclass(frozen=True)
class ActivityLoaded:
    rows: int
    days: list[date]


def load_activity(location: str | Path, *, key: config.ApiKey, base_url: str | None = None, day: date | None = None,
                  data_path: str | None = None, lock_timeout_s: float = 0,
                  policy: RetryPolicy = RetryPolicy()) -> ActivityLoaded:
    """Fetch /activity (every day it has, or `day`) and store it; raises ManagementKeyRefused,
    client.FatalAPIError (401, 402), client.ActivityError, normalize.ActivityRowError, WarehouseError."""
    rows = asyncio.run(_fetch(key, base_url, day, policy))
    frame = normalize_activity(rows, fetched_at=datetime.now(timezone.utc))
    with closing(warehouse.open_writer(location, lock_timeout_s=lock_timeout_s, data_path=data_path)) as writer:
        writer.write_activity(frame)
    return ActivityLoaded(frame.height, sorted(set(frame["date"].to_list())))


async def _fetch(key: config.ApiKey, base_url: str | None, day: date | None, policy: RetryPolicy) -> list[dict]:
    async with OpenRouterClient(key, base_url=base_url, policy=policy) as client:
        try:
            return await client.get_activity(day)
        except FatalAPIError as exc:
            if exc.status != 403:
                raise
            raise ManagementKeyRefused(
                f"OpenRouter refused /activity (HTTP 403: {exc.api_message}): the billing activity needs a "
                f"management key (OpenRouter's settings, Management Keys), in {config.MANAGEMENT_KEY_VARIABLE} or "
                f"--management-key; {key.source} holds another kind of key") from None

"""A fake OpenRouter API on loopback: real HTTP (aiohttp.web) over a deterministic synthetic dataset.

Why it exists: nothing here can reach openrouter.ai, yet the client, the fetcher, the demo and the
benchmarks need an API that behaves like the real one: the same bodies (old and new shapes, unknown
keys, both `created_at` forms, costs in exponent form), the same errors (401/402 bodies from real
captures, 429 with `Retry-After` or with the reset inside the body, HTML 502/524 pages from the edge,
404 while a generation is not yet visible), and dropped or truncated responses.

The dataset is a pure function of (seed, index): record i is rebuilt on demand from a keyed hash of
i, so a dataset of millions of ids costs nothing up front. Each id carries its index, scrambled by a
keyed Feistel permutation and checked by a keyed tag, in its 20-character suffix: looking an id up is
a decode, and a made-up or mistyped id fails the tag and is a 404 forever.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import itertools
import math
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, overload

import orjson
from aiohttp import web

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MANAGEMENT_KEY",
    "DEFAULT_END",
    "Dataset",
    "parse_end",
    "Faults",
    "ServerHandle",
    "ServerStats",
    "serve",
    "start_server",
]

DEFAULT_API_KEY = "sk-or-v1-fake"
DEFAULT_MANAGEMENT_KEY = "sk-or-v1-fake-management"  # the only key /activity accepts, as a management key
# Fixed, so that the same seed gives the same bytes on every machine and every day.
DEFAULT_END = datetime(2026, 9, 1, tzinfo=UTC)

_ID_SUFFIX_LEN = 20
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_INDEX = {c: n for n, c in enumerate(_ALPHABET)}
_HALF_BITS = 59  # 118 bits scrambled: 62**20 > 2**118, so every value has a 20-character suffix
_HALF_MASK = (1 << _HALF_BITS) - 1
_INDEX_BITS = 40  # up to ~1.1e12 records
_TAG_BITS = 2 * _HALF_BITS - _INDEX_BITS
_TAG_MASK = (1 << _TAG_BITS) - 1
_FEISTEL_ROUNDS = 4


# --------------------------------------------------------------------------------------------
# The world the records are drawn from: models with real-ish prices, providers, apps.
# Prices are nano-USD per token (== USD per million tokens x 1000), so costs are exact integers.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Provider:
    name: str
    ttft_median_ms: float
    tokens_per_s: float
    upstream_id_style: str  # chatcmpl | msg | hex32 | uuid | none


_PROVIDERS = {
    p.name: p
    for p in (
        _Provider("OpenAI", 450, 85, "chatcmpl"),
        _Provider("Azure", 600, 70, "chatcmpl"),
        _Provider("Anthropic", 900, 60, "msg"),
        _Provider("Amazon Bedrock", 1100, 55, "msg_bdrk"),
        _Provider("Google", 700, 140, "none"),
        _Provider("Google AI Studio", 550, 160, "none"),
        _Provider("DeepInfra", 400, 75, "chatcmpl"),
        _Provider("Together", 350, 95, "hex32"),
        _Provider("Fireworks", 300, 120, "uuid"),
        _Provider("Groq", 150, 450, "chatcmpl"),
        _Provider("Mistral", 320, 90, "hex32"),
        _Provider("DeepSeek", 1300, 35, "uuid"),
        _Provider("Novita", 800, 45, "chatcmpl"),
        _Provider("Chutes", 1000, 40, "chatcmpl"),
        _Provider("xAI", 500, 110, "uuid"),
        _Provider("Moonshot AI", 900, 40, "chatcmpl"),
        _Provider("Z.AI", 850, 50, "chatcmpl"),
    )
}


@dataclass(frozen=True, slots=True)
class _Model:
    slug: str
    permaslug: str
    weight: float
    prompt_nusd: int
    completion_nusd: int
    cache_read_nusd: int | None
    cache_write_nusd: int | None
    reasoning: bool
    providers: tuple[tuple[str, float], ...]  # (provider, share of traffic)
    api_type: str = "completions"
    vision: bool = False


_MODELS: tuple[_Model, ...] = (
    _Model("openai/gpt-4.1-mini", "openai/gpt-4.1-mini-2025-04-14", 14, 400, 1600, 100, None, False,
           (("OpenAI", 0.85), ("Azure", 0.15)), vision=True),
    _Model("google/gemini-2.5-flash", "google/gemini-2.5-flash", 13, 300, 2500, 75, None, True,
           (("Google AI Studio", 0.6), ("Google", 0.4)), vision=True),
    _Model("anthropic/claude-sonnet-4.5", "anthropic/claude-4.5-sonnet-20250929", 12, 3000, 15000, 300, 3750,
           False, (("Anthropic", 0.6), ("Amazon Bedrock", 0.25), ("Google", 0.15)), vision=True),
    _Model("openai/gpt-5-mini", "openai/gpt-5-mini-2025-08-07", 8, 250, 2000, 25, None, True,
           (("OpenAI", 1.0),)),
    _Model("deepseek/deepseek-v3.2", "deepseek/deepseek-v3.2-20251201", 7, 280, 420, 28, None, False,
           (("DeepSeek", 0.5), ("DeepInfra", 0.2), ("Novita", 0.15), ("Chutes", 0.15))),
    _Model("openai/gpt-oss-120b", "openai/gpt-oss-120b", 6, 100, 500, None, None, True,
           (("DeepInfra", 0.4), ("Groq", 0.3), ("Together", 0.15), ("Fireworks", 0.15))),
    _Model("anthropic/claude-haiku-4.5", "anthropic/claude-4.5-haiku-20251001", 5, 1000, 5000, 100, 1250, False,
           (("Anthropic", 0.7), ("Amazon Bedrock", 0.3))),
    _Model("google/gemini-2.5-flash-lite", "google/gemini-2.5-flash-lite", 5, 100, 400, 25, None, False,
           (("Google AI Studio", 0.5), ("Google", 0.5))),
    _Model("meta-llama/llama-4-scout", "meta-llama/llama-4-scout-17b-16e-instruct", 4, 80, 300, None, None, False,
           (("DeepInfra", 0.5), ("Groq", 0.3), ("Together", 0.2))),
    _Model("x-ai/grok-4-fast", "x-ai/grok-4-fast", 4, 200, 500, 50, None, True, (("xAI", 1.0),)),
    _Model("google/gemini-2.5-pro", "google/gemini-2.5-pro", 3, 1250, 10000, 310, None, True,
           (("Google", 0.5), ("Google AI Studio", 0.5))),
    _Model("meta-llama/llama-3.3-70b-instruct", "meta-llama/llama-3.3-70b-instruct", 3, 130, 390, None, None,
           False, (("DeepInfra", 0.4), ("Together", 0.3), ("Groq", 0.3))),
    _Model("mistralai/mistral-medium-3.1", "mistralai/mistral-medium-3.1", 3, 400, 2000, None, None, False,
           (("Mistral", 1.0),)),
    _Model("qwen/qwen3-235b-a22b-2507", "qwen/qwen3-235b-a22b-07-25", 3, 130, 600, None, None, False,
           (("DeepInfra", 0.4), ("Novita", 0.3), ("Chutes", 0.3))),
    _Model("deepseek/deepseek-r1-0528", "deepseek/deepseek-r1-0528", 2, 500, 2150, None, None, True,
           (("Together", 0.4), ("Fireworks", 0.3), ("Novita", 0.3))),
    _Model("moonshotai/kimi-k2-0905", "moonshotai/kimi-k2-0905", 2, 390, 1900, None, None, False,
           (("Moonshot AI", 0.4), ("Groq", 0.3), ("Novita", 0.3))),
    _Model("z-ai/glm-4.6", "z-ai/glm-4.6", 2, 600, 2200, 110, None, True, (("Z.AI", 0.6), ("Novita", 0.4))),
    _Model("openai/text-embedding-3-small", "openai/text-embedding-3-small", 2, 20, 0, None, None, False,
           (("OpenAI", 1.0),), api_type="embeddings"),
)
_MODEL_CUM = list(itertools.accumulate(m.weight for m in _MODELS))


@dataclass(frozen=True, slots=True)
class _App:
    name: str
    weight: float
    app_id: int | None
    origin: str
    http_referer: str | None
    user_agents: tuple[str, ...]
    external_users: int  # size of the end-user pool; 0 = external_user is null
    session_rate: float
    stream_rate: float
    tool_rate: float
    byok_providers: tuple[str, ...]
    byok_rate: float
    preset_id: str | None = None
    favourite_models: tuple[str, ...] = ()


_APPS: tuple[_App, ...] = (
    _App("support-bot", 30, 3120457, "https://support.acme-widgets.com/", "https://support.acme-widgets.com/",
         ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"),
         500, 0.9, 0.92, 0.15, (), 0.0, preset_id="a9e8d400-592a-494f-908c-375efa66cafd"),
    _App("nightly-batch", 25, None, "", None, ("python-httpx/0.28.1", "OpenAI/Python 1.99.9"),
         0, 0.0, 0.05, 0.0, ("OpenAI",), 0.3),
    _App("cline", 20, 1091476, "https://cline.bot/", "https://cline.bot", ("Cline/3.26.6",),
         0, 0.95, 0.97, 0.6, ("Anthropic", "Amazon Bedrock"), 0.35,
         favourite_models=("anthropic/claude-sonnet-4.5", "openai/gpt-5-mini", "qwen/qwen3-235b-a22b-2507",
                           "x-ai/grok-4-fast", "z-ai/glm-4.6")),
    _App("team-chat", 12, 2212034, "https://chat.internal.acme.dev/", "https://chat.internal.acme.dev/",
         ("aiohttp/3.12.15",), 40, 0.7, 0.99, 0.05, ("Google AI Studio",), 0.4),
    _App("openrouter-chatroom", 5, 1, "https://openrouter.ai/", "https://openrouter.ai/",
         ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15",),
         0, 0.5, 1.0, 0.0, (), 0.0),
    _App("eval-harness", 8, 2872617, "https://github.com/acme/llm-evals", "https://github.com/acme/llm-evals",
         ("python-requests/2.32.5",), 0, 0.0, 0.1, 0.1, (), 0.0),
)
_APP_CUM = list(itertools.accumulate(a.weight for a in _APPS))
_MODELS_BY_SLUG = {m.slug: m for m in _MODELS}

_WORKSPACES = ("550e8400-e29b-41d4-a716-446655440000", "7c9e6679-7425-40de-944b-e07fc1f90ae7")

# Key order of a current body: the real 2026-02 body's order, then the keys added since.
_KEYS_2025_08 = (
    "created_at", "model", "app_id", "external_user", "streamed", "cancelled", "latency", "moderation_latency",
    "generation_time", "tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
    "native_tokens_reasoning", "native_tokens_cached", "num_media_prompt", "num_media_completion",
    "num_search_results", "origin", "is_byok", "finish_reason", "native_finish_reason", "usage", "api_type", "id",
    "upstream_id", "total_cost", "cache_discount", "upstream_inference_cost", "provider_name",
)
_KEYS_2025_10 = _KEYS_2025_08 + ("native_tokens_completion_images", "num_input_audio_prompt")
_KEYS_2026_02 = _KEYS_2025_10 + ("router", "provider_responses")
_KEYS_CURRENT = _KEYS_2026_02 + (
    "num_fetches", "web_search_engine", "service_tier", "preset_id", "user_agent", "http_referer", "request_id",
    "session_id", "data_region", "workspace_id",
)
_KEY_ORDER = (
    "created_at", "model", "app_id", "external_user", "streamed", "cancelled", "latency", "moderation_latency",
    "generation_time", "tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
    "native_tokens_completion_images", "native_tokens_reasoning", "native_tokens_cached", "num_media_prompt",
    "num_input_audio_prompt", "num_media_completion", "num_search_results", "num_fetches", "web_search_engine",
    "origin", "is_byok", "finish_reason", "native_finish_reason", "usage", "router", "provider_responses",
    "api_type", "id", "upstream_id", "total_cost", "cache_discount", "upstream_inference_cost", "provider_name",
    "service_tier", "preset_id", "user_agent", "http_referer", "request_id", "session_id", "data_region",
    "workspace_id", "response_cache_source_id", "usage_cache",
)
# (shape name, share of records, keys present); "current" may add response_cache_source_id.
_SHAPES = (
    ("2025-08", 0.03, frozenset(_KEYS_2025_08)),
    ("2025-10", 0.04, frozenset(_KEYS_2025_10)),
    ("2026-02", 0.07, frozenset(_KEYS_2026_02)),
    ("current", 0.86, frozenset(_KEYS_CURRENT)),
)

_NATIVE_FINISH = {
    "Anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"},
    "Amazon Bedrock": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"},
    "Google": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"},
    "Google AI Studio": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"},
}
_WORDS = (
    "the order ships within two business days and you can track it from your account page once the "
    "label is printed we checked the logs and the retry happened because the upstream returned a rate "
    "limit so the job waited and resumed here is a summary of the changes in this pull request"
).split()


def _nusd_to_usd(nusd: int) -> float | int:
    """Costs are exact integers of nano-USD inside; the API shows USD, rounded to 1e-9 (and 0, not 0.0)."""
    return nusd / 1_000_000_000 if nusd else 0


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rates are per request; all default off.

    Deterministic given `seed` and the order in which requests arrive.
    """

    rate_429: float = 0
    retry_after_s: float = 0
    rate_500: float = 0
    rate_502_html: float = 0
    rate_524_html: float = 0
    rate_529: float = 0
    rate_drop: float = 0
    rate_truncated: float = 0
    rate_slow: float = 0
    slow_s: float = 0
    latency_ms: float = 0
    not_found_first: int = 0
    max_rps: float | None = None
    seed: int = 0
    # Share of 429s that carry their reset only in the body (error.metadata.headers), not as Retry-After.
    rate_limit_in_body_share: float = 0.5
    # After this many requests, answer every request with `fatal_status` (the key "ran out").
    fatal_after: int | None = None
    fatal_status: int = 402
    # After this many /generation/content requests, answer those with 403 (a key that is not a
    # management key, or logging turned off): /generation goes on answering.
    content_forbidden_after: int | None = None

    def __post_init__(self) -> None:
        total = sum(rate for _, rate in self.kinds())
        if not 0 <= total <= 1 or any(rate < 0 for _, rate in self.kinds()):
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {total}")
        if self.fatal_status not in _FATAL_BODIES:
            raise ValueError(f"fatal_status must be one of {sorted(_FATAL_BODIES)}, got {self.fatal_status}")

    @classmethod
    def transient(cls, rate: float, *, not_found_first: int = 0, seed: int = 0, **overrides: Any) -> Faults:
        """Spread `rate` over every transient kind, weighted roughly like a bad day on the real API."""
        weights = {"rate_429": 0.30, "rate_500": 0.12, "rate_502_html": 0.10, "rate_524_html": 0.08,
                   "rate_529": 0.08, "rate_drop": 0.10, "rate_truncated": 0.12, "rate_slow": 0.10}
        params: dict[str, Any] = {name: rate * w for name, w in weights.items()}
        params.update(slow_s=0.05, not_found_first=not_found_first, seed=seed)
        params.update(overrides)
        return cls(**params)

    def kinds(self) -> list[tuple[str, float]]:
        return [
            ("429", self.rate_429), ("500", self.rate_500), ("502_html", self.rate_502_html),
            ("524_html", self.rate_524_html), ("529", self.rate_529), ("drop", self.rate_drop),
            ("truncated", self.rate_truncated), ("slow", self.rate_slow),
        ]


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


class _IdSequence(Sequence[str]):
    """The ids, computed on access: a dataset of millions of ids holds none of them in memory."""

    def __init__(self, dataset: Dataset) -> None:
        self._ds = dataset

    def __len__(self) -> int:
        return self._ds.size

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._ds.id_at(k) for k in range(*i.indices(self._ds.size))]
        if i < 0:
            i += self._ds.size
        if not 0 <= i < self._ds.size:
            raise IndexError(i)
        return self._ds.id_at(i)

    def __iter__(self) -> Iterator[str]:
        return (self._ds.id_at(k) for k in range(self._ds.size))


class Dataset:
    """The ground truth: `record(id)` is exactly the `data` object the server sends for that id."""

    def __init__(self, size: int = 1000, *, seed: int = 0, end: datetime | None = None, days: int = 21,
                 body_cache_size: int = 4096, big_content_every: int = 0, big_content_bytes: int = 4 * 2**20) -> None:
        if size < 0 or size >= 1 << _INDEX_BITS:
            raise ValueError(f"size must be in [0, 2**{_INDEX_BITS}), got {size}")
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        end = DEFAULT_END if end is None else end
        self.end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        self.size = size
        self.seed = seed
        self.days = days
        self.big_content_every = big_content_every  # every n-th record's stored prompt is big (0: none)
        self.big_content_bytes = big_content_bytes
        self.start = self.end - timedelta(days=days)
        self._start_us = _epoch_us(self.start)
        key = hashlib.blake2b(f"orusage-fake-api/{seed}".encode(), digest_size=64).digest()
        # Keys for the cheap keyed mixing below (splitmix64): round keys, tag keys, record keys.
        self._keys = [int.from_bytes(key[k : k + 8], "big") for k in range(0, 64, 8)]
        self._digit_offsets = [b % 62 for b in hashlib.blake2b(key, digest_size=_ID_SUFFIX_LEN).digest()]
        self._hour_cum = _hourly_cumulative(self.start, days)
        self.ids: Sequence[str] = _IdSequence(self)
        self._activity: list[dict[str, Any]] | None = None
        self._activity_lock = threading.Lock()
        self.body_at = lru_cache(maxsize=body_cache_size)(self._body_at)

    def __repr__(self) -> str:
        return f"Dataset(size={self.size}, seed={self.seed}, end={self.end.isoformat()}, days={self.days})"

    # ---- ids ------------------------------------------------------------------------------

    def id_at(self, index: int) -> str:
        request_us, _ = self._times(index)
        return f"gen-{request_us // 1_000_000:010d}-{self._encode_suffix(index)}"

    def index_of(self, generation_id: str) -> int | None:
        """The record index an id stands for, or None when the id is not one of this dataset's."""
        if len(generation_id) != 35 or not generation_id.startswith("gen-") or generation_id[14] != "-":
            return None
        index = self._decode_suffix(generation_id[15:])
        if index is None or index >= self.size:
            return None
        if generation_id[4:14] != f"{self._times(index)[0] // 1_000_000:010d}":
            return None
        return index

    def missing_ids(self, n: int) -> list[str]:
        """Well-formed ids, dated inside the dataset's range, that the server answers 404 forever."""
        return [self.id_at(self.size + k) for k in range(n)]

    def _encode_suffix(self, index: int) -> str:
        x = (index << _TAG_BITS) | self._tag(index)
        left, right = x >> _HALF_BITS, x & _HALF_MASK
        for r in range(_FEISTEL_ROUNDS):
            left, right = right, left ^ self._round(r, right)
        x = (left << _HALF_BITS) | right
        digits = []
        for _ in range(_ID_SUFFIX_LEN):
            x, d = divmod(x, 62)
            digits.append(d)
        digits.reverse()
        return "".join(_ALPHABET[(d + off) % 62] for d, off in zip(digits, self._digit_offsets))

    def _decode_suffix(self, suffix: str) -> int | None:
        x = 0
        try:
            for c, off in zip(suffix, self._digit_offsets):
                x = x * 62 + (_ALPHABET_INDEX[c] - off) % 62
        except KeyError:
            return None
        if x >> (2 * _HALF_BITS):
            return None
        left, right = x >> _HALF_BITS, x & _HALF_MASK
        for r in reversed(range(_FEISTEL_ROUNDS)):
            left, right = right ^ self._round(r, left), left
        x = (left << _HALF_BITS) | right
        index = x >> _TAG_BITS
        return index if (x & _TAG_MASK) == self._tag(index) else None

    def _round(self, r: int, half: int) -> int:
        return _mix64((half * _GOLDEN + self._keys[r]) & _M64) & _HALF_MASK

    def _tag(self, index: int) -> int:
        a = _mix64((index * _GOLDEN + self._keys[4]) & _M64)
        return ((a << 64) | _mix64(a ^ self._keys[5])) & _TAG_MASK

    def _hash(self, index: int) -> tuple[int, int]:
        """Two keyed 64-bit hashes of a record index: the source of all its randomness."""
        a = _mix64((index * _GOLDEN + self._keys[6]) & _M64)
        return a, _mix64(a ^ self._keys[7])

    def _times(self, index: int) -> tuple[int, int]:
        """(request time, created_at) in epoch µs. Requests follow a daily and weekly rhythm, in index order."""
        a, b = self._hash(index)
        u = a / 2**64
        v = (b >> 32) / 2**32
        n = max(self.size, 1)
        q = min((index + u) / n, 1.0) if index < n else u  # ids past the end (missing_ids) land anywhere
        request_us = self._start_us + _inverse_hour_cdf(self._hour_cum, q)
        created_us = request_us + int(v * v * 2_500_000)  # created_at trails the id's second by 0-2.5 s
        end_us = self._start_us + self.days * 86_400_000_000
        return min(request_us, end_us - 3_000_000), min(created_us, end_us - 1)

    # ---- records ----------------------------------------------------------------------------

    def record(self, generation_id: str) -> dict[str, Any] | None:
        index = self.index_of(generation_id)
        return None if index is None else self.record_at(index)

    def body(self, generation_id: str) -> bytes | None:
        """The exact bytes of a 200 from /generation."""
        index = self.index_of(generation_id)
        return None if index is None else self.body_at(index, generation_id)

    def _body_at(self, index: int, generation_id: str | None = None) -> bytes:
        """Cached (LRU): retried requests for an id cost a lookup, not a rebuild."""
        return orjson.dumps({"data": _build_record(self, index, generation_id)})

    def records(self) -> Iterator[dict[str, Any]]:
        return (self.record_at(i) for i in range(self.size))

    def record_at(self, index: int) -> dict[str, Any]:
        return _build_record(self, index)

    def content(self, generation_id: str) -> dict[str, Any] | None:
        """The `data` object served by /generation/content."""
        index = self.index_of(generation_id)
        return None if index is None else _build_content(self, index)

    def content_body(self, generation_id: str) -> bytes | None:
        data = self.content(generation_id)
        return None if data is None else orjson.dumps({"data": data})

    # ---- activity ---------------------------------------------------------------------------

    def activity(self, date_filter: str | None = None) -> list[dict[str, Any]]:
        """/activity rows: one per (UTC day, model, provider endpoint), summed from the records.

        Like the real endpoint, only completed UTC days (before `end`'s day) within the last 30.
        """
        with self._activity_lock:
            if self._activity is None:
                self._activity = _build_activity(self)
        rows = self._activity
        if date_filter is not None:
            rows = [r for r in rows if r["date"].startswith(date_filter)]
        return [dict(r) for r in rows]


_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    """splitmix64's finalizer: a cheap, well-spread 64-bit mix (hashlib costs ~10x more per call)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def parse_end(value: str) -> datetime:
    """`now`, an ISO date (midnight UTC) or an ISO date-time (UTC unless it says otherwise)."""
    if value.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--end: expected 'now' or an ISO date/time like 2026-09-01, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _epoch_us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _hourly_cumulative(start: datetime, days: int) -> list[float]:
    """Cumulative traffic weight per hour: busy on weekday afternoons (UTC), quieter at weekends."""
    cum = [0.0]
    for h in range(days * 24):
        t = start + timedelta(hours=h)
        diurnal = 0.35 + 0.65 * (0.5 + 0.5 * math.cos((t.hour - 15) / 24 * 2 * math.pi))
        weekly = 0.6 if t.weekday() >= 5 else 1.0
        growth = 1.0 + 0.3 * h / (days * 24)
        cum.append(cum[-1] + diurnal * weekly * growth)
    return cum


def _inverse_hour_cdf(cum: list[float], q: float) -> int:
    x = q * cum[-1]
    h = min(bisect.bisect_right(cum, x) - 1, len(cum) - 2)
    frac = (x - cum[h]) / (cum[h + 1] - cum[h])
    return int((h + min(frac, 0.999999)) * 3_600_000_000)


def _format_created_at(us: int, z_form: bool) -> str:
    seconds, micros = divmod(us, 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if z_form:
        return f"{stamp}.{micros // 1000:03d}Z"
    return f"{stamp}.{micros:06d}+00:00"


_B64_TO_ALNUM = bytes.maketrans(b"+/", b"Qz")


def _alnum(rng: random.Random, n: int) -> str:
    """n random [A-Za-z0-9] characters; base64 of random bytes with +/ mapped, ~10x faster than choices()."""
    return base64.b64encode(rng.randbytes(n)).translate(_B64_TO_ALNUM)[:n].decode()


@lru_cache(maxsize=1024)
def _endpoint_id(model: str, provider: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openrouter-endpoint:{model}:{provider}"))


def _upstream_id(rng: random.Random, style: str) -> str | None:
    if style == "chatcmpl":
        return "chatcmpl-" + _alnum(rng, 24)
    if style == "msg":
        return "msg_01" + _alnum(rng, 22)
    if style == "msg_bdrk":
        return "msg_bdrk_01" + _alnum(rng, 22)
    if style == "hex32":
        return f"{rng.getrandbits(128):032x}"
    if style == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return None


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _pick_provider(rng: random.Random, model: _Model, exclude: str | None = None) -> str:
    choices = [(p, s) for p, s in model.providers if p != exclude]
    x = rng.random() * sum(s for _, s in choices)
    for p, s in choices:
        x -= s
        if x < 0:
            return p
    return choices[-1][0]


def _build_record(ds: Dataset, index: int, gen_id: str | None = None) -> dict[str, Any]:
    """Record `index`: a pure function of (seed, index). Keep it cheap: the server calls it per request."""
    request_us, created_us = ds._times(index)
    if gen_id is None:
        gen_id = f"gen-{request_us // 1_000_000:010d}-{ds._encode_suffix(index)}"
    rng = random.Random(ds._hash(index)[1])
    r = rng.random

    app = _APPS[bisect.bisect_right(_APP_CUM, r() * _APP_CUM[-1])]
    if app.favourite_models and r() < 0.7:
        model = _MODELS_BY_SLUG[app.favourite_models[int(r() * len(app.favourite_models))]]
    else:
        model = _MODELS[bisect.bisect_right(_MODEL_CUM, r() * _MODEL_CUM[-1])]
    embeddings = model.api_type == "embeddings"

    shape_roll = r()
    for shape, share, keys in _SHAPES:
        shape_roll -= share
        if shape_roll < 0:
            break

    provider = _pick_provider(rng, model)
    streamed = False if embeddings else r() < app.stream_rate
    is_byok = provider in app.byok_providers and r() < app.byok_rate

    # Outcome of the request.
    outcome_roll = r()
    if embeddings:
        finish = None
    elif outcome_roll < 0.015:
        finish = "error"
    elif outcome_roll < 0.045 and streamed:
        finish = "cancelled"
    elif outcome_roll < 0.10:
        finish = "length"
    elif r() < app.tool_rate:
        finish = "tool_calls"
    else:
        finish = "stop"

    # Upstream attempts: sometimes a provider fails first and another one serves (fallback).
    attempts: list[tuple[str, int]] = []
    if len(model.providers) > 1 and r() < 0.06:
        failed = _pick_provider(rng, model, exclude=provider)
        status = rng.choice((429, 429, 429, 500, 502, 503))
        attempts.extend([(failed, status)] * (1 + (r() < 0.25)))
    if finish == "error":
        attempts.append((provider, rng.choice((500, 502, 503, 429, 400))))
    else:
        attempts.append((provider, 200))

    # Tokens (normalized = GPT tokenizer, native = the model's own; costs use native).
    ratio = 0.85 + 0.3 * r()
    native_prompt = max(1, int(_lognormal(rng, 2200 if app.name == "cline" else 900, 1.1)))
    if native_prompt > 400_000:
        native_prompt = 400_000 - int(r() * 100_000)
    native_reasoning = 0
    if embeddings:
        native_completion = 0
    elif finish == "error":
        native_completion = 0
    elif finish == "length":
        native_completion = rng.choice((256, 1024, 4096, 8192))
    elif finish == "tool_calls":
        native_completion = int(_lognormal(rng, 120, 0.6)) + 10
    else:
        native_completion = int(_lognormal(rng, 280, 1.0)) + 1
    if model.reasoning and native_completion and r() < 0.8:
        native_reasoning = int(native_completion * (0.3 + 0.6 * r()))
        if finish != "length":
            native_completion += native_reasoning
            native_reasoning = min(native_reasoning, native_completion)
    if finish == "cancelled":
        native_completion = int(native_completion * r())
        native_reasoning = min(native_reasoning, native_completion)
    tokens_prompt = max(1, round(native_prompt * ratio))
    tokens_completion = round(native_completion * ratio)

    # Caching: reads are discounted (positive discount), writes cost extra (negative discount).
    cached = 0
    written = 0
    if model.cache_read_nusd is not None and finish != "error" and r() < 0.3 and native_prompt > 1024:
        cached = int(native_prompt * (0.3 + 0.65 * r()))
    if model.cache_write_nusd is not None and finish != "error" and not cached and r() < 0.12:
        written = int(native_prompt * (0.5 + 0.5 * r()))
    media_prompt = 1 + int(r() * 2) if model.vision and r() < 0.05 else None
    search_results = 5 if (not embeddings and r() < 0.02) else None

    if finish == "error":
        cost_nusd = 0
    else:
        cost_nusd = ((native_prompt - cached) * model.prompt_nusd + native_completion * model.completion_nusd
                     + written * ((model.cache_write_nusd or 0) - model.prompt_nusd))
        if model.cache_read_nusd is not None:
            cost_nusd += cached * model.cache_read_nusd
        if search_results:
            cost_nusd += 20_000_000  # web plugin: $4 per 1000 results x 5 results
    discount_nusd: int | None = None
    if cached:
        discount_nusd = cached * (model.prompt_nusd - (model.cache_read_nusd or 0))
    elif written:
        discount_nusd = -written * ((model.cache_write_nusd or 0) - model.prompt_nusd)

    cache_source_id = None
    if shape == "current" and finish not in ("error", "cancelled") and index > 0 and r() < 0.005:
        cache_source_id = ds.id_at(int(r() * index))
        cost_nusd, discount_nusd = 0, None

    if is_byok:
        total_nusd = 0 if r() < 0.3 else cost_nusd * 5 // 100  # 5% fee, waived for the first 1M requests
        upstream_nusd = cost_nusd
    else:
        total_nusd, upstream_nusd = cost_nusd, 0

    # Timing.
    prov = _PROVIDERS[provider]
    ttft_ms = _lognormal(rng, prov.ttft_median_ms * (2.0 if native_reasoning else 1.0), 0.45)
    decode_ms = native_completion / (prov.tokens_per_s * (0.7 + 0.6 * r())) * 1000
    if cache_source_id:
        ttft_ms, decode_ms = 5 + 30 * r(), 0.0
    generation_ms = round(ttft_ms + decode_ms)
    latency_ms = round(ttft_ms) if streamed else generation_ms
    moderation_ms = round(_lognormal(rng, 40, 0.5)) if model.slug.startswith(("openai/", "anthropic/")) and r() < 0.3 else None
    float_timings = shape == "current" and r() < 0.01  # the spec types these as doubles; a few arrive as 1016.0

    provider_responses: list[dict[str, Any]] = []
    for n, (p, status) in enumerate(attempts):
        served = status == 200 and n == len(attempts) - 1
        item: dict[str, Any] = {"endpoint_id": _endpoint_id(model.slug, p)}
        upstream = _upstream_id(rng, _PROVIDERS[p].upstream_id_style) if served else None
        if upstream is not None:  # absent, not null, when the provider gave none
            item["id"] = upstream
        item["is_byok"] = is_byok and p == provider
        item["latency"] = round(latency_ms * (0.4 + 0.6 * r())) if served else round(_lognormal(rng, 300, 0.8))
        item["model_permaslug"] = model.permaslug
        item["provider_name"] = p
        item["status"] = status
        if p in ("OpenAI", "Azure") and r() < 0.1:
            item["routed_service_tier"] = "flex" if r() < 0.3 else "priority"
        provider_responses.append(item)

    native_finish = None
    if finish in ("stop", "length", "tool_calls"):
        vocabulary = "Anthropic" if model.slug.startswith("anthropic/") else provider
        native_finish = _NATIVE_FINISH.get(vocabulary, {}).get(finish, finish)
    elif finish == "error":
        native_finish = "error" if r() < 0.5 else None

    session_id = None
    if app.session_rate and r() < app.session_rate:
        session_id = f"sess-{app.name}-{index // 50:06x}"  # neighbouring generations of an app share one
    request_id = f"req-{request_us // 1_000_000}-{_alnum(rng, 20)}"

    data: dict[str, Any] = {
        "created_at": _format_created_at(created_us, z_form=(shape in ("2026-02", "current") and r() < 0.6)),
        "model": model.slug,
        "app_id": app.app_id,
        "external_user": f"user-{int(r() * app.external_users)}" if app.external_users else None,
        "streamed": streamed,
        "cancelled": finish == "cancelled",
        "latency": float(latency_ms) if float_timings else latency_ms,
        "moderation_latency": moderation_ms,
        "generation_time": generation_ms + 0.25 if float_timings else generation_ms,
        "tokens_prompt": tokens_prompt,
        "tokens_completion": tokens_completion,
        "native_tokens_prompt": native_prompt,
        "native_tokens_completion": native_completion,
        "native_tokens_completion_images": 0 if model.vision else None,
        "native_tokens_reasoning": native_reasoning,
        "native_tokens_cached": cached,
        "num_media_prompt": media_prompt,
        "num_input_audio_prompt": None,
        "num_media_completion": 0 if model.vision else None,
        "num_search_results": search_results,
        "num_fetches": 0 if search_results else None,
        "web_search_engine": "exa" if search_results else None,
        "origin": app.origin,
        "is_byok": is_byok,
        "finish_reason": None if finish == "cancelled" else finish,
        "native_finish_reason": native_finish,
        "usage": _nusd_to_usd(total_nusd),
        "router": "openrouter/auto" if r() < 0.04 else None,
        "provider_responses": None if cache_source_id else provider_responses,
        "api_type": model.api_type,
        "id": gen_id,
        "upstream_id": None if finish == "error" else _upstream_id(rng, prov.upstream_id_style),
        "total_cost": _nusd_to_usd(total_nusd),
        "cache_discount": None if discount_nusd is None else _nusd_to_usd(discount_nusd),
        "upstream_inference_cost": _nusd_to_usd(upstream_nusd),
        "provider_name": provider,
        "service_tier": "default" if provider in ("OpenAI", "Azure") else None,
        "preset_id": app.preset_id if app.preset_id and r() < 0.5 else None,
        "user_agent": rng.choice(app.user_agents),
        "http_referer": app.http_referer,
        "request_id": request_id,
        "session_id": session_id,
        "data_region": "global" if r() < 0.9 else rng.choice(("europe", "us")),
        "workspace_id": _WORKSPACES[0] if r() < 0.85 else _WORKSPACES[1],
        "response_cache_source_id": cache_source_id,
        "usage_cache": None if discount_nusd is None else _nusd_to_usd(-discount_nusd),
    }
    keep = set(keys)
    if shape == "current" and (cache_source_id is not None or r() < 0.3):
        keep.add("response_cache_source_id")  # optional in the spec: sometimes absent, sometimes null
    if r() < 0.05:
        keep.add("usage_cache")  # a key no spec lists, seen in real bodies
    return {k: data[k] for k in _KEY_ORDER if k in keep}


# Generations whose account stored no content (logging off, zero data retention): the API answers 200
# with an empty input and null outputs, in one of two shapes.
CONTENT_NOT_STORED_SHARE = 0.05


def _build_content(ds: Dataset, index: int) -> dict[str, Any]:
    """What /generation/content serves for a record, consistent with it: a prompt about as long as
    its prompt tokens (~4 bytes each), a completion for a completed one, the stored error with one
    previous error per failed provider response for a failed one; every `big_content_every`-th
    record's prompt is `big_content_bytes` long."""
    record = ds.record_at(index)
    rng = random.Random(ds._hash(index)[1] ^ 0xC0FFEE)
    if rng.random() < CONTENT_NOT_STORED_SHARE:
        empty_input: dict[str, Any] = {"messages": []} if rng.random() < 0.5 else {"prompt": ""}
        return {"error": None, "input": empty_input, "output": {"completion": None, "reasoning": None}}
    n_words = min(2_000, max(3, (record["tokens_prompt"] or 0) * 3 // 4))
    question = " ".join(rng.choices(_WORDS, k=n_words)).capitalize() + "?"
    if ds.big_content_every and index % ds.big_content_every == ds.big_content_every - 1:
        question = (question + " ") * (ds.big_content_bytes // (len(question) + 1) + 1)
        question = question[: ds.big_content_bytes]
    if record["api_type"] == "embeddings":
        return {"error": None, "input": {"prompt": question}, "output": {"completion": None, "reasoning": None}}
    n_words = min(200, max(1, (record["native_tokens_completion"] or 0) // 2))
    completion: str | None = " ".join(rng.choices(_WORDS, k=n_words)).capitalize() + "."
    reasoning = None
    if record["native_tokens_reasoning"]:
        reasoning = " ".join(rng.choices(_WORDS, k=min(100, record["native_tokens_reasoning"] // 3 + 1)))
    error = None
    if record["finish_reason"] == "error":
        completion, reasoning = None, None
        attempts = record.get("provider_responses") or [{"provider_name": record["provider_name"], "status": 502}]
        last = attempts[-1]
        raw = orjson.dumps({"error": {"code": last["status"], "message": "Upstream error"}}).decode()
        error = {
            "message": "Provider returned error",
            "previous_errors": [
                {"code": a["status"], "message": "Provider returned error", "provider_name": a["provider_name"], "raw": raw}
                for a in attempts[:-1]
            ],
            "provider_name": last["provider_name"],
            "raw": raw,
            "status": last["status"],
        }
    return {
        "error": error,
        "input": {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                               {"role": "user", "content": question}]},
        "output": {"completion": completion, "reasoning": reasoning},
    }


def _build_activity(ds: Dataset) -> list[dict[str, Any]]:
    """Sum the records per (day, model, provider) in integers, so totals agree exactly with the records."""
    end_day = ds.end.date()
    first_day = end_day - timedelta(days=30)
    groups: dict[tuple[str, str, str], list[int]] = {}
    permaslugs = {m.slug: m.permaslug for m in _MODELS}
    for rec in ds.records():
        day = datetime.fromisoformat(rec["created_at"]).astimezone(UTC).date()
        if not first_day <= day < end_day:
            continue
        key = (day.isoformat(), rec["model"], rec["provider_name"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = [0] * 8
        g[0] += round(rec["usage"] * 1e9)
        g[1] += round(rec["upstream_inference_cost"] * 1e9) if rec["is_byok"] else 0
        g[2] += 1
        g[3] += rec["tokens_prompt"] or 0
        g[4] += rec["tokens_completion"] or 0
        g[5] += rec["native_tokens_reasoning"] or 0
        g[6] += rec["native_tokens_cached"] or 0
        g[7] += 1 if rec["is_byok"] else 0
    rows = []
    for (day, model, provider), g in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1][0], kv[0][1], kv[0][2])):
        rows.append({
            "date": f"{day} 00:00:00",  # live API form; the spec documents YYYY-MM-DD
            "model": model,
            "model_permaslug": permaslugs.get(model, model),
            "endpoint_id": _endpoint_id(model, provider),
            "provider_name": provider,
            "usage": _nusd_to_usd(g[0]),
            "byok_usage_inference": _nusd_to_usd(g[1]),
            "requests": g[2],
            "prompt_tokens": g[3],
            "completion_tokens": g[4],
            "reasoning_tokens": g[5],
            "cached_tokens": g[6],
            "byok_requests": g[7],  # seen live, in no spec
        })
    rows.sort(key=lambda row: row["date"], reverse=True)  # newest day first, like the live API
    return rows


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

_JSON = {"Content-Type": "application/json"}
_NO_AUTH = b'{"error":{"message":"No auth credentials found","code":401}}'
_USER_NOT_FOUND = b'{"error":{"message":"User not found.","code":401}}'
_NOT_FOUND = b'{"error":{"message":"Generation not found","code":404}}'
# /activity with an inference key: the documented 403 (openapi-extract.yaml); no live body is on record.
_NOT_MANAGEMENT = b'{"error":{"message":"Only management keys can perform this operation","code":403}}'
# The production 402 body, verbatim (tests/fixtures/error_402_requires_more_credits_production_body.json).
_CREDITS_402 = b'{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 8192 tokens, but can only afford 779. To increase, visit https://openrouter.ai/settings/credits and add more credits","code":402,"metadata":{"limit_source":"openrouter_credits","remedy_hint":"Add credits at https://openrouter.ai/settings/credits, or lower max_tokens / prompt size to fit your remaining balance.","provider_name":null,"previous_errors":[{"code":402,"message":"This request requires more credits, or fewer max_tokens. You requested up to 8192 tokens, but can only afford 734. To increase, visit https://openrouter.ai/settings/credits and add more credits"},{"code":402,"message":"This request requires more credits, or fewer max_tokens. You requested up to 8192 tokens, but can only afford 1558. To increase, visit https://openrouter.ai/settings/credits and add more credits"},{"code":402,"message":"This request requires more credits, or fewer max_tokens. You requested up to 8192 tokens, but can only afford 1558. To increase, visit https://openrouter.ai/settings/credits and add more credits"}]}}}'
_FATAL_BODIES = {
    401: _USER_NOT_FOUND,
    402: _CREDITS_402,
    403: b'{"error":{"message":"Only management keys can perform this operation","code":403}}',
}
_ERROR_JSON = {
    500: b'{"error":{"message":"Internal Server Error","code":500}}',
    529: b'{"error":{"message":"Provider returned error","code":529}}',
}
_RATE_LIMITED = b'{"error":{"message":"Rate limit exceeded","code":429}}'


def _cloudflare_page(status: int, title: str, detail: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n"
        "<html lang=\"en-US\">\n<head>\n<title>openrouter.ai | " + f"{status}: {title}" + "</title>\n"
        "<meta charset=\"UTF-8\" />\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n"
        "<link rel=\"stylesheet\" id=\"cf_styles-css\" href=\"/cdn-cgi/styles/cf.errors.css\" />\n</head>\n<body>\n"
        "<div id=\"cf-wrapper\"><div id=\"cf-error-details\" class=\"cf-error-details-wrapper\">\n"
        f"<h1><span class=\"cf-error-type\">Error</span> <span class=\"cf-error-code\">{status}</span></h1>\n"
        f"<h2 class=\"cf-subheadline\">{title}</h2>\n<p>{detail}</p>\n"
        "<div class=\"cf-error-footer\"><span>Cloudflare Ray ID: <strong class=\"font-semibold\">9a1b2c3d4e5f6a7b</strong></span>"
        " &bull; <span>Performance &amp; security by Cloudflare</span></div>\n</div></div>\n</body>\n</html>\n"
    ).encode()


_HTML_PAGES = {
    502: _cloudflare_page(502, "Bad gateway", "The web server reported a bad gateway error."),
    524: _cloudflare_page(524, "A timeout occurred", "The origin web server timed out responding to this request."),
}
_HTML = {"Content-Type": "text/html; charset=UTF-8"}


@dataclass
class ServerStats:
    """What the server answered. Mutated on the server's loop: read it when requests are done, or use snapshot()."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)  # status line sent (a truncated 200 counts as 200)
    by_fault: Counter[str] = field(default_factory=Counter)   # injected faults by kind, "not_found_lag", "rate_limited"
    ok_by_id: Counter[str] = field(default_factory=Counter)   # complete 200s from /generation, per id
    content_ok_by_id: Counter[str] = field(default_factory=Counter)  # complete 200s from /generation/content
    content_requests: int = 0  # every request to /generation/content, whatever the answer
    activity_requests: int = 0  # every request to /activity, whatever the answer


class _Api:
    def __init__(self, dataset: Dataset, api_key: str, faults: Faults,
                 management_key: str = DEFAULT_MANAGEMENT_KEY) -> None:
        self.dataset = dataset
        self.faults = faults
        self.stats = ServerStats()
        self._auth = f"Bearer {api_key}"
        self._management_auth = f"Bearer {management_key}"
        self._rng = random.Random(faults.seed)
        self._fault_cum: list[tuple[float, str]] = []
        total = 0.0
        for kind, rate in faults.kinds():
            if rate > 0:
                total += rate
                self._fault_cum.append((total, kind))
        self._seen: dict[tuple[str, str], int] = {}
        self._content_requests = 0
        self._bucket_tokens = max(1.0, faults.max_rps or 0)
        self._bucket_at = time.monotonic()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/generation", self.generation)
        app.router.add_get("/api/v1/generation/content", self.generation_content)
        app.router.add_get("/api/v1/activity", self.activity)
        return app

    def _send(self, status: int, body: bytes, headers: dict[str, str] = _JSON) -> web.Response:
        self.stats.by_status[status] += 1
        return web.Response(status=status, body=body, headers=headers)

    async def _gate(self, request: web.Request, *, management: bool = False) -> web.StreamResponse | str | None:
        """Auth (the management key for `management` routes, which refuse the inference key with
        403), the fatal switch, the rate limit, then at most one injected fault (by name)."""
        self.stats.requests += 1
        auth = request.headers.get("Authorization")
        if not auth:
            return self._send(401, _NO_AUTH)
        if management and auth == self._auth:
            return self._send(403, _NOT_MANAGEMENT)
        if auth != (self._management_auth if management else self._auth):
            return self._send(401, _USER_NOT_FOUND)
        f = self.faults
        if f.fatal_after is not None and self.stats.requests > f.fatal_after:
            self.stats.by_fault["fatal"] += 1
            return self._send(f.fatal_status, _FATAL_BODIES[f.fatal_status])
        if f.max_rps is not None:
            limited = self._rate_limit(f.max_rps)
            if limited is not None:
                return limited
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if not self._fault_cum:
            return None
        x = self._rng.random()
        for bound, kind in self._fault_cum:
            if x < bound:
                break
        else:
            return None
        if kind in ("truncated", "slow"):
            return kind  # applied to the 200 itself
        self.stats.by_fault[kind] += 1
        if kind == "429":
            return self._too_many_requests(f.retry_after_s, in_body=self._rng.random() < f.rate_limit_in_body_share)
        if kind == "500":
            return self._send(500, _ERROR_JSON[500])
        if kind == "529":
            return self._send(529, _ERROR_JSON[529])
        if kind == "502_html":
            return self._send(502, _HTML_PAGES[502], _HTML)
        if kind == "524_html":
            return self._send(524, _HTML_PAGES[524], _HTML)
        # drop: close the connection without answering
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError

    def _rate_limit(self, max_rps: float) -> web.Response | None:
        now = time.monotonic()
        capacity = max(1.0, max_rps)
        self._bucket_tokens = min(capacity, self._bucket_tokens + (now - self._bucket_at) * max_rps)
        self._bucket_at = now
        if self._bucket_tokens >= 1:
            self._bucket_tokens -= 1
            return None
        wait_s = (1 - self._bucket_tokens) / max_rps
        self.stats.by_fault["rate_limited"] += 1
        reset_ms = int((time.time() + wait_s) * 1000)
        headers = {**_JSON, "Retry-After": str(max(1, math.ceil(wait_s))), "X-RateLimit-Limit": str(int(capacity)),
                   "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}
        return self._send(429, _RATE_LIMITED, headers)

    def _too_many_requests(self, retry_after_s: float, *, in_body: bool) -> web.Response:
        if not in_body:
            return self._send(429, _RATE_LIMITED, {**_JSON, "Retry-After": str(math.ceil(retry_after_s))})
        reset_ms = int((time.time() + retry_after_s) * 1000)
        body = orjson.dumps({"error": {"message": "Rate limit exceeded: limit_rpm/generation", "code": 429,
                                       "metadata": {"headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
                                                                "X-RateLimit-Reset": str(reset_ms)}}}})
        return self._send(429, body)

    async def _serve_id(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        gate = await self._gate(request)
        if isinstance(gate, web.StreamResponse):
            return gate
        if endpoint == "content" and self.faults.content_forbidden_after is not None:
            self._content_requests += 1
            if self._content_requests > self.faults.content_forbidden_after:
                self.stats.by_fault["content_forbidden"] += 1
                return self._send(403, _FATAL_BODIES[403])
        generation_id = request.query.get("id", "")
        if not generation_id:
            return self._send(400, b'{"error":{"message":"Missing required query parameter: id","code":400}}')
        ds = self.dataset
        index = ds.index_of(generation_id)
        if index is None:
            return self._send(404, _NOT_FOUND)
        if self.faults.not_found_first:
            key = (endpoint, generation_id)
            seen = self._seen.get(key, 0)
            if seen < self.faults.not_found_first:
                self._seen[key] = seen + 1
                self.stats.by_fault["not_found_lag"] += 1
                return self._send(404, _NOT_FOUND)
        if endpoint == "generation":
            body = ds.body_at(index, generation_id)
        else:
            body = orjson.dumps({"data": _build_content(ds, index)})
        if gate == "slow":
            self.stats.by_fault["slow"] += 1
            await asyncio.sleep(self.faults.slow_s)
        elif gate == "truncated":
            self.stats.by_fault["truncated"] += 1
            cut = 1 + int(self._rng.random() * (len(body) - 2))
            return self._send(200, body[:cut])
        (self.stats.ok_by_id if endpoint == "generation" else self.stats.content_ok_by_id)[generation_id] += 1
        return self._send(200, body)

    async def generation(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_id(request, "generation")

    async def generation_content(self, request: web.Request) -> web.StreamResponse:
        self.stats.content_requests += 1
        return await self._serve_id(request, "content")

    async def activity(self, request: web.Request) -> web.StreamResponse:
        self.stats.activity_requests += 1
        gate = await self._gate(request, management=True)
        if isinstance(gate, web.StreamResponse):
            return gate
        day = request.query.get("date")
        if day is not None:
            try:
                date.fromisoformat(day)
            except ValueError:
                return self._send(400, b'{"error":{"message":"Invalid date format, expected YYYY-MM-DD","code":400}}')
        rows = await asyncio.get_running_loop().run_in_executor(None, self.dataset.activity, day)
        body = orjson.dumps({"data": rows})
        if gate == "slow":
            self.stats.by_fault["slow"] += 1
            await asyncio.sleep(self.faults.slow_s)
        elif gate == "truncated":
            self.stats.by_fault["truncated"] += 1
            return self._send(200, body[: max(1, len(body) // 2)])
        return self._send(200, body)


class ServerHandle:
    """A running fake API. `with start_server(ds) as srv: ... srv.base_url ...`; `close()` stops it."""

    def __init__(self, api: _Api, host: str, port: int, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 runner: web.AppRunner) -> None:
        self._api = api
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}/api/v1"
        self._loop = loop
        self._thread = thread
        self._runner = runner

    @property
    def stats(self) -> ServerStats:
        return self._api.stats

    @property
    def dataset(self) -> Dataset:
        return self._api.dataset

    def snapshot(self) -> ServerStats:
        """A copy of the stats taken on the server's loop: safe to read while requests are in flight."""

        async def copy() -> ServerStats:
            s = self._api.stats
            return ServerStats(s.requests, Counter(s.by_status), Counter(s.by_fault), Counter(s.ok_by_id),
                               Counter(s.content_ok_by_id), s.content_requests)

        return asyncio.run_coroutine_threadsafe(copy(), self._loop).result(timeout=10)

    def reset_stats(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self._api, "stats", ServerStats())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServerHandle({self.base_url!r})"


async def _start_site(api: _Api, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # started just above
    return runner, server.sockets[0].getsockname()[1]


def start_server(dataset: Dataset, *, api_key: str = DEFAULT_API_KEY, faults: Faults = Faults(),
                 host: str = "127.0.0.1", port: int = 0,
                 management_key: str = DEFAULT_MANAGEMENT_KEY) -> ServerHandle:
    """Serve `dataset` from a background thread with its own event loop; returns once listening.

    Port 0 picks a free port (see `handle.port` / `handle.base_url`).
    """
    api = _Api(dataset, api_key, faults, management_key)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["site"] = loop.run_until_complete(_start_site(api, host, port))
        except BaseException as e:  # reported to the caller below
            started["error"] = e
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)  # e.g. a "slow" fault still sleeping past the shutdown timeout
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name=f"fake-openrouter-{port}", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise started["error"]
    runner, bound_port = started["site"]
    return ServerHandle(api, host, bound_port, loop, thread, runner)


def serve(dataset: Dataset, *, api_key: str = DEFAULT_API_KEY, faults: Faults = Faults(), host: str = "127.0.0.1",
          port: int = 0, on_listening: Callable[[str], None] = print,
          management_key: str = DEFAULT_MANAGEMENT_KEY) -> None:
    """Serve in the foreground until SIGINT or SIGTERM; `on_listening(base_url)` runs once it listens."""

    async def main() -> None:
        api = _Api(dataset, api_key, faults, management_key)
        runner, bound_port = await _start_site(api, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        on_listening(f"http://{host}:{bound_port}/api/v1")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


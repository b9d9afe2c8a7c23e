"""How fast does every report answer on a big warehouse? Target: under 2 s each at 10M generations.

    .venv/bin/python bench/reports.py            # 10,000,000 generations
    .venv/bin/python bench/reports.py --quick    # 1,000,000
    .venv/bin/python bench/reports.py --rows 3000000 --repeat 5

The warehouse is built once per size under bench/out/ (reused afterwards; --rebuild to redo it) by
DuckDB SQL alone: range() and hash-derived columns, no HTTP and no JSON parsing, so 10M rows take a
minute, not an hour. Its schema and views are the real ones (pipeline.warehouse.duckdb_file.connect); the
values are plausible, not the fake API's: 20 models with their own prices and providers, 6 apps,
500 users, sessions, cache reads and writes, BYOK, cancellations, ~7% fallbacks. `raw` holds '{}':
reports never read it, and a columnar file never touches a column a query does not name.

Each report runs with its default options over the default window (the last 30 days of data, a
half of the 60 the data span), `--repeat` times on one read-only connection; the median is quoted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import reports  # noqa: E402
from pipeline.warehouse.duckdb_file import connect  # noqa: E402

OUT = ROOT / "bench" / "out"
DAYS = 60
END_EPOCH_S = 1_788_220_800  # 2026-09-01T00:00:00Z

# (model, prompt USD per million tokens, completion USD per million tokens, providers)
MODELS = [
    ("openai/gpt-4.1-mini", 0.4, 1.6, ["OpenAI", "Azure"]),
    ("google/gemini-2.5-flash", 0.3, 2.5, ["Google AI Studio", "Google"]),
    ("anthropic/claude-sonnet-4.5", 3.0, 15.0, ["Anthropic", "Amazon Bedrock", "Google"]),
    ("openai/gpt-5-mini", 0.25, 2.0, ["OpenAI"]),
    ("deepseek/deepseek-v3.2", 0.28, 0.42, ["DeepSeek", "DeepInfra", "Novita"]),
    ("openai/gpt-oss-120b", 0.1, 0.5, ["DeepInfra", "Groq", "Together"]),
    ("anthropic/claude-haiku-4.5", 1.0, 5.0, ["Anthropic", "Amazon Bedrock"]),
    ("google/gemini-2.5-flash-lite", 0.1, 0.4, ["Google AI Studio", "Google"]),
    ("meta-llama/llama-4-scout", 0.08, 0.3, ["DeepInfra", "Groq", "Together"]),
    ("x-ai/grok-4-fast", 0.2, 0.5, ["xAI"]),
    ("google/gemini-2.5-pro", 1.25, 10.0, ["Google", "Google AI Studio"]),
    ("meta-llama/llama-3.3-70b-instruct", 0.13, 0.39, ["DeepInfra", "Together", "Groq"]),
    ("mistralai/mistral-medium-3.1", 0.4, 2.0, ["Mistral"]),
    ("qwen/qwen3-235b-a22b-2507", 0.13, 0.6, ["DeepInfra", "Novita", "Chutes"]),
    ("deepseek/deepseek-r1-0528", 0.5, 2.15, ["Together", "Fireworks", "Novita"]),
    ("moonshotai/kimi-k2-0905", 0.39, 1.9, ["Moonshot AI", "Groq", "Novita"]),
    ("z-ai/glm-4.6", 0.6, 2.2, ["Z.AI", "Novita"]),
    ("openai/text-embedding-3-small", 0.02, 0.0, ["OpenAI"]),
    ("openai/gpt-5", 1.25, 10.0, ["OpenAI", "Azure"]),
    ("anthropic/claude-opus-4.1", 15.0, 75.0, ["Anthropic", "Amazon Bedrock", "Google"]),
]
APPS = [  # (app_id, origin, http_referer)
    (3120457, "https://support.acme-widgets.com/", "https://support.acme-widgets.com/"),
    (None, "", None),
    (1091476, "https://cline.bot/", "https://cline.bot"),
    (2212034, "https://chat.internal.acme.dev/", "https://chat.internal.acme.dev/"),
    (1, "https://openrouter.ai/", "https://openrouter.ai/"),
    (2872617, "https://github.com/acme/llm-evals", "https://github.com/acme/llm-evals"),
]


def _sql_list(values: list) -> str:
    return "[" + ", ".join("NULL" if v is None else repr(v) for v in values) + "]"


def build(path: Path, rows: int) -> float:
    """Fill a fresh warehouse with `rows` generations in two INSERT ... SELECT statements; returns seconds."""
    start = time.perf_counter()
    path.unlink(missing_ok=True)
    con = connect(path)
    # The ingest's memory settings (pipeline/warehouse/duckdb_writes.py) suit batches of a few thousand rows; generating
    # millions of rows in one statement needs DuckDB's usual room and threads.
    con.execute("set memory_limit = '8GB'")
    con.execute("set threads = 2")
    con.execute("set preserve_insertion_order = true")
    models = _sql_list([m for m, _, _, _ in MODELS])
    prompt_prices = _sql_list([p for _, p, _, _ in MODELS])
    completion_prices = _sql_list([c for _, _, c, _ in MODELS])
    providers = "[" + ", ".join(_sql_list(ps) for _, _, _, ps in MODELS) + "]"
    # u(k): a uniform in [0, 1) from the k-th hash of the row number; reproducible, no random() state
    u = "((hash(i, {k}) % 1000000) / 1e6)".format
    con.execute(
        f"""
        insert into generations by name
        with rows as (
            select
                i,
                -- skewed towards the first models, like real traffic
                1 + floor(pow({u(k=1)}, 2) * {len(MODELS)})::int as m,
                1 + (hash(i, 2) % {len(APPS)})::int as a,
                {u(k=3)} as u_outcome,
                {u(k=4)} as u_cache,
                greatest(1, floor(900 * exp(4 * ({u(k=5)} - 0.5))))::bigint as prompt,
                floor(280 * exp(3 * ({u(k=6)} - 0.5)))::bigint as completion,
                exp(2 * ({u(k=7)} - 0.5)) as slowness
            from range({rows}) as r(i)
        ),
        shaped as (
            select
                *,
                {models}[m] as model,
                {providers}[m][1 + (hash(i, 8) % len({providers}[m]))::int] as provider_name,
                ({prompt_prices}[m] * prompt + {completion_prices}[m] * completion) / 1e6 as list_cost,
                u_outcome < 0.04 as is_byok,
                case when u_cache < 0.25 then 0.5 * prompt else 0 end as cached
            from rows
        )
        select
            printf('gen-%010d-%020d', {END_EPOCH_S} - {DAYS * 86400} + i * {DAYS * 86400} // {rows}, i) as id,
            to_timestamp({END_EPOCH_S} - {DAYS * 86400} + i * {DAYS * 86400}.0 / {rows}) as created_at,
            model,
            provider_name,
            {_sql_list([a for a, _, _ in APPS])}[a] as app_id,
            {_sql_list([o for _, o, _ in APPS])}[a] as origin,
            {_sql_list([r for _, _, r in APPS])}[a] as http_referer,
            case when hash(i, 9) % 3 = 0 then 'user-' || (hash(i, 10) % 500) end as external_user,
            case when hash(i, 11) % 5 < 3 then 'sess-' || (i // 40) end as session_id,
            prompt as tokens_prompt,
            completion as tokens_completion,
            prompt as native_tokens_prompt,
            completion as native_tokens_completion,
            cached::bigint as native_tokens_cached,
            case when is_byok then list_cost * 0.05 else list_cost - cached * 0.9 * {prompt_prices}[m] / 1e6 end
                as total_cost,
            case when is_byok then list_cost * 0.05 else list_cost - cached * 0.9 * {prompt_prices}[m] / 1e6 end
                as usage,
            case
                when cached > 0 then cached * 0.9 * {prompt_prices}[m] / 1e6
                when u_cache > 0.95 then -0.25 * prompt * {prompt_prices}[m] / 1e6
            end as cache_discount,
            case when is_byok then list_cost else 0 end as upstream_inference_cost,
            round(400 * slowness) as latency,
            case when u_outcome > 0.995 then 0 else round(400 * slowness + completion * 12 * slowness) end
                as generation_time,
            is_byok,
            hash(i, 12) % 10 < 7 as streamed,
            u_outcome between 0.97 and 0.99 as cancelled,
            case
                when u_outcome between 0.97 and 0.99 then null
                when u_outcome > 0.99 then 'error'
                when u_outcome > 0.9 then 'length'
                when u_outcome > 0.8 then 'tool_calls'
                else 'stop'
            end as finish_reason,
            'completions' as api_type,
            '{{}}' as raw,
            now() as loaded_at,
            'bench' as run_id
        from shaped
        order by i
        """
    )
    # one attempt per generation; ~7% fell back from another provider first (1% twice)
    con.execute(
        """
        insert into provider_responses by name
        with numbered as (
            select id, provider_name, latency, row_number() over () as i, finish_reason
            from generations
        ),
        attempts as (
            select
                id,
                provider_name,
                latency,
                finish_reason,
                i,
                1 + (hash(i, 20) % 100 < 7)::int + (hash(i, 20) % 100 < 1)::int as n
            from numbered
        ),
        expanded as (
            select *, unnest(range(n)) as attempt
            from attempts
        )
        select
            id as generation_id,
            attempt::int as attempt,
            case when attempt = n - 1 then provider_name else 'Fallback-' || (hash(i, 21) % 5) end as provider_name,
            case
                when attempt < n - 1 then [429, 429, 500, 502, 503][1 + (hash(i, attempt) % 5)::int]
                when finish_reason = 'error' then 502
                else 200
            end as status,
            case when attempt = n - 1 then latency else 300 end as latency
        from expanded
        """
    )
    con.execute("checkpoint")
    con.close()
    return time.perf_counter() - start


def bench(path: Path, repeat: int) -> list[tuple[str, float, int]]:
    """(report, median seconds, rows) per report, each with its default options and window."""
    results = []
    con = connect(path, read_only=True)
    try:
        for report in reports.list_reports():
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                frame = reports.run_report(con, report.name).frame
                times.append(time.perf_counter() - start)
            results.append((report.name, statistics.median(times), frame.height))
    finally:
        con.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="generations in the warehouse")
    parser.add_argument("--quick", action="store_true", help="1,000,000 generations")
    parser.add_argument("--repeat", type=int, default=3, help="runs per report (the median is quoted)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the warehouse even if it exists")
    args = parser.parse_args()
    rows = 1_000_000 if args.quick else args.rows

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"reports_{rows}.duckdb"
    if args.rebuild or not path.exists():
        print(f"building {path.name}: {rows:,} generations ...", file=sys.stderr, flush=True)
        seconds = build(path, rows)
        print(f"built in {seconds:.1f} s ({path.stat().st_size / 1e6:,.0f} MB)", file=sys.stderr)

    results = bench(path, args.repeat)
    print(f"{'report':<20} {'median s':>9} {'rows':>6}   ({rows:,} generations, {args.repeat} runs each)")
    for name, seconds, height in results:
        print(f"{name:<20} {seconds:>9.3f} {height:>6}")
    name, seconds, _ = max(results, key=lambda r: r[1])
    print(f"slowest: {name} {seconds:.3f} s; target < 2 s at 10M: {'ok' if seconds < 2 else 'OVER'}")


if __name__ == "__main__":
    main()

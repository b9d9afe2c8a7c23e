"""Prompts, completions and stored errors (`/generation/content`), opt-in.

What a user relies on: nothing is asked for without --with-content; each loaded generation's
content is fetched once (an answer of "nothing stored" included) and stored typed; a 403 turns
content off for the run and keeps the metadata; a body of megabytes loads, a longer one than
--max-content-bytes is kept cut with its real size; a purge takes the text out of the warehouse's
bytes; neither the key nor any content reaches the output.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from pipeline import warehouse
from pipeline.cli import cli
from pipeline.config import DEFAULT_MAX_CONTENT_BYTES, ExitCode
from pipeline.fake_api import Dataset, Faults, start_server
from pipeline.ingest import ingest
from pipeline.normalize import CONTENT_INLINE_BODY_BYTES, CONTENT_PART_CHARS, normalize_content

import lakes
from lakes import Target
from test_ingest import KEY, options, read, write_id_log

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def one_row(body: bytes, *, max_bytes: int = DEFAULT_MAX_CONTENT_BYTES) -> dict:
    normalized = normalize_content([("gen-1", body)], max_bytes=max_bytes)
    assert normalized.rejected == []
    return normalized.rows.row(0, named=True)


# --- the body, parsed ----------------------------------------------------------------------------


def test_the_docs_example_body_parses_to_the_exact_row():
    body = fixture("generation_content_200_docs_openapi_example.json")
    assert one_row(body) == {
        "generation_id": "gen-1",
        "content_status": "stored",
        "input_kind": "messages",
        "messages": [{"role": "user", "content": "What is the meaning of life?", "content_parts": None}],
        "prompt": None,
        "completion": "The meaning of life is a philosophical question...",
        "reasoning": None,
        "error_status": None,
        "error_message": None,
        "error_provider_name": None,
        "error_raw": None,
        "previous_errors": None,
        "input_bytes": len("What is the meaning of life?"),
        "output_bytes": len("The meaning of life is a philosophical question..."),
        "body_bytes": len(body),
        "truncated": False,
        "raw": orjson.dumps(orjson.loads(body)["data"]).decode(),
        "stored_in_parts": False,
    }


def test_a_failed_generation_keeps_its_error_and_every_attempt_before_it():
    row = one_row(fixture("generation_content_200_failed_composed_from_openapi_error_example.json"))
    assert row["input_kind"] == "prompt" and row["prompt"] == "What is the meaning of life?"
    assert (row["error_status"], row["error_provider_name"], row["error_message"]) == (
        504, "Vertex", "Timed out waiting for the provider")
    assert row["error_raw"] == '{"error":{"code":504,"message":"Deadline exceeded"}}'
    assert row["previous_errors"] == [{"code": 429, "message": "Provider returned error", "provider_name": "Google",
                                       "raw": '{"error":{"code":429,"message":"Resource exhausted"}}'}]
    assert row["completion"] is None and row["content_status"] == "stored"


def test_message_content_given_as_parts_is_kept_as_json():
    parts = [{"type": "text", "text": "What is in this image?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    body = orjson.dumps({"data": {"error": None, "input": {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]},
        "output": {"completion": "A cat.", "reasoning": "Looking at it."}}})
    row = one_row(body)
    assert row["messages"] == [{"role": "system", "content": "Be brief.", "content_parts": None},
                               {"role": "user", "content": None, "content_parts": orjson.dumps(parts).decode()}]
    assert row["input_bytes"] == len("Be brief.") + len(orjson.dumps(parts))
    assert row["output_bytes"] == len("A cat.") + len("Looking at it.")


@pytest.mark.parametrize("empty_input", [{"messages": []}, {"prompt": ""}, None])
def test_an_answer_with_nothing_stored_is_a_row_of_its_own(empty_input):
    body = orjson.dumps({"data": {"error": None, "input": empty_input, "output": {"completion": None, "reasoning": None}}})
    row = one_row(body)
    assert row["content_status"] == "none_stored"
    assert (row["input_kind"], row["messages"], row["prompt"], row["input_bytes"], row["output_bytes"]) == (
        None, None, None, 0, 0)


def test_a_body_over_max_content_bytes_is_stored_cut_with_its_real_size():
    prompt = "é" * 3000  # two bytes each: the cut never splits one
    body = orjson.dumps({"data": {"error": None, "input": {"prompt": prompt},
                                  "output": {"completion": "ok", "reasoning": None}}})
    row = one_row(body, max_bytes=1001)
    assert row["truncated"] is True
    assert row["prompt"] == "é" * 500
    assert row["input_bytes"] == 6000 and row["body_bytes"] == len(body)
    assert orjson.loads(row["raw"]) == {"error": None, "input": {"prompt": "é" * 500},
                                        "output": {"completion": "ok", "reasoning": None}}  # still JSON
    assert row["completion"] == "ok"


def test_a_big_body_is_stored_in_parts_that_put_together_are_its_data(tmp_path: Path):
    """A body over CONTENT_INLINE_BODY_BYTES keeps its small fields in its row and its `data` text
    in parts; the generation_content view reads it like any other row."""
    parts = [{"type": "text", "text": "Describe this."}, {"type": "image_url", "image_url": {"url": "x" * 50_000}}]
    data = {"error": None, "input": {"messages": [{"role": "system", "content": "é" * 20_000},
                                                  {"role": "user", "content": parts}]},
            "output": {"completion": "A picture of x.", "reasoning": "Looked."}}
    body = orjson.dumps({"data": data})
    normalized = normalize_content([("gen-big", body), ("gen-small", fixture("generation_content_200_docs_openapi_example.json"))],
                                   max_bytes=DEFAULT_MAX_CONTENT_BYTES)
    big = normalized.rows.row(0, named=True)
    assert big["stored_in_parts"] is True and big["raw"] is None and big["messages"] is None
    assert big["input_bytes"] == 40_000 + len(orjson.dumps(parts)) and big["body_bytes"] == len(body)
    assert "".join(normalized.parts.sort("part")["text"]) == orjson.dumps(data).decode()
    assert normalized.parts["text"].str.len_chars().max() <= CONTENT_PART_CHARS
    assert set(normalized.parts["generation_id"]) == {"gen-big"}

    writer = warehouse.open_writer(tmp_path / "w.duckdb")
    try:
        assert writer.write_content(normalized, run_id="test") == 2
        assert writer.write_content(normalized, run_id="test") == 0  # written once
    finally:
        writer.close()
    [(messages, completion, reasoning, raw, input_bytes)] = read(
        tmp_path / "w.duckdb", "select messages, completion, reasoning, raw, input_bytes from generation_content "
                               "where generation_id = 'gen-big'")
    assert messages == [{"role": "system", "content": "é" * 20_000, "content_parts": None},
                        {"role": "user", "content": None, "content_parts": orjson.dumps(parts).decode()}]
    assert (completion, reasoning, orjson.loads(raw), input_bytes) == ("A picture of x.", "Looked.", data, big["input_bytes"])
    assert read(tmp_path / "w.duckdb", "select count(*) from generation_content_parts") == [(normalized.parts.height,)]


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>oops", "content body is not JSON"),
    (b'{"error": {"message": "x"}}', "content body has no `data` object"),
    (b'{"data": {"input": {"messages": "secret prompt text"}, "output": {}}}',
     "content body: `input.messages` is string, not array"),
    (b'{"data": {"input": {"prompt": "secret prompt text"}, "output": {"completion": 7}}}',
     "content body: `output.completion` is number, not string"),
    (b'{"data": {"input": {"messages": ["secret prompt text"]}, "output": {}}}',
     "content body: `input.messages[0]` is string, not object"),
])
def test_a_malformed_body_is_rejected_naming_the_field_never_its_text(body, reason):
    normalized = normalize_content([("gen-1", body), ("gen-2", fixture("generation_content_200_docs_openapi_example.json"))],
                                   max_bytes=DEFAULT_MAX_CONTENT_BYTES)
    assert normalized.rejected == [("gen-1", reason)]
    assert normalized.rows["generation_id"].to_list() == ["gen-2"]


# --- end to end, on every backend ------------------------------------------------------------------


def expected_content(dataset: Dataset) -> dict[str, tuple]:
    """What the fake API stores of each generation, as (status, prompt-or-messages, completion, error status)."""
    expected = {}
    for generation_id in dataset.ids:
        data = dataset.content(generation_id)
        messages = data["input"].get("messages") or None
        prompt = data["input"].get("prompt") or None
        stored = bool(messages or prompt or data["output"]["completion"] or data["error"])
        expected[generation_id] = (
            "stored" if stored else "none_stored",
            [(m["role"], m["content"]) for m in messages] if messages else prompt,
            data["output"]["completion"],
            data["error"]["status"] if data["error"] else None,
            len(data["error"]["previous_errors"]) if data["error"] else None,
        )
    return expected


def stored_content(target: Path | Target) -> dict[str, tuple]:
    rows = read(target, "select generation_id, content_status, messages, prompt, completion, error_status, "
                        "len(previous_errors) from generation_content")
    return {generation_id: (status, [(m["role"], m["content"]) for m in messages] if messages else prompt,
                            completion, error_status, previous)
            for generation_id, status, messages, prompt, completion, error_status, previous in rows}


def test_content_is_exact_under_faults_and_a_rerun_asks_for_nothing(target: Target, tmp_path: Path):
    dataset = Dataset(400, seed=18, big_content_every=50, big_content_bytes=40_000)  # some bodies stored in parts
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY, faults=Faults.transient(0.1, not_found_first=1, seed=3)) as server:
        summary = ingest(options(logs, target, server.base_url, with_content=True), api_key=KEY)
        assert summary.outcome == "ok", summary.error
        assert summary.as_dict()["content"]["due"] == 400
        assert stored_content(target) == expected_content(dataset)
        in_parts = sum(len(dataset.content_body(i)) > CONTENT_INLINE_BODY_BYTES for i in dataset.ids)
        assert in_parts >= 5
        assert read(target, "select count(*) from generation_content_rows where stored_in_parts") == [(in_parts,)]
        errors = read(target, "select count(*) from content_errors where error_kind = 'returned'")[0][0]
        assert errors == sum(1 for i in dataset.ids if dataset.content(i)["error"])

        server.reset_stats()
        again = ingest(options(logs, target, server.base_url, with_content=True), api_key=KEY)
        assert again.outcome == "ok" and server.snapshot().content_requests == 0 and server.snapshot().requests == 0
    assert read(target, "select count(*), count(distinct generation_id) from generation_content") == [(400, 400)]


def test_without_the_flag_no_content_request_is_sent(tmp_path: Path):
    dataset = Dataset(200, seed=5)
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        summary = ingest(options(logs, tmp_path / "w.duckdb", server.base_url), api_key=KEY)
        assert summary.outcome == "ok" and summary.progress.loaded == 200
        assert server.snapshot().content_requests == 0
    assert read(tmp_path / "w.duckdb", "select count(*) from generation_content") == [(0,)]
    assert summary.as_dict()["content"] is None


def test_content_only_backfills_loaded_generations_without_fetching_metadata(tmp_path: Path):
    dataset = Dataset(150, seed=6)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        assert ingest(options(logs, path, server.base_url), api_key=KEY).outcome == "ok"
        server.reset_stats()
        summary = ingest(replace(options(logs, path, server.base_url, content_only=True), paths=()), api_key=KEY)
        stats = server.snapshot()
    assert summary.outcome == "ok"
    assert stats.requests == stats.content_requests == 150 and sum(stats.ok_by_id.values()) == 0
    assert stored_content(path) == expected_content(dataset)


def test_a_403_mid_run_turns_content_off_and_keeps_the_metadata(tmp_path: Path):
    dataset = Dataset(300, seed=7)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY, faults=Faults(content_forbidden_after=60)) as server:
        runner = CliRunner()
        env = {"OPENROUTER_API_KEY": KEY, "OPENROUTER_BASE_URL": server.base_url}
        result = runner.invoke(cli, ["ingest", str(logs), "--warehouse", str(path), "--with-content", "--json", "-q"],
                               env=env)
        forbidden = server.snapshot().by_fault["content_forbidden"]
    assert result.exit_code == ExitCode.KEY_REFUSED, result.output
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "content_refused" and summary["loaded"] == 300
    assert "management key" in summary["content"]["refused"] and summary["content"]["refused"] == summary["error"]
    assert "\n" not in summary["error"]
    stored = read(path, "select count(*) from generation_content")[0][0]
    assert 0 < stored <= 60 and forbidden >= 1
    assert read(path, "select count(*) from generations") == [(300,)]
    assert read(path, "select outcome from ingest_runs") == [("content_refused",)]

    with start_server(dataset, api_key=KEY) as server:  # a key that may: the rest, and only the rest
        summary = ingest(options(logs, path, server.base_url, with_content=True), api_key=KEY)
        assert summary.outcome == "ok" and server.snapshot().content_requests == 300 - stored
    assert stored_content(path) == expected_content(dataset)


def test_a_20_mb_body_loads_whole(tmp_path: Path):
    dataset = Dataset(4, seed=8, big_content_every=2, big_content_bytes=20 * 2**20)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        summary = ingest(options(logs, path, server.base_url, with_content=True), api_key=KEY)
    assert summary.outcome == "ok", summary.error
    rows = read(path, "select generation_id, input_bytes, truncated, body_bytes from generation_content "
                      "where input_bytes > 2**20")
    assert len(rows) == 2
    for generation_id, input_bytes, truncated, body_bytes in rows:
        messages = dataset.content(generation_id)["input"]["messages"]
        assert input_bytes == sum(len(m["content"].encode()) for m in messages) > 20 * 2**20 - 1
        assert truncated is False and body_bytes > 20 * 2**20
    assert stored_content(path) == expected_content(dataset)


# --- privacy -------------------------------------------------------------------------------------


def test_neither_the_key_nor_any_content_reaches_the_output(tmp_path: Path):
    dataset = Dataset(200, seed=9)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY, faults=Faults.transient(0.2, seed=4)) as server:
        result = CliRunner().invoke(cli, ["ingest", str(logs), "--warehouse", str(path), "--with-content", "--json"],
                                    env={"OPENROUTER_API_KEY": KEY, "OPENROUTER_BASE_URL": server.base_url})
    assert result.exit_code == 0, result.output
    output = result.stdout + result.stderr
    assert KEY not in output
    texts = [text for i in dataset.ids for text in _texts(dataset.content(i)) if len(text) >= 24]
    assert len(texts) > 200
    leaked = [text for text in texts if text[:24] in output]
    assert leaked == []


def _texts(data: dict) -> list[str]:
    texts = [m["content"] for m in data["input"].get("messages") or [] if m["role"] != "system"]
    texts += [data["input"].get("prompt") or "", data["output"]["completion"] or "", data["output"]["reasoning"] or ""]
    return texts


def test_a_new_warehouse_file_and_its_log_are_its_owners_only_an_existing_ones_mode_is_kept(tmp_path: Path):
    dataset = Dataset(20, seed=10)
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    existing = tmp_path / "shared.duckdb"
    duckdb.connect(str(existing)).close()
    os.chmod(existing, 0o644)
    modes = {}
    with start_server(dataset, api_key=KEY) as server:
        for path in (tmp_path / "new.duckdb", existing):
            writer = warehouse.open_writer(path)
            try:
                writer.stage_ids([(generation_id, "log") for generation_id in dataset.ids], seen_at=dataset.end)
                wal = Path(f"{path}.wal")
                modes[path.name] = (stat.S_IMODE(path.stat().st_mode), wal.exists() and stat.S_IMODE(wal.stat().st_mode))
            finally:
                writer.close()
        assert ingest(options(logs, tmp_path / "new.duckdb", server.base_url, with_content=True), api_key=KEY).outcome == "ok"
    assert modes == {"new.duckdb": (0o600, 0o600), "shared.duckdb": (0o644, 0o644 & ~_umask())}
    assert stat.S_IMODE((tmp_path / "new.duckdb").stat().st_mode) == 0o600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_purge_takes_the_text_out_of_the_files_bytes(tmp_path: Path):
    # Prompts of 64 KB: DuckDB keeps strings that long as they are, so the text is findable in the
    # file's bytes before the purge (short ones are compressed), and the test can fail.
    dataset = Dataset(60, seed=12, big_content_every=3, big_content_bytes=64 * 1024)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        assert ingest(options(logs, path, server.base_url, with_content=True), api_key=KEY).outcome == "ok"
    big = [i for n, i in enumerate(dataset.ids) if n % 3 == 2 and dataset.content(i)["input"].get("messages")]
    model = dataset.record(big[0])["model"]
    markers = [dataset.content(i)["input"]["messages"][1]["content"][:200].encode()
               for i in big if dataset.record(i)["model"] == model]
    kept = [i for i in big if dataset.record(i)["model"] != model]
    assert markers and kept
    assert all(marker in path.read_bytes() for marker in markers)

    result = CliRunner().invoke(cli, ["purge-content", "--model", model, "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    purged = sum(1 for i in dataset.ids if dataset.record(i)["model"] == model)
    assert f"purged the content of {purged:,} generations" in result.output
    data = path.read_bytes()
    assert [marker for marker in markers if marker in data] == []
    assert not Path(f"{path}.wal").exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read(path, "select count(*) from generation_content") == [(60 - purged,)]
    assert read(path, "select count(*) from generations") == [(60,)]
    kept_marker = dataset.content(kept[0])["input"]["messages"][1]["content"][:200].encode()
    assert kept_marker in data  # what was not purged is still there, readable

    with start_server(dataset, api_key=KEY) as server:  # purged content is fetched again only if asked
        assert ingest(options(logs, path, server.base_url), api_key=KEY).outcome == "ok"
        assert server.snapshot().content_requests == 0


def test_purge_on_a_lake_leaves_no_data_file_holding_the_purged_rows(tmp_path: Path):
    target = next(lakes.make_target("lake_sqlite", tmp_path))
    dataset = Dataset(40, seed=13)
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        assert ingest(options(logs, target, server.base_url, with_content=True), api_key=KEY).outcome == "ok"
    con = duckdb.connect()

    def content_rows_in_data_files() -> int:
        rows = 0
        for file in Path(target.data_path).rglob("*.parquet"):
            columns = {name for (name,) in con.execute("select name from parquet_schema(?)", [str(file)]).fetchall()}
            if "content_status" in columns:
                rows += con.execute("select count(*) from read_parquet(?)", [str(file)]).fetchall()[0][0]
        return rows

    assert read(target, "select count(*) from generation_content") == [(40,)]
    assert content_rows_in_data_files() == 40
    deleted = warehouse.purge_content(target.location, everything=True)
    assert deleted == 40
    assert read(target, "select count(*) from generation_content") == [(0,)]
    assert content_rows_in_data_files() == 0


# --- reading it ------------------------------------------------------------------------------------


def test_orusage_content_prints_one_generations_prompt_completion_and_error(tmp_path: Path):
    dataset = Dataset(300, seed=14)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    with start_server(dataset, api_key=KEY) as server:
        assert ingest(options(logs, path, server.base_url, with_content=True), api_key=KEY).outcome == "ok"
    runner = CliRunner()
    completed = next(i for i in dataset.ids if dataset.content(i)["output"]["completion"])
    failed = next(i for i in dataset.ids if dataset.content(i)["error"])
    nothing = next(i for i in dataset.ids if not dataset.content(i)["input"].get("messages")
                   and not dataset.content(i)["input"].get("prompt"))

    shown = runner.invoke(cli, ["content", completed, "--warehouse", str(path)])
    assert shown.exit_code == 0, shown.output
    data = dataset.content(completed)
    assert data["input"]["messages"][1]["content"] in shown.stdout and data["output"]["completion"] in shown.stdout
    assert dataset.record(completed)["model"] in shown.stdout.splitlines()[0]

    error = dataset.content(failed)["error"]
    shown = runner.invoke(cli, ["content", failed, "--warehouse", str(path)])
    assert f"HTTP {error['status']} from {error['provider_name']}: {error['message']}" in shown.stdout
    as_json = json.loads(runner.invoke(cli, ["content", failed, "--warehouse", str(path), "--json"]).stdout)
    assert as_json["error_status"] == error["status"] and len(as_json["previous_errors"]) == len(error["previous_errors"])

    assert "no content stored" in runner.invoke(cli, ["content", nothing, "--warehouse", str(path)]).stdout
    missing = runner.invoke(cli, ["content", "gen-1700000000-notLoadedAtAll000000", "--warehouse", str(path)])
    assert missing.exit_code == ExitCode.USAGE and "no content stored for it" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_purge_content_says_what_it_needs():
    runner = CliRunner()
    assert "say what to purge" in runner.invoke(cli, ["purge-content"]).stderr
    assert "--all purges everything" in runner.invoke(cli, ["purge-content", "--all", "--model", "x"]).stderr
    refused = runner.invoke(cli, ["purge-content", "--older-than", "30 days"])
    assert refused.exit_code == ExitCode.USAGE and "not an age" in refused.stderr


CONTENT_INGEST_SCRIPT = """
import os, sys
from pipeline.client import RetryPolicy
from pipeline.ingest import IngestOptions, ingest
from pathlib import Path
logs, path, base_url = sys.argv[1:4]
options = IngestOptions(paths=(logs,), warehouse_path=Path(path), base_url=base_url, concurrency=4, batch_size=25,
                        with_content=True, retry_policy=RetryPolicy(backoff_initial_s=0.01, backoff_max_s=0.05))
summary = ingest(options, api_key=os.environ["OPENROUTER_API_KEY"],
                 on_progress=lambda p: print("content", p.content_stored + p.content_none_stored, flush=True))
print("finished", summary.outcome, flush=True)
"""


def test_kill_9_while_content_loads_then_a_rerun_completes_it_without_refetching(tmp_path: Path):
    dataset = Dataset(400, seed=15)
    path = tmp_path / "w.duckdb"
    logs = write_id_log(tmp_path / "logs" / "app.log", dataset.ids)
    env = {**os.environ, "OPENROUTER_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with start_server(dataset, api_key=KEY, faults=Faults(latency_ms=2)) as server:
        child = subprocess.Popen([sys.executable, "-c", CONTENT_INGEST_SCRIPT, str(logs), str(path), server.base_url],
                                 env=env, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        for line in child.stdout:
            words = line.split()
            if words[0] == "content" and int(words[1]) >= 100:
                child.send_signal(signal.SIGKILL)
                break
        assert child.wait(timeout=60) == -signal.SIGKILL
        kept = {generation_id for (generation_id,) in read(path, "select generation_id from generation_content")}
        assert 100 <= len(kept) < 400
        server.reset_stats()
        summary = ingest(options(logs, path, server.base_url, with_content=True), api_key=KEY)
        refetched = set(server.snapshot().content_ok_by_id)
    assert summary.outcome == "ok"
    assert refetched == set(dataset.ids) - kept  # what was committed is not asked again
    assert stored_content(path) == expected_content(dataset)

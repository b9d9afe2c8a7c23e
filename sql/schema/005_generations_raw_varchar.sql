-- `raw` becomes VARCHAR (it was JSON). Same text, same queries: DuckDB's JSON functions and the
-- `->` / `->>` operators take VARCHAR as well (`raw->>'$.usage'`, `json_extract(raw, ...)`), and
-- `raw::json` still validates on demand. What changes: a JSON column validates (parses) every
-- value written to it, and `raw` is msgspec-checked JSON already (normalize.py: it is the bytes of
-- a body that decoded). Measured on a batch of 25,000 ~1.4 KB records (bench/normalize_upsert.py,
-- "raw column type"): inserting them took ~2x longer into JSON than into VARCHAR.
alter table generations alter raw type varchar;

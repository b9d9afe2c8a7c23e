"""orusage: OpenRouter usage analytics. Generation ids from logs, their metadata in DuckDB."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`from pipeline import Warehouse` without making `import pipeline` pull in DuckDB and polars."""
    if name == "Warehouse":
        from pipeline.reports import Warehouse

        return Warehouse
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")

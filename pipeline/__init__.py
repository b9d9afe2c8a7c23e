"""orusage: OpenRouter usage analytics. Generation ids from logs, their metadata in DuckDB."""

__version__ = "0.1.0"

"""The `orusage` command. Only parses options, calls one pipeline function, and prints.

Exit codes (see README): 0 all ids loaded or known not found; 1 some ids failed and will be
retried; 2 usage or input error; 3 the API refused the key (401/402/403).
"""

from __future__ import annotations

import click

from pipeline import __version__

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_KEY_REFUSED = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orusage")
def cli() -> None:
    """Usage analytics for OpenRouter: generation ids from your logs, their cost and latency in DuckDB."""


def main() -> None:
    cli()

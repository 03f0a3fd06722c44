"""The `nymble-sync` command: parse options, call one library function, exit with its code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path

import click
import orjson

from .errors import EXIT_OK, EXIT_RECORDS, NymbleSyncError
from .summary import RunSummary

__all__ = ["main"]

EXIT_INTERNAL = 70


def _log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"{stamp} {message}", err=True)


def _handle_errors(command: Callable) -> Callable:
    """Turn the project's errors into a one-paragraph message and their exit code."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NymbleSyncError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: run the same command again to finish the work", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nymble-sync")
def main() -> None:
    """Sync ERP and PIM data into Nymble Commerce: fast, idempotent, every row accounted for."""


@main.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@click.option(
    "--target",
    default="local",
    show_default=True,
    help="local (in-process emulator), sandbox, production, or a base URL.",
)
@click.option(
    "--source", type=click.Path(path_type=Path), help="Read this file instead of the job's source."
)
@click.option("--full", is_flag=True, help="Send every record, even those the target already has.")
@click.option(
    "--ledger",
    "ledger_url",
    envvar="NYMBLE_LEDGER_URL",
    help="Run ledger SQLAlchemy URL [env NYMBLE_LEDGER_URL; default: SQLite in .nymble-sync/].",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path),
    help="Write the rejects CSV here (default: .nymble-sync/rejects/JOB-runN.csv).",
)
@click.option(
    "--api-key-file",
    type=click.Path(path_type=Path),
    help="File holding the API key (otherwise NYMBLE_API_KEY).",
)
@click.option("--allow-production", is_flag=True, help="Permit writes to the production API.")
@click.option(
    "--concurrency", type=click.IntRange(1, 64), help="Requests in flight (default: job's, 4)."
)
@click.option(
    "--batch-size", "batch_items", type=click.IntRange(1, 10_000), help="Items per request."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@_handle_errors
def run(job_file: Path, as_json: bool, **options) -> None:
    """Sync one job: extract, map, check, send what changed, record it in the ledger."""
    from .app import SyncSettings, sync  # keeps `nymble-sync --help` fast

    summary = sync(SyncSettings(job_path=job_file, log=_log, **options))
    _print_summary(summary, as_json)
    sys.exit(EXIT_OK if summary.status == "succeeded" else EXIT_RECORDS)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY=ORG",
    help="Accept KEY for organization ORG (repeatable; default: one demo key).",
)
@click.option(
    "--db", type=click.Path(path_type=Path), help="SQLite file that keeps the data across restarts."
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="Inject a fault, e.g. error_rate=0.1, latency_ms=50, rate_limit=20 (repeatable).",
)
@_handle_errors
def emulator(
    host: str, port: int, api_keys: tuple[str, ...], db: Path | None, faults: tuple[str, ...]
) -> None:
    """Serve a local emulator of the Nymble API (for rehearsals and tests)."""
    from .emulator import serve_forever, settings_from_options

    try:
        settings = settings_from_options(list(api_keys), str(db) if db else None, list(faults))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    serve_forever(settings, host, port, echo=click.echo)


def _print_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    s = summary
    click.echo(f"run {s.run_id} of {s.job} → {s.target}: {s.status}")
    click.echo(f"  rows read   {s.rows_read:>10,}")
    for label, value in [
        ("rejected", s.rejected),
        ("unchanged", s.unchanged),
        ("created", s.created),
        ("updated", s.updated),
        ("failed", s.failed),
        ("skipped", s.skipped),
    ]:
        click.echo(f"  {label:<11} {value:>10,}")
    check = "balanced" if s.balanced else "NOT BALANCED: please report this as a bug"
    click.echo(f"  ({check}: read = rejected + unchanged + created + updated + failed + skipped)")
    click.echo(
        f"  {s.batches:,} batches, {s.requests:,} requests, {s.retries:,} retries; "
        f"{s.elapsed_s:.2f} s, {s.rows_per_s:,.0f} rows/s"
    )
    if s.rejects_path:
        click.echo(f"  rejects: {s.rejects_path}")
    for note in s.notes:
        click.echo(f"  note: {note}")


if __name__ == "__main__":
    main()

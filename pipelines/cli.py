"""The `nymble-sync` command: parse options, call one library function, exit with its code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from pipelines.errors import (
    EXIT_GATE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_RECORDS,
    EXIT_SIGINT,
    NymbleSyncError,
)
from pipelines.run.summary import RunSummary

if TYPE_CHECKING:
    from pipelines.ledger import Ledger
    from pipelines.ops.run_reports import TextTable

__all__ = ["main"]

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader left


def _log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"{stamp} {message}", err=True)


def _handle_errors(command: Callable) -> Callable:
    """Turn the project's errors into a one-paragraph message and their exit code; anything
    else is a bug: one line, a crash report, exit 70 (never 1, which schedulers call success)."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NymbleSyncError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: run the same command again to finish the work", err=True)
            sys.exit(EXIT_SIGINT)
        except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except click.ClickException:
            raise  # a usage error (a bad --fault, say): click prints it and exits 2
        except Exception as exc:  # noqa: BLE001 - see the docstring
            _crashed(exc)

    return wrapper


def _command_line() -> str:
    """The command as typed, for a crash report: a webhook URL carries its secret in its
    path, so ``--notify`` values are masked whole; URL passwords are masked by ``scrub``."""
    words, masked = [], False
    for word in sys.argv[1:]:
        if masked:
            words.append("***")
        elif word.startswith("--notify="):
            words.append("--notify=***")
        else:
            words.append(word)
        masked = word == "--notify"
    return "nymble-sync " + " ".join(words)


def _crashed(exc: Exception) -> None:
    from pipelines.redact import scrub
    from pipelines.run.outcome import write_crash_report
    from pipelines.targets import default_state_dir

    path = write_crash_report(exc, default_state_dir(), _command_line(), os.environ)
    message = scrub(f"{type(exc).__name__}: {exc}", os.environ)
    click.echo(f"internal error ({message}); please report it with {path}", err=True)
    sys.exit(EXIT_INTERNAL)


_ledger_option = click.option(
    "--ledger",
    "ledger_url",
    envvar="NYMBLE_LEDGER_URL",
    help="Run ledger SQLAlchemy URL [env NYMBLE_LEDGER_URL; default: SQLite in .nymble-sync/].",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


_override_gate_option = click.option(
    "--override-gate",
    "override_gates",
    multiple=True,
    type=click.Choice(["reject_rate", "row_count", "expectations"]),
    help="Ignore this quality gate for this run (repeatable).",
)
_target_option = click.option(
    "--target",
    default="local",
    show_default=True,
    help="local (in-process emulator), sandbox, production, or a base URL.",
)
_source_option = click.option(
    "--source", type=click.Path(path_type=Path), help="Read this file instead of the job's source."
)
_partial_option = click.option(
    "--partial",
    is_flag=True,
    help="The source is a subset of the feed on purpose: skip the row-count gate and mirror mode.",
)


class _ShardType(click.ParamType):
    name = "K/N"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from pipelines.run.shards import Shard

        if not isinstance(value, str):
            return value
        try:
            return Shard.parse(value)
        except NymbleSyncError as exc:
            self.fail(str(exc), param, ctx)


_shard_option = click.option(
    "--shard",
    type=_ShardType(),
    envvar="NYMBLE_SHARD",
    help="Take only shard K of N (0-based), split by a hash of the record key; each shard is "
    "its own job in the ledger, e.g. products#2of4 [env NYMBLE_SHARD].",
)
_run_group_option = click.option(
    "--run-group",
    envvar="NYMBLE_RUN_GROUP",
    help="Id of the logical run these shards belong to, e.g. the orchestrator's run id "
    "[env NYMBLE_RUN_GROUP; default: run-N of the shard's first run].",
)
_key_file_option = click.option(
    "--api-key-file",
    type=click.Path(path_type=Path),
    help="File holding the API key (otherwise NYMBLE_API_KEY).",
)


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
@_partial_option
@click.option("--full", is_flag=True, help="Send every record, even those the target already has.")
@_ledger_option
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
@click.option(
    "--allow-mass-deactivate",
    is_flag=True,
    help="Let mirror mode deactivate more than the job's max_deactivate_pct.",
)
@_override_gate_option
@click.option(
    "--log-format",
    type=click.Choice(["auto", "plain", "json"]),
    default="auto",
    show_default=True,
    help="Progress and events on stderr: auto = bars on a terminal, timestamped lines otherwise.",
)
@click.option(
    "--notify",
    "notify_urls",
    multiple=True,
    envvar="NYMBLE_NOTIFY_URL",
    metavar="URL",
    help="POST a short JSON alert here when the run ends other than succeeded (repeatable; "
    "Slack-compatible; env NYMBLE_NOTIFY_URL).",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path),
    help="Write the run's metrics here in Prometheus' textfile format (for node_exporter).",
)
@_shard_option
@_run_group_option
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="R",
    help="At most R requests/s at the target, counted over every worker sharing the ledger "
    "(overrides the job's rate_limit.requests_per_s).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Read what the org already holds first: records it holds as the source has them are "
    "recorded in the ledger as acknowledged (counted unchanged), only the others are sent.",
)
@click.option(
    "--finalize",
    is_flag=True,
    help="The final step of a sharded run (with --run-group): check that every shard "
    "finished, then deactivate what none of them read (mirror mode); reads no feed.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as one JSON object, on every exit."
)
@_handle_errors
def run(
    job_file: Path,
    as_json: bool,
    log_format: str,
    notify_urls,
    metrics_file,
    finalize: bool,
    **options,
):
    """Sync one job: extract, map, check, send what changed, record it in the ledger."""
    from pipelines.ops.memory import before_exit, loading_code

    with loading_code():  # what loads here lives until exit: no collection walks it
        from pipelines.ops.memory import defer_pandas, use_returning_allocator
        from pipelines.ops.progress import Reporter
        from pipelines.run.commands import SyncSettings  # keeps `nymble-sync --help` fast
        from pipelines.run.outcome import run_to_outcome
        from pipelines.run.stopping import StopRequest, stop_on_signals

    use_returning_allocator()
    defer_pandas()
    reporter, stop = Reporter(log_format), StopRequest()
    settings = SyncSettings(
        job_path=job_file, log=reporter.log, progress=reporter.progress, stop=stop, **options
    )
    try:
        with stop_on_signals(stop):
            outcome = run_to_outcome(settings, finalize=finalize)
    finally:
        reporter.close()
    _report_run(outcome, settings, as_json, reporter.log)
    _alert(outcome, settings, notify_urls, metrics_file, reporter.log)
    before_exit()
    sys.exit(outcome.exit_code)


def _report_run(outcome, settings, as_json: bool, log: Callable[[str], None]) -> None:
    """The summary on stdout (JSON on every exit with ``--json``); the error on stderr."""
    if as_json:
        data = outcome.to_dict(_target_label(settings))
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    elif outcome.summary is not None:
        # the error is printed below: not a second time as the note that records it
        _print_summary(outcome.summary, as_json=False, besides=outcome.error)
    if outcome.error is not None:
        crash = f"; please report it with {outcome.crash_report}" if outcome.crash_report else ""
        click.echo(f"error: {outcome.error}{crash}", err=True)


def _alert(outcome, settings, notify_urls, metrics_file: Path | None, log) -> None:
    """Alerts and metrics: a failure to deliver them is logged, never changes the exit."""
    if not notify_urls and metrics_file is None:
        return
    from pipelines.ops.alerts import notify, write_metrics

    data = outcome.to_dict(_target_label(settings))
    for warning in notify(list(notify_urls), data, environ=settings.environ):
        log(f"warning: {warning}")
    if metrics_file is not None:
        try:
            write_metrics(metrics_file, data)
        except OSError as exc:
            log(f"warning: cannot write the metrics file {metrics_file}: {exc.strerror}")


def _target_label(settings) -> str:
    """The target as the summary names it: never a key, never a URL's password."""
    from pipelines.contract import ENVIRONMENTS
    from pipelines.redact import scrub

    if settings.target == "local":
        return "local emulator"
    return settings.target if settings.target in ENVIRONMENTS else scrub(settings.target, {})


@main.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@_target_option
@_source_option
@_partial_option
@_ledger_option
@_key_file_option
@click.option(
    "--against-api", is_flag=True, help="Compare with what the org holds, not the ledger."
)
@click.option(
    "--sample",
    type=click.IntRange(0, 100),
    default=10,
    show_default=True,
    help="Updates shown field by field.",
)
@_shard_option
@_json_option
@_handle_errors
def plan(job_file: Path, as_json: bool, **options) -> None:
    """Show what `run` would create, update, leave, reject and deactivate; write nothing."""
    from pipelines.ops.memory import before_exit, defer_pandas, loading_code

    with loading_code():  # as in `run`
        from pipelines.run.commands import PlanSettings
        from pipelines.run.commands import plan as make_plan

    defer_pandas()  # as in `run`: pyarrow's probe for pandas would load it (~0.35 s, ~33 MB)

    result = make_plan(PlanSettings(job_path=job_file, log=_log, **options))
    click.echo(
        orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode()
        if as_json
        else result.text()
    )
    before_exit()


@main.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@_target_option
@_source_option
@_ledger_option
@_key_file_option
@click.option(
    "--differences",
    "differences_path",
    type=click.Path(path_type=Path),
    help="Write the differences CSV here (default: .nymble-sync/reconcile/JOB-differences.csv).",
)
@click.option(
    "--rejects", "rejects_path", type=click.Path(path_type=Path), help="Write the rejects CSV here."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), help="Requests in flight (default: job's, 4)."
)
@click.option(
    "--fix",
    is_flag=True,
    help="Send what is missing or differs through a normal run, then reconcile again.",
)
@click.option(
    "--allow-production",
    is_flag=True,
    help="Permit reading (and, with --fix, writing to) production.",
)
@_json_option
@_handle_errors
def reconcile(job_file: Path, as_json: bool, **options) -> None:
    """Compare the whole source with everything the target holds: records, fields, money."""
    from pipelines.ops.memory import defer_pandas, use_returning_allocator
    from pipelines.run.commands import ReconcileSettings
    from pipelines.run.commands import reconcile as compare

    use_returning_allocator()  # as for `run`: freed pages go back, the peak stays flat
    defer_pandas()
    found = compare(ReconcileSettings(job_path=job_file, log=_log, **options))
    _emit(found.tables(), found.to_dict(), as_json)
    sys.exit(found.exit_code)


@main.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@_target_option
@_ledger_option
@_key_file_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Write the map here: .csv, .json or .jsonl (the suffix picks the format).",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), help="Requests in flight (default: job's, 4)."
)
@click.option("--allow-production", is_flag=True, help="Permit reading production.")
@_json_option
@_handle_errors
def ids(job_file: Path, as_json: bool, **options) -> None:
    """Export source key → Nymble ids (productId, order id, ...) of the records this job owns."""
    from pipelines.run.commands import IdsSettings
    from pipelines.run.commands import ids as export

    found = export(IdsSettings(job_path=job_file, log=_log, **options))
    _emit(found.tables(), found.to_dict(), as_json)


@main.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@_target_option
@_source_option
@_partial_option
@_ledger_option
@_key_file_option
@click.option(
    "--rejects", "rejects_path", type=click.Path(path_type=Path), help="Write the rejects CSV here."
)
@_override_gate_option
@_shard_option
@_json_option
@_handle_errors
def validate(job_file: Path, as_json: bool, **options) -> None:
    """Read, map and check a feed and judge its quality gates; send nothing."""
    from pipelines.ops.memory import before_exit, defer_pandas, loading_code

    with loading_code():  # as in `run`
        from pipelines.run.commands import SyncSettings
        from pipelines.run.commands import validate as check

    defer_pandas()  # as in `run`: pyarrow's probe for pandas would load it (~0.35 s, ~33 MB)

    report = check(SyncSettings(job_path=job_file, log=_log, **options))
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_validation(report)
    s = report.summary
    before_exit()
    sys.exit(EXIT_GATE if report.failed_gate else EXIT_RECORDS if s.rejected else EXIT_OK)


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
    from pipelines.emulator import serve_forever, settings_from_options

    try:
        settings = settings_from_options(list(api_keys), str(db) if db else None, list(faults))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    serve_forever(settings, host, port, echo=click.echo)


@main.group(invoke_without_command=True)
@click.option("--job", help="Only runs of this job.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@_ledger_option
@_json_option
@click.pass_context
@_handle_errors
def runs(ctx: click.Context, job: str | None, limit: int, ledger_url: str | None, as_json: bool):
    """List recent runs, newest first: target, start, duration, row counts and status."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.ops.run_reports import (
        groups_table,
        lines_to_dicts,
        list_runs,
        run_groups_of,
        runs_table,
    )

    with _open_ledger(ledger_url) as ledger:
        lines = list_runs(ledger, job=job, limit=limit)
    groups = run_groups_of(lines)
    tables = [runs_table(lines)] + ([groups_table(groups)] if groups else [])
    _emit(tables, lines_to_dicts(lines), as_json)


@runs.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@_ledger_option
@_json_option
@_handle_errors
def runs_show(run_id: int, ledger_url: str | None, as_json: bool) -> None:
    """Show one run: timings, counts, rejects file, and every batch with its HTTP answer."""
    from pipelines.ops.run_reports import show_run

    with _open_ledger(ledger_url) as ledger:
        detail = show_run(ledger, run_id)
    _emit(detail.tables(), detail.to_dict(), as_json)


@main.command()
@click.argument("job")
@_ledger_option
@_json_option
@_handle_errors
def held(job: str, ledger_url: str | None, as_json: bool) -> None:
    """List the records of JOB (a job name or job file) waiting for a reference."""
    from pipelines.ledger.held_records import held_records
    from pipelines.ops.run_reports import TextTable

    name = _job_name(job)
    with _open_ledger(ledger_url) as ledger:
        records = held_records(ledger, job=name, waiting=True)
    rows = [
        (
            r.external_id,
            r.first_held_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            f"{r.runs:,}",
            f"{r.rule}: {r.value}" if r.value else r.rule,
            str(r.last_run_id or ""),
        )
        for r in records
    ]
    title = f"{len(rows):,} record(s) of {name} waiting for a reference"
    headers = ("external id", "held since (UTC)", "runs", "waiting for", "last run")
    data = [
        {
            "external_id": r.external_id,
            "target_id": r.target_id,
            "held_since": r.first_held_at.isoformat(),
            "runs": r.runs,
            "rule": r.rule,
            "value": r.value,
            "watermark": r.watermark,
            "last_run_id": r.last_run_id,
        }
        for r in records
    ]
    _emit([TextTable(title, headers, rows)], data, as_json)


def _job_name(job: str) -> str:
    """A job's name, given it or its job file."""
    if job.endswith((".yml", ".yaml")) and Path(job).is_file():
        from pipelines.jobs.job_file import read_yaml

        return str(read_yaml(Path(job)).get("job") or Path(job).stem)
    return job


@main.command()
@click.argument("external_id")
@_ledger_option
@_json_option
@_handle_errors
def why(external_id: str, ledger_url: str | None, as_json: bool) -> None:
    """Explain one record across runs: what was sent when, and what the API answered (its key
    matched in any case when no record has it exactly, as the API matches keys)."""
    from pipelines.ops.run_reports import record_story

    with _open_ledger(ledger_url) as ledger:
        story = record_story(ledger, external_id)
    _emit(story.tables(), story.to_dict(), as_json)
    if not (story.events or story.rejects or as_json):
        click.echo(f"{external_id}: never sent, and not in the rejects file of a recent run")


@main.command()
@click.option("--target", default="local", show_default=True, help="As for `run`.")
@click.option("--api-key-file", type=click.Path(path_type=Path), help="As for `run`.")
@_ledger_option
@_handle_errors
def doctor(**options: Any) -> None:
    """Check that a run can work from here: ledger, network, API key, clock."""
    from pipelines.ops.doctor import DoctorSettings, diagnose, exit_code

    checks = diagnose(DoctorSettings(**options), warn=_log)
    for check in checks:
        click.echo(f"{check.mark} {check.name:<8} {check.detail}")
    sys.exit(exit_code(checks))


def _open_ledger(url: str | None) -> Ledger:
    from pipelines.ledger import Ledger
    from pipelines.run.resources import default_ledger_url
    from pipelines.targets import default_state_dir

    return Ledger.connect(url or default_ledger_url(default_state_dir()), create=False)


def _emit(tables: list[TextTable], data: Any, as_json: bool) -> None:
    """JSON for machines, rich tables on a terminal, aligned plain text otherwise."""
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    elif sys.stdout.isatty():
        _rich_tables(tables)
    else:
        for table in tables:
            _plain_table(table)


def _rich_tables(tables: list[TextTable]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for t in tables:
        table = Table(title=t.title, title_justify="left", box=box.SIMPLE_HEAD)
        table.show_header = any(t.headers)
        for header in t.headers:
            table.add_column(header, overflow="fold")
        for row in t.rows:
            table.add_row(*row)
        console.print(table)


def _plain_table(table: TextTable) -> None:
    rows = [table.headers, *table.rows] if any(table.headers) else table.rows
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.headers))] if rows else []
    click.echo(f"{table.title}:")
    for row in rows:
        click.echo(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )
    click.echo()


def _print_validation(report) -> None:
    s = report.summary
    verdict = f"gate {report.failed_gate} FAILED" if report.failed_gate else "gates passed"
    click.echo(f"validate {s.job}: {verdict}")
    if s.shard:
        click.echo(f"  shard {s.shard}: rows of other shards not read")
    for label, value in [
        ("rows read", s.rows_read),
        ("rejected", s.rejected),
        ("unchanged", s.unchanged),
        ("to send", s.skipped),
    ]:
        click.echo(f"  {label:<11} {value:>10,}")
        if label == "rejected":
            _print_held(s)
    for gate in report.gates:
        mark = "✓" if gate.passed else ("~" if gate.overridden else "✗")
        click.echo(f"  {mark} {gate.name}: {gate.message}")
    if s.rejects_path:
        click.echo(f"  rejects: {s.rejects_path}")
    _print_warnings(s)
    for note in s.notes:
        click.echo(f"  note: {note}")


def _print_warnings(s: RunSummary) -> None:
    from pipelines.quality.row_warnings import warning_lines

    for line in warning_lines(s.warnings, s.warnings_path):
        click.echo(f"  {line}")


def _print_held(s: RunSummary) -> None:
    if s.held:
        click.echo(
            f"    {s.held:,} of them wait for a customer or SKU the target lacks; "
            "the first run after it exists sends them (nymble-sync held JOB lists them)"
        )
    if s.given_up:
        click.echo(f"    {s.given_up:,} of them the job's hold policy gave up waiting for")


def _print_summary(summary: RunSummary, as_json: bool, besides: str | None = None) -> None:
    if as_json:
        click.echo(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    s = summary
    click.echo(f"run {s.run_id} of {s.job} → {s.target}: {s.status}")
    if s.shard:
        click.echo(f"  shard {s.shard} of run group {s.run_group}: rows of other shards not read")
    elif s.run_group:
        click.echo(f"  finalize of run group {s.run_group}: no feed read, only deactivations sent")
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
        if label == "rejected":
            _print_held(s)
    check = "balanced" if s.balanced else "NOT BALANCED: please report this as a bug"
    click.echo(f"  ({check}: read = rejected + unchanged + created + updated + failed + skipped)")
    click.echo(
        f"  {s.batches:,} batches, {s.requests:,} requests, {s.retries:,} retries; "
        f"{s.elapsed_s:.2f} s, {s.rows_per_s:,.0f} rows/s"
    )
    if s.deactivated:
        click.echo(f"  deactivated {s.deactivated:>10,} (mirror mode: gone from the feed)")
    if s.rejects_path:
        click.echo(f"  rejects: {s.rejects_path}")
    _print_warnings(s)
    for note in s.notes:
        if note != besides:
            click.echo(f"  note: {note}")


if __name__ == "__main__":
    main()

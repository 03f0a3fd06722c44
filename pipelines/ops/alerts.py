"""Telling people and machines how an unattended run ended: a webhook message when it did not
succeed (``--notify URL``) and a Prometheus textfile for node_exporter after every run
(``--metrics-file PATH``).

Both take one plain ``outcome`` mapping: the run summary's ``to_dict()`` plus ``exit_code``
and ``error``. Nothing is read from the environment except, in :func:`scrub`, the values of
secret-looking variables, so that they can be masked should one have leaked into an error
text or a note. Notifying is best effort: it never raises, it returns warnings for the caller
to log, and those warnings name a webhook's host only, since Slack-style webhook URLs carry
their secret in the path.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipelines.redact import scrub

__all__ = [
    "COUNT_FIELDS",
    "STATUSES",
    "alert_message",
    "metrics_text",
    "notify",
    "scrub",
    "write_metrics",
]

STATUSES = (
    "succeeded",
    "partial",
    "gated",
    "refused",
    "locked",
    "auth_failed",
    "unreachable",
    "interrupted",
    "config_error",
    "crashed",
    "failed",
)
COUNT_FIELDS = (
    "rows_read",
    "rejected",
    "held",
    "unchanged",
    "created",
    "updated",
    "failed",
    "skipped",
)
TIMEOUT_S = 10.0
RETRY_DELAY_S = 1.0  # one pause before the single retry; tests set it to 0
PREFIX = "nymble_sync_"

_TEXT_ERROR_CHARS = 300  # the human line stays short; the `error` field carries more
_FIELD_ERROR_CHARS = 4000


# --- the webhook message ---------------------------------------------------------------------


def _count(outcome: Mapping[str, Any], name: str) -> int:
    value = outcome.get(name)
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


def _runs_show(run_id: Any) -> str | None:
    return None if run_id is None else f"nymble-sync runs show {run_id}"


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions; these three are the escapes it documents.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _headline(outcome: Mapping[str, Any]) -> str:
    counts = ", ".join(
        f"{name.removeprefix('rows_')} {_count(outcome, name):,}"
        for name in COUNT_FIELDS
        if _count(outcome, name) or name == "rows_read"
    )
    return (
        f"nymble-sync job {outcome.get('job')} ({outcome.get('entity')} → "
        f"{outcome.get('target')}) ended {outcome.get('status')} "
        f"(exit {outcome.get('exit_code')}): {counts}"
    )


def _detail(error: str | None, runs_show: str | None) -> str:
    parts = []
    if error:
        first = error.strip().splitlines()[0] if error.strip() else error
        cut = first if len(first) <= _TEXT_ERROR_CHARS else first[: _TEXT_ERROR_CHARS - 1] + "…"
        parts.append(f"error: {cut}")
    parts.append(f"details: {runs_show}" if runs_show else "no run was recorded in the ledger")
    return " — ".join(parts)


def alert_message(
    outcome: Mapping[str, Any], *, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """The JSON body posted to a webhook: Slack's ``text`` plus structured fields.

    Every string taken from ``outcome`` is scrubbed with :func:`scrub` against ``environ``.
    """
    clean = _clean_strings(outcome, environ)
    error = clean.get("error") or None
    runs_show = _runs_show(clean.get("run_id"))
    text = f"{_headline(clean)}\n{_detail(error, runs_show)}"
    return {
        "text": _slack_escape(text),
        "job": clean.get("job"),
        "entity": clean.get("entity"),
        "target": clean.get("target"),
        "status": clean.get("status"),
        "exit_code": clean.get("exit_code"),
        "run_id": clean.get("run_id"),
        **{name: _count(clean, name) for name in COUNT_FIELDS},
        "elapsed_s": clean.get("elapsed_s"),
        "error": error[:_FIELD_ERROR_CHARS] if error else None,
        "notes": list(clean.get("notes") or []),
        "runs_show": runs_show,
    }


def _clean_strings(outcome: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The outcome with every string, and every string in a list, scrubbed."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, environ)
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return {key: clean(value) for key, value in outcome.items()}


# --- posting it ------------------------------------------------------------------------------


def notify(
    urls: Sequence[str],
    outcome: Mapping[str, Any],
    *,
    environ: Mapping[str, str] = os.environ,
    client: httpx.Client | None = None,
) -> list[str]:
    """Post :func:`alert_message` to each URL unless the run succeeded.

    Never raises: returns one warning per URL that did not take the message, naming only
    the URL's host. Each URL gets one retry after a network error or a 5xx answer.
    """
    if outcome.get("status") == "succeeded" or not urls:
        return []
    body = alert_message(outcome, environ=environ)
    own = client is None
    http = httpx.Client(timeout=TIMEOUT_S) if client is None else client
    try:
        warnings = [_post(http, url, body) for url in dict.fromkeys(urls)]
    finally:
        if own:
            http.close()
    return [warning for warning in warnings if warning]


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # e.g. a non-numeric port
        return "a notify URL that cannot be parsed"
    if not host:
        return "a notify URL without a host"
    return f"{host}:{port}" if port else host


def _post(http: httpx.Client, url: str, body: dict[str, Any]) -> str | None:
    """None once the URL accepted ``body``, else a warning naming its host."""
    problem = ""
    for attempt in range(2):
        if attempt:
            time.sleep(RETRY_DELAY_S)
        try:
            response = http.post(url, json=body, timeout=TIMEOUT_S)
        except httpx.UnsupportedProtocol as exc:  # not an http(s) URL: a retry cannot help
            return f"could not notify {_host(url)}: {_reason(exc, url)}"
        except httpx.TransportError as exc:  # connect, timeout, protocol: worth one retry
            problem = _reason(exc, url)
            continue
        # Anything else (a malformed URL, say) must not break the run's exit path either.
        except Exception as exc:
            return f"could not notify {_host(url)}: {_reason(exc, url)}"
        if response.is_success:
            return None
        problem = f"answered HTTP {response.status_code}"
        if not response.is_server_error:  # a 4xx or 3xx will not change on retry
            return f"could not notify {_host(url)}: {problem}"
    return f"could not notify {_host(url)}: {problem} (after one retry)"


def _reason(exc: Exception, url: str) -> str:
    """The exception's type and first line, the line dropped if it quotes the URL's secrets."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    try:
        parts = urlsplit(url)
        private = [url, parts.query, parts.fragment, parts.path if len(parts.path) > 1 else ""]
    except ValueError:
        private = [url]
    if any(part and part in text for part in private) or "@" in text:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the Prometheus textfile -----------------------------------------------------------------


def _escape_label(value: Any) -> str:
    # The exposition format's label escapes: backslash, double quote and line feed.
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(f'{name}="{_escape_label(value)}"' for name, value in pairs) + "}"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value)) if math.isfinite(value) else "0"


def _gauge(name: str, help_text: str, samples: Iterable[tuple[dict[str, Any], Any]]) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} gauge"]
    lines += [f"{PREFIX}{name}{_labels(labels.items())} {_number(v)}" for labels, v in samples]
    return lines


def _statuses(current: Any) -> tuple[str, ...]:
    # An unknown status still gets its own series, so exactly one series reads 1.
    return STATUSES if current in STATUSES or current is None else (*STATUSES, str(current))


def metrics_text(outcome: Mapping[str, Any], *, now: float | None = None) -> str:
    """The outcome in the Prometheus text exposition format, every sample labelled with
    job, entity and target. ``now`` (unix seconds, default the current time) is the run's
    end. Error texts and notes are never part of it."""
    base = {key: outcome.get(key) for key in ("job", "entity", "target")}
    status = outcome.get("status")
    ended = time.time() if now is None else now
    lines = [
        *_gauge(
            "last_run_status",
            "1 for the status the last run ended with, 0 for the others.",
            (({**base, "status": s}, int(s == status)) for s in _statuses(status)),
        ),
        *_gauge(
            "last_run_duration_seconds",
            "How long the last run took, in seconds.",
            [(base, outcome.get("elapsed_s"))],
        ),
        *_gauge(
            "last_run_rows",
            "Rows of the last run by outcome; read is the total, held is part of rejected.",
            (
                ({**base, "outcome": name.removeprefix("rows_")}, _count(outcome, name))
                for name in COUNT_FIELDS
            ),
        ),
        *_gauge(
            "last_run_end_timestamp_seconds",
            "When the last run ended, in unix seconds.",
            [(base, float(ended))],
        ),
        *_gauge(
            "last_run_exit_code",
            "The exit code the last run ended with (0 is success).",
            [(base, outcome.get("exit_code"))],
        ),
    ]
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, outcome: Mapping[str, Any], *, now: float | None = None) -> None:
    """Replace ``path`` atomically with :func:`metrics_text`, as node_exporter's textfile
    collector requires (it may read at any moment). Raises OSError for the caller to report."""
    path = Path(path)
    text = metrics_text(outcome, now=now)
    # Same directory, so os.replace is a rename within one file system; a name not ending
    # in .prom, so the collector never reads the half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; node_exporter usually runs as another user.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

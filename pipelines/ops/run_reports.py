"""What the run ledger remembers, for people and machines: recent runs, one run with its
batches, and one record's story across runs (``nymble-sync runs``, ``runs show``, ``why``).

The functions take an open :class:`~pipelines.ledger.Ledger` and return frozen data;
``to_dict()`` is the ``--json`` form and ``tables()`` the rows a terminal or a log shows.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from pipelines.ledger import BatchInfo, Ledger, RecordEvent, RunInfo
from pipelines.ledger.held_records import HeldRecord, held_count, held_records
from pipelines.ledger.records import ADOPTED_BATCH
from pipelines.ledger.run_groups import FINALIZE_LABEL, ShardRun, shard_runs
from pipelines.run.shards import base_job

__all__ = [
    "BatchLine",
    "GroupLine",
    "RecordStory",
    "RejectLine",
    "RunDetail",
    "RunLine",
    "TextTable",
    "lines_to_dicts",
    "list_runs",
    "groups_table",
    "record_story",
    "run_groups_of",
    "runs_table",
    "show_run",
]

COUNTS = ("read", "rejected", "unchanged", "created", "updated", "failed")
SHOWN_HELD = 1000  # `runs show` lists a run's held records up to this many (a migration run
# before its customers exist holds millions: `nymble-sync held JOB` lists them all)
_REJECT_SCAN_RUNS = 20  # `why` looks for the record in the rejects files of this many runs


@dataclass(frozen=True)
class TextTable:
    """A titled table of strings: what the CLI renders with rich or as plain text."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f} s"


def _hex(content_hash: int) -> str:
    return f"{content_hash & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLine:
    run_id: int
    job: str
    target: str
    status: str
    started_at: datetime
    duration_s: float | None
    counts: dict[str, int]
    run_group: str | None = None  # a shard's run: the logical run it belongs to
    shard: str | None = None  # "K/N", or "finalize" for the group's finalize step

    @classmethod
    def of(cls, run: RunInfo, shard: ShardRun | None = None) -> RunLine:
        counts = {"read": run.counts.get("rows_read", 0)}
        counts |= {name: run.counts.get(name, 0) for name in COUNTS[1:]}
        duration = run.elapsed_s
        if duration is None:  # still running, or died: its last heartbeat is its last sign
            end = datetime.now(UTC) if run.status == "running" else run.heartbeat_at
            duration = None if end is None else (end - run.started_at).total_seconds()
        group, label = (shard.run_group, shard.shard) if shard is not None else (None, None)
        return cls(
            run.run_id,
            run.job,
            run.target_label,
            run.status,
            run.started_at,
            duration,
            counts,
            group,
            label,
        )

    def cells(self) -> tuple[str, ...]:
        counts = tuple(f"{self.counts[name]:,}" for name in COUNTS)
        return (
            str(self.run_id),
            self.job,
            self.target,
            _when(self.started_at),
            _seconds(self.duration_s),
            *counts,
            self.status,
        )


_RUN_HEADERS = ("run", "job", "target", "started (UTC)", "duration", *COUNTS, "status")


def list_runs(ledger: Ledger, *, job: str | None = None, limit: int = 20) -> list[RunLine]:
    """The newest runs first, optionally of one job only (its shard runs included)."""
    found = {run.run_id: run for run in ledger.recent_runs(limit=limit, job=job)}
    if job is not None:  # shard runs are recorded as products#2of4 and the like
        window = ledger.recent_runs(limit=max(200, limit * 8))
        found |= {run.run_id: run for run in window if base_job(run.job) == job}
    runs = sorted(found.values(), key=lambda run: run.run_id, reverse=True)[:limit]
    shards = shard_runs(ledger, [run.run_id for run in runs])
    return [RunLine.of(run, shards.get(run.run_id)) for run in runs]


@dataclass(frozen=True)
class GroupLine:
    """A sharded run as one logical run: its shards' newest runs, their counts summed, and
    its finalize step (``run --finalize``), if one ran."""

    run_group: str
    job: str
    shards: int  # N
    finished: list[str]  # "K/N" of the shards whose newest run succeeded (or partial)
    status: str  # succeeded when every shard did; running/failed ... otherwise
    counts: dict[str, int]
    finalize: str | None = None  # the newest finalize step: "succeeded (run 12)"

    def cells(self) -> tuple[str, ...]:
        counts = tuple(f"{self.counts[name]:,}" for name in COUNTS)
        done = f"{len(self.finished)}/{self.shards}"
        return (self.run_group, self.job, done, *counts, self.status, self.finalize or "")


def run_groups_of(lines: list[RunLine]) -> list[GroupLine]:
    """The logical runs among ``lines`` (shard runs listed), newest first: one per group and
    job, as one orchestrator run may shard several jobs. A shard rerun after a failure
    replaces its shard's earlier run."""
    groups: dict[tuple[str, str], dict[str, RunLine]] = {}
    finals: dict[tuple[str, str], RunLine] = {}
    for line in sorted(lines, key=lambda line: line.run_id):
        if line.run_group is None or line.shard is None:
            continue
        key = (line.run_group, base_job(line.job))
        if line.shard == FINALIZE_LABEL:
            finals[key] = line
        else:
            groups.setdefault(key, {})[line.shard] = line
    return [
        _group_line(name, shards, finals.get(name)) for name, shards in reversed(groups.items())
    ]


def _group_line(
    name: tuple[str, str], shards: dict[str, RunLine], final: RunLine | None
) -> GroupLine:
    newest = list(shards.values())
    count = int(next(iter(shards)).split("/")[1])
    done = sorted(k for k, line in shards.items() if line.status in ("succeeded", "partial"))
    statuses = {line.status for line in newest}
    if len(done) == count:
        status = "partial" if "partial" in statuses else "succeeded"
    elif "running" in statuses:
        status = "running"
    else:
        status = "incomplete"  # a shard failed or never ran: rerun that shard
    counts = {c: sum(line.counts[c] for line in newest) for c in COUNTS}
    finalize = None if final is None else f"{final.status} (run {final.run_id})"
    return GroupLine(name[0], name[1], count, done, status, counts, finalize)


_GROUP_HEADERS = ("run group", "job", "shards done", *COUNTS, "status", "finalize")


def groups_table(groups: list[GroupLine]) -> TextTable:
    rows = [group.cells() for group in groups]
    return TextTable("sharded runs (each shard's newest run)", _GROUP_HEADERS, rows)


def runs_table(lines: list[RunLine]) -> TextTable:
    return TextTable("recent runs, newest first", _RUN_HEADERS, [line.cells() for line in lines])


# --- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchLine:
    batch_id: str
    items: int
    bytes: int
    status: str
    http_status: int | None
    attempts: int
    sent_at: datetime
    done_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, b: BatchInfo) -> BatchLine:
        return cls(
            b.batch_id,
            b.item_count,
            b.byte_count,
            b.status,
            b.http_status,
            b.attempts,
            b.sent_at,
            b.done_at,
            b.error,
        )

    @property
    def seconds(self) -> float | None:
        return None if self.done_at is None else (self.done_at - self.sent_at).total_seconds()


@dataclass(frozen=True)
class RunDetail:
    run: RunInfo
    batches: list[BatchLine]
    held: list[HeldRecord] = field(default_factory=list)  # waiting for a reference after it
    held_total: int = 0  # all of them (``held`` lists the first SHOWN_HELD)

    def to_dict(self) -> dict[str, Any]:
        batches = [{**asdict(b), "seconds": b.seconds} for b in self.batches]
        held = [asdict(h) for h in self.held]
        return _jsonable(
            {
                "run": asdict(self.run),
                "batches": batches,
                "held": held,
                "held_total": self.held_total,
            }
        )

    def tables(self) -> list[TextTable]:
        r = self.run
        facts = [
            ("job", r.job),
            ("entity", r.entity),
            ("target", r.target_label),
            ("source", r.source),
            ("status", r.status),
            ("full", "yes" if r.full else "no"),
            ("started", _when(r.started_at)),
            ("finished", _when(r.finished_at)),
            ("last heartbeat", _when(r.heartbeat_at)),
            ("elapsed", _seconds(r.elapsed_s)),
            ("host", f"{r.pid}@{r.host}" if r.host else ""),
            ("rejects file", r.rejects_path or "(none)"),
            *((name, f"{value:,}") for name, value in sorted(r.counts.items())),
        ]
        batch_rows = [
            (
                b.batch_id[:16],
                f"{b.items:,}",
                b.status,
                str(b.http_status or ""),
                str(b.attempts),
                _when(b.sent_at),
                _seconds(b.seconds),
                b.error or "",
            )
            for b in self.batches
        ]
        headers = ("batch", "items", "status", "http", "attempts", "sent", "took", "error")
        tables = [
            TextTable(f"run {r.run_id}", ("", ""), facts),
            TextTable(f"{len(self.batches)} batches, in the order sent", headers, batch_rows),
        ]
        if self.held:
            held_rows = [
                (h.external_id, f"{h.rule}: {h.value}" if h.value else h.rule, f"{h.runs:,}")
                for h in self.held
            ]
            title = f"{self.held_total:,} record(s) this run held back, waiting for a reference"
            if self.held_total > len(self.held):
                title += f" (the first {len(self.held):,}: `nymble-sync held JOB` lists all)"
            tables.append(TextTable(title, ("external id", "waiting for", "runs"), held_rows))
        return tables


def show_run(ledger: Ledger, run_id: int) -> RunDetail:
    """One run and its batches; ConfigError if the ledger has no such run."""
    run = ledger.run_info(run_id)
    if run is None:
        raise ConfigError(
            f"run ledger at {ledger.url_for_display} has no run {run_id}: "
            "`nymble-sync runs` lists the recorded ones"
        )
    mine = {"job": run.job, "waiting": True, "last_run_id": run_id}
    held = held_records(ledger, **mine, limit=SHOWN_HELD)
    total = held_count(ledger, **mine) if len(held) == SHOWN_HELD else len(held)
    return RunDetail(run, [BatchLine.of(b) for b in ledger.run_batches(run_id)], held, total)


# --- one record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectLine:
    """The record's row in a run's rejects file: refused before (or by) the API."""

    run_id: int
    rejects_path: str
    external_id: str  # as the rejects file holds it
    row: str
    column: str
    value: str
    rule: str
    message: str


@dataclass(frozen=True)
class RecordStory:
    external_id: str  # as asked for
    events: list[RecordEvent]  # newest first
    http_status: dict[tuple[int, str], int | None]  # (run, batch) → the batch's HTTP answer
    rejects: list[RejectLine]  # newest first

    @property
    def matched_ids(self) -> list[str]:
        """The ids found, as stored: the one asked for, or (when no record has it exactly)
        those that differ from it only in case, as the API matches keys."""
        found = {e.external_id for e in self.events} | {r.external_id for r in self.rejects}
        return sorted(found)

    @property
    def last_error(self) -> str | None:
        failed = [e.message or "failed" for e in self.events if e.status == "failed"]
        found = [*failed[:1], *(f"{r.rule}: {r.message}" for r in self.rejects[:1])]
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        events = [
            {
                **asdict(e),
                "content_hash": _hex(e.content_hash),
                "http_status": self.http_status.get((e.run_id, e.batch_id)),
            }
            for e in self.events
        ]
        rejects = [asdict(r) for r in self.rejects]
        data = {"external_id": self.external_id, "matched_ids": self.matched_ids}
        data["last_error"] = self.last_error
        return _jsonable({**data, "events": events, "rejects": rejects})

    def tables(self) -> list[TextTable]:
        """A summary, the sends newest first, the rejects; nothing for an unknown record."""
        tables = []
        other = [i for i in self.matched_ids if i != self.external_id]
        if other:
            facts = [("matched", f"{', '.join(other)} (no exact match; keys match in any case)")]
            tables.append(TextTable(self.external_id, ("", ""), facts))
        if self.events:
            last = self.events[0]
            adopted = last.batch_id.startswith(ADOPTED_BATCH)
            facts = [
                ("record", last.external_id),
                (
                    "adopted" if adopted else "last sent",
                    f"run {last.run_id}, {_when(last.at)}, to {last.target_label}",
                ),
                # an adopted record was never answered for: the message says so
                (
                    "API answer",
                    last.message if adopted else f"{last.status} {last.message or ''}".strip(),
                ),
                ("content hash", _hex(last.content_hash)),
                *([("last error", self.last_error)] if self.last_error else []),
            ]
            tables.append(TextTable(last.external_id, ("", ""), facts))
            sent = [self._sent_cells(e) for e in self.events]
            tables.append(TextTable("sent, newest first", _SENT_HEADERS, sent))
        if self.rejects:
            rows = [
                (str(r.run_id), r.external_id, r.row, r.column, r.value, r.rule, r.message,
                 r.rejects_path)
                for r in self.rejects
            ]  # fmt: skip
            tables.append(TextTable(f"{self.external_id} in rejects files", _REJECT_HEADERS, rows))
        return tables

    def _sent_cells(self, e: RecordEvent) -> tuple[str, ...]:
        http = self.http_status.get((e.run_id, e.batch_id))
        return (str(e.run_id), e.batch_id[:16], _when(e.at), e.job, e.target_label,
                _hex(e.content_hash), str(http or ""), e.status, e.message or "")  # fmt: skip


_SENT_HEADERS = ("run", "batch", "at", "job", "target", "content", "http", "answer", "message")
_REJECT_HEADERS = ("run", "key", "row", "column", "value", "rule", "message", "rejects file")


def record_story(ledger: Ledger, external_id: str, *, limit: int = 50) -> RecordStory:
    """Every recorded send of one record (newest first), its batches' HTTP answers, and its
    rows in the rejects files of recent runs. The id is matched exactly, else in any case
    (``art-10004`` finds ``ART-10004``), in the ledger and in the rejects files alike."""
    events = ledger.record_history(external_id, limit=limit)
    http: dict[tuple[int, str], int | None] = {}
    for run_id in sorted({e.run_id for e in events}):
        http.update({(run_id, b.batch_id): b.http_status for b in ledger.run_batches(run_id)})
    rejects = [
        line
        for run in ledger.recent_runs(limit=_REJECT_SCAN_RUNS)
        if run.rejects_path
        for line in _rejects_of(run.run_id, Path(run.rejects_path), external_id.lower())
    ]
    if any(found.external_id == external_id for found in [*events, *rejects]):
        events = [e for e in events if e.external_id == external_id]
        rejects = [r for r in rejects if r.external_id == external_id]
    return RecordStory(external_id, events, http, rejects)


def _rejects_of(run_id: int, path: Path, folded: str) -> list[RejectLine]:
    """The rows of a rejects file whose key is ``folded`` in any case."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = [r for r in csv.DictReader(f) if (r.get("external_id") or "").lower() == folded]
    except OSError:
        return []  # moved or deleted since: the ledger still has the rest of the story
    return [
        RejectLine(
            run_id,
            str(path),
            r.get("external_id", ""),
            r.get("row", ""),
            r.get("column", ""),
            r.get("value", ""),
            r.get("rule", ""),
            r.get("message", ""),
        )
        for r in rows
    ]


def lines_to_dicts(lines: list[RunLine]) -> list[dict[str, Any]]:
    return [_jsonable(asdict(line)) for line in lines]

"""Mirror mode across the shards of a run group: each shard run records the keys it read,
and ``run --finalize`` checks that every shard finished before it deactivates what none of
them read.

A shard cannot deactivate: the records missing from its share may be in another's. The
finalize step does, without reading the feed again (the point of sharding is that no worker
reads everything): the union of the keys the shards recorded is the feed, and the records
the job owns at the target (its shard jobs' included, see :mod:`pipelines.ledger.ownership`)
that no shard read have vanished from it. That union is only the feed when every shard
0..N-1 of the group read its whole share and finished: a shard that failed, crashed, was
stopped or gated, is still running, never ran, or read ``--partial`` would make its records
look vanished. ``check_group`` refuses then (exit 4, nothing sent), naming each such shard
and the command that reruns it. It also refuses a group that a later run of the job (of any
shard, or unsharded) has overtaken: what that run sent is in no shard's keys, and would be
deactivated by mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from pipelines.errors import ConfigError, Refused
from pipelines.ledger.run_groups import (
    ShardRun,
    group_run_infos,
    group_runs,
    later_runs,
    shard_runs,
)
from pipelines.ledger.shard_feeds import record_seen_keys, seen_feeds, seen_keys
from pipelines.run.shards import Shard, shard_of
from pipelines.transform.convert import normalize_text
from pipelines.transform.serialize import key_hashes

if TYPE_CHECKING:
    from pipelines.extract.chunks import Chunk
    from pipelines.ledger import Ledger, RunInfo

__all__ = ["FINISHED", "FinishedGroup", "ShareKeys", "check_group", "group_shards"]

FINISHED = ("succeeded", "partial")  # partial: rows rejected or failed, every row read


class ShareKeys:
    """The keys of one shard's share of the feed, collected as its chunks go by (the same
    keys mirror mode's scan of a whole feed takes: every keyed row, rejected ones too)."""

    def __init__(self, key: str, shard: Shard):
        self.key, self.shard = key, shard
        self._found: list[np.ndarray] = []

    def watch(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        """``chunks`` as they are, each one's keys noted on the way (on the reading thread)."""
        try:
            for chunk in chunks:
                self._note(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)  # the feed closes what it handed out
            if close is not None:
                close()

    def save(self, ledger: Ledger, run_id: int, *, job: str, target_id: str) -> int:
        """Record the keys seen (call once every chunk was read); returns how many."""
        keys = np.unique(np.concatenate([np.empty(0, np.int64), *self._found]))
        record_seen_keys(ledger, run_id, keys, job=job, target_id=target_id)
        return int(keys.size)

    def _note(self, chunk: Chunk) -> None:
        if self.key not in chunk.table.column_names or not chunk.table.num_rows:
            return
        keys = key_hashes(normalize_text(chunk.table.column(self.key).combine_chunks()))
        mine = (keys != 0) & (shard_of(keys, self.shard.count) == self.shard.index)
        self._found.append(np.unique(keys[mine]))


def group_shards(
    ledger: Ledger, run_group: str, job: str, target_id: str
) -> list[tuple[ShardRun, RunInfo]]:
    """The shard runs of ``job`` at ``target_id`` in ``run_group``; a ConfigError (exit 2)
    when there are none: the group's name is wrong, or its shards ran elsewhere."""
    found = [(s, r) for s, r in group_run_infos(ledger, run_group, job) if r.target_id == target_id]
    if found:
        return found
    known = sorted({g.run_group for g in _recent_groups(ledger, job)})
    hint = f"; recent groups of {job}: {', '.join(known[-5:])}" if known else ""
    raise ConfigError(
        f"run group {run_group!r} holds no shard run of job {job!r} at this target, so there "
        f"is nothing to finalize: give the --run-group (or NYMBLE_RUN_GROUP) its shards ran "
        f"with, and the same --target and --ledger{hint}"
    )


@dataclass(frozen=True)
class FinishedGroup:
    run_group: str
    count: int  # N
    runs: list[RunInfo]  # the newest run of each shard 0..N-1
    keys: np.ndarray | None  # what they read, sorted and distinct (None: not asked for)
    notes: list[str] = field(default_factory=list)


def check_group(
    ledger: Ledger,
    shards: list[tuple[ShardRun, RunInfo]],
    *,
    job_path: str,
    needs_keys: bool,
) -> FinishedGroup:
    """The group's shards, each finished and (``needs_keys``) with its share's keys
    recorded; Refused (exit 4) naming every shard that is not, and how to rerun it."""
    group, count = shards[-1][0].run_group, _shard_count(shards)
    newest = {s.shard_index: r for s, r in shards}  # by shard then run: the last one wins
    feeds = seen_feeds(ledger, [r.run_id for r in newest.values()]) if needs_keys else {}
    problems = []
    for k in range(count):
        problem = _problem(newest.get(k), feeds, needs_keys)
        if problem:
            rerun = f"nymble-sync run {job_path} --shard {k}/{count} --run-group {group}"
            problems.append(f"  shard {k}/{count}: {problem}; rerun: {rerun}")
    if problems:
        raise Refused(
            f"run group {group!r} is not finished, so nothing was deactivated:\n"
            + "\n".join(problems)
            + "\n(with the same --target, --ledger and API key as the other shards; then run "
            "--finalize again)"
        )
    runs = [newest[k] for k in range(count)]
    _check_newest(ledger, shards, runs[0].target_id)
    keys = seen_keys(ledger, [r.run_id for r in runs]) if needs_keys else None
    return FinishedGroup(group, count, runs, keys, _notes(runs, keys))


def _problem(run: RunInfo | None, feeds: dict, needs_keys: bool) -> str | None:
    """Why this shard's newest run does not count as a finished share of the feed."""
    if run is None:
        return "never ran in this group"
    if run.status == "running":
        beat = run.heartbeat_at or run.started_at
        age = (datetime.now(UTC) - beat).total_seconds()
        return (
            f"still running (run {run.run_id}, last heartbeat {age:,.0f} s ago): wait for it "
            "to end (rerun it only if its worker died)"
        )
    if run.status not in FINISHED:
        return f"{run.status} (run {run.run_id})"
    if not needs_keys:
        return None
    feed = feeds.get(run.run_id)
    if feed is None:
        return (
            f"{run.status} (run {run.run_id}) without recording the keys it read (mirror mode "
            "was off then, or an earlier nymble-sync ran it)"
        )
    if not feed.whole_feed:
        return f"read part of the feed on purpose (--partial, run {run.run_id})"
    return None


def _check_newest(ledger: Ledger, shards: list[tuple[ShardRun, RunInfo]], target_id: str) -> None:
    """Refuse a group that a run of the job outside it came after: that run's records are
    in no shard's keys. Finalize steps (of any group) send only deactivations: they count not."""
    group, job = shards[-1][0].run_group, shards[-1][0].job
    mine = {s.run_id for s in group_runs(ledger, group) if s.job == job}
    first = min(s.run_id for s, _run in shards)
    later = [r for r in later_runs(ledger, job, target_id, first) if r.run_id not in mine]
    steps = shard_runs(ledger, [r.run_id for r in later])
    later = [r for r in later if not (r.run_id in steps and steps[r.run_id].is_finalize)]
    if later:
        run = later[-1]
        raise Refused(
            f"run group {group!r} is out of date: run {run.run_id} of {run.job} "
            f"({run.status}, outside the group) came after its shards, and what it sent is "
            "in no shard's keys; finalize the newest run group instead (or run every shard "
            "again in this one)"
        )


def _shard_count(shards: list[tuple[ShardRun, RunInfo]]) -> int:
    counts = {s.shard_count for s, _run in shards}
    if len(counts) > 1:
        group = shards[-1][0].run_group
        raise Refused(
            f"run group {group!r} holds shard runs of {' and '.join(map(str, sorted(counts)))} "
            "shards: one launch's shards split the feed one way; give each launch its own "
            "--run-group, and finalize the one whose shards all ran"
        )
    return counts.pop()


def _notes(runs: list[RunInfo], keys: np.ndarray | None) -> list[str]:
    ids = ", ".join(str(r.run_id) for r in runs)
    read = "" if keys is None else f"; their shares of the feed hold {keys.size:,} keys"
    notes = [f"every shard of the run group finished (runs {ids}){read}"]
    partial = [r.run_id for r in runs if r.status == "partial"]
    if partial:
        notes.append(
            f"shard run(s) {', '.join(map(str, partial))} ended partial: their rejected or "
            "failed rows are still in the feed (not deactivated); see their rejects files"
        )
    sources = sorted({r.source for r in runs})
    if len(sources) > 1:
        notes.append(
            f"the shards read different sources ({'; '.join(sources)}): each record was "
            "judged by the feed its own shard read"
        )
    return notes


def _recent_groups(ledger: Ledger, job: str) -> list[ShardRun]:
    window = [r.run_id for r in ledger.recent_runs(limit=200) if r.job.startswith(f"{job}#")]
    return [s for s in shard_runs(ledger, window).values() if s.job == job]

"""`plan`: what a run would do now, counted by the same streaming code as `run`, with a few
updates shown field by field. Nothing is written to the API or the ledger; only the rejects
file is, as a run writes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx
import numpy as np
import orjson

from pipelines.admit.acked_state import AckedState
from pipelines.entities.products.mirror import find_vanished
from pipelines.entities.products.product_admission import Admission
from pipelines.jobs.specs import JobConfig
from pipelines.load.api_reader import ApiReader, Projection, read_state
from pipelines.run.engine import (
    PARTIAL_FEED_NOTE,
    RunOptions,
    admitted,
    load_price_list,
    open_feed,
    partial_feed,
)
from pipelines.run.summary import RunSummary
from pipelines.targets import Target
from pipelines.transform.rejects import RejectsWriter

if TYPE_CHECKING:
    from pipelines.ledger import Ledger

__all__ = ["Plan", "SampleDiff", "plan_products"]


@dataclass(frozen=True)
class SampleDiff:
    """One planned update: each changed field as ``[old, new]`` in canonical JSON values."""

    external_id: str
    sku: str | None
    changes: dict[str, list]
    found: bool = True  # False: the target has no product with this SKU or externalId


@dataclass
class Plan:
    job: str
    target: str
    basis: Literal["ledger", "api"]  # what "already at the target" was taken from
    rows_read: int = 0
    create: int = 0  # key never acknowledged by this target (or, against the API, not held)
    update: int = 0  # acknowledged, content differs
    unchanged: int = 0
    reject: int = 0  # see the rejects file
    deactivate: int = 0  # mirror mode: products this job synced, gone from the feed
    rejects_path: str | None = None
    samples: list[SampleDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """The plan as the CLI prints it."""
        lines = [f"plan of {self.job} → {self.target} (against the {self.basis})"]
        for label in ("rows_read", "create", "update", "unchanged", "reject", "deactivate"):
            lines.append(f"  {label.replace('_', ' '):<11} {getattr(self, label):>10,}")
        for diff in self.samples:
            lines.append(f"  ~ {diff.external_id}" + ("" if diff.found else " (not found)"))
            lines += [f"      {k}: {old!r} → {new!r}" for k, (old, new) in diff.changes.items()]
        if self.rejects_path:
            lines.append(f"  rejects: {self.rejects_path}")
        return "\n".join(lines + [f"  note: {note}" for note in self.notes])


def plan_products(
    job: JobConfig,
    target: Target,
    ledger: Ledger,
    client: httpx.Client,
    options: RunOptions,
    *,
    against_api: bool = False,
    sample: int = 10,
) -> Plan:
    """Count what a run would create, update, leave, reject and deactivate."""
    _, chunks = open_feed(job, options)
    index, list_rejects = load_price_list(job, options)
    reader, projection = ApiReader(client), Projection(job, index)
    acked = AckedState(*ledger.acked_state(target_id=target.id, entity=job.entity))
    state = read_state(reader, projection) if against_api else acked
    result = Plan(job.job, target.label, "api" if against_api else "ledger")
    summary = RunSummary(job=job.job, entity=job.entity, target=target.label)
    rejects_path = options.rejects_path or options.state_dir / "rejects" / f"{job.job}-plan.csv"
    picked: list[tuple[str, bytes]] = []
    with RejectsWriter(rejects_path) as rejects:
        rejects.write(list_rejects)
        admission = Admission(job, state, rejects, summary)
        for pending in admitted(chunks, job, index, admission):
            known = _known(state, pending.key_hashes)
            result.update += int(known.sum())
            result.create += int((~known).sum())
            for i in np.flatnonzero(known)[: max(0, sample - len(picked))]:
                picked.append((pending.external_ids[i], pending.bodies[i]))
    result.rows_read, result.unchanged = summary.rows_read, summary.unchanged
    result.reject = summary.rejected
    result.rejects_path = str(rejects_path) if rejects.count else None
    _plan_mirror(result, job, target, ledger, options, admission, acked)
    result.samples = [_sample(reader, projection, *pair) for pair in picked]
    return result


def _plan_mirror(
    result: Plan,
    job: JobConfig,
    target: Target,
    ledger: Ledger,
    options: RunOptions,
    admission: Admission,
    acked: AckedState,
) -> None:
    """Count deactivations exactly as a run would decide them, and say if it would refuse."""
    if job.missing != "deactivate":
        return
    if partial_feed(options):
        result.notes.append(PARTIAL_FEED_NOTE)
        return
    keys = admission.feed_keys()
    vanished = find_vanished(ledger, job, target_id=target.id, feed_keys=keys, acked=acked)
    result.deactivate = len(vanished)
    if vanished.exceeds_cap(job) and not options.allow_mass_deactivate:
        result.notes.append(
            f"a run would be refused: {len(vanished):,} deactivations exceed "
            f"max_deactivate_pct ({job.max_deactivate_pct:g}% of {vanished.owned:,}); "
            "--allow-mass-deactivate overrides"
        )


def _known(state: AckedState, keys: np.ndarray) -> np.ndarray:
    """True where the target acknowledged the key (whatever the content)."""
    if not len(state):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(state.keys, keys), len(state) - 1)
    return state.keys[pos] == keys


def _sample(reader: ApiReader, projection: Projection, external_id: str, body: bytes):
    """The fields whose canonical values differ between the org's product and ``body``.

    One GET by SKU; only if the SKU changed (or is not held), a lookup by externalId.
    """
    new = orjson.loads(body)
    sku = new.get("sku")
    stored = reader.product(sku) if sku else None
    if stored is None or stored.get("externalId") != external_id:
        stored = reader.by_external_id(external_id)
    if stored is None:
        return SampleDiff(external_id, sku, {k: [None, v] for k, v in new.items()}, found=False)
    old = projection.canonical(stored)
    changes = {k: [old.get(k), new[k]] for k in sorted(new) if old.get(k) != new[k]}
    return SampleDiff(external_id, sku, changes)

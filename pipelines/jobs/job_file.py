"""Reading a job file: YAML into the entity's frozen model, every mistake reported at once.

``load_job`` reads the file, picks the entity's model by its ``entity`` key and validates it;
problems name the file, the key and a fix, before any data is read. An unknown source column
is reported later, once the source's columns are known (``check_columns``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.entities import ENTITY_NAMES, entity_plugin
from pipelines.errors import JobFileError, Problem
from pipelines.jobs.specs import SOURCE_TYPES, JobBase
from pipelines.quality.expectations import check_specs

__all__ = [
    "check_columns",
    "entity_of",
    "load_job",
    "parse_job",
    "problem_from",
    "read_yaml",
    "suggest",
]

# libyaml's parser with PyYAML's safe constructor (a PyYAML built without libyaml: its own)
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_job(path: Path) -> JobBase:
    """Parse and check a job file of any entity; raise one JobFileError listing every problem."""
    raw = read_yaml(path)
    entity = raw.get("entity", "products")  # product jobs came first and may leave it out
    if entity not in ENTITY_NAMES:
        fix = suggest(str(entity), list(ENTITY_NAMES))
        raise JobFileError(str(path), [Problem("entity", f"{entity!r} is not an entity", fix)])
    return entity_plugin(entity).parse_job({**raw, "entity": entity}, path)


def entity_of(path: Path) -> str:
    """The entity a job file names (products when it names none)."""
    entity = read_yaml(path).get("entity", "products")
    return entity if isinstance(entity, str) else "products"


def parse_job(
    model: type[JobBase], raw: dict[str, Any], path: Path, problems: list[Problem], fields: set[str]
) -> JobBase:
    """Validate ``raw`` as ``model``; ``problems`` found by the entity's own look come first in
    the report; ``fields`` are the record fields an expectation may name."""
    raw = {**raw, "path": path}
    raw.setdefault("job", path.stem)
    problems = problems + _watermark_problems(raw)
    try:
        job = model.model_validate(raw)
    except ValidationError as exc:
        problems = [problem_from(e) for e in exc.errors()] + problems
    if problems:
        raise JobFileError(str(path), problems)
    if job.expectations:  # imports Great Expectations: only for jobs that declare a suite
        found = check_specs(list(job.expectations), fields)
        if found:
            raise JobFileError(str(path), [Problem("expectations", p) for p in found])
    return job


def check_columns(job: JobBase, used: dict[str, str], columns: list[str], *, source: str) -> None:
    """Fail, naming each job-file key, when a source lacks a column the job reads."""
    problems = [
        Problem(key, f"column {column!r} is not in {source}", suggest(column, columns))
        for key, column in used.items()
        if column not in columns
    ]
    if problems:
        raise JobFileError(str(job.path), problems)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobFileError(str(path), [Problem("(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        # libyaml's parser (~1 ms a job file; the Python one ~7 ms), the same safe constructor
        raw = yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        try:  # the Python parser's message quotes the line and points at the mistake
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise JobFileError(str(path), [Problem("(file)", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise JobFileError(str(path), [Problem("(file)", "must be a YAML mapping of keys")])
    return raw


# pydantic names the union member it tried in a location; the user wrote none of these.
_MEMBER_NAMES = {*SOURCE_TYPES, "function-after", "tagged-union"}


def problem_from(error: dict[str, Any]) -> Problem:
    loc = [str(p) for p in error["loc"]]
    loc = [p for p in loc if p not in _MEMBER_NAMES and not p.startswith(("spec:", "function-"))]
    key = ".".join(loc) or "(file)"
    kind = error["type"]
    if kind == "missing":
        return Problem(key, "is required", "add it")
    if kind == "extra_forbidden":
        return Problem(key, "is not a known key", "remove it or check its spelling")
    if kind == "union_tag_invalid":
        given = (error.get("ctx") or {}).get("tag", error.get("input"))
        *others, last = [repr(t) for t in SOURCE_TYPES]
        return Problem(
            key, f"source type {given!r} is not supported: use {', '.join(others)} or {last}"
        )
    if kind == "value_error":  # our validators' own sentences, without pydantic's prefix
        return Problem(key, str((error.get("ctx") or {}).get("error", error["msg"])))
    return Problem(key, error["msg"])


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known: " + ", ".join(choices[:12]) + (" …" if len(choices) > 12 else "")


def _watermark_problems(raw: dict[str, Any]) -> list[Problem]:
    source = raw.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if raw.get("watermark") is None or kind == "sql":
        return []
    return [
        Problem(
            "watermark",
            "incremental reads need a source of type sql",
            "remove watermark, or read the source through a query",
        )
    ]

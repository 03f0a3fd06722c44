"""The parts every job file shares, whatever its entity: where rows come from (``source``), the
record key, field specs, batching, incremental reads, quality gates and expectation suites.

Each entity's own job model (``entities/*/…_job.py``) extends :class:`JobBase`; parsing and
problem reporting are in :mod:`pipelines.jobs.job_file`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from pipelines.contract import ISO_4217
from pipelines.jobs.rate_limit_spec import RateLimit
from pipelines.quality.expectations import ExpectationSpec
from pipelines.quality.gates import GateSettings

__all__ = [
    "BatchSettings",
    "ColumnMap",
    "Constant",
    "CsvSource",
    "FieldKind",
    "FieldSpec",
    "FileSource",
    "JobBase",
    "NumberFormat",
    "NumberStyle",
    "ParquetSource",
    "SourceSpec",
    "SpecModel",
    "SqlSource",
    "WatermarkSpec",
    "XlsxSource",
    "parse_duration",
    "spec_column",
]

SOURCE_TYPES = ("csv", "parquet", "sql", "xlsx")
# How a field's text is parsed and sent (orders and customers; products type theirs by contract).
FieldKind = Literal["string", "money", "integer", "boolean", "datetime"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SpecModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CsvSource(SpecModel):
    """A CSV file; a ``path`` with ``*``, ``?`` or ``[`` is a pattern whose newest match is
    read, newest by name or by modification time as ``pick`` says (see ``SourceOpener``)."""

    type: Literal["csv"]
    path: Path
    encoding: str = "auto"
    delimiter: str = ","
    # Left out of dumps: like the path, which file is read says nothing of what it holds, and
    # the source-row memo seeds on a dump of the price list (a new key must not reset memos).
    pick: Literal["name", "mtime"] = Field("name", exclude=True)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            "a".encode(value)  # LookupError for an unknown name, or a non-text codec (hex)
        except (LookupError, TypeError):
            raise ValueError(
                f"encoding {value!r} is not known; use auto (byte order mark, else UTF-8, "
                "else cp1252) or a Python codec name such as utf-8, cp1252, latin-1, utf-16"
            ) from None
        return value

    @field_validator("delimiter", mode="before")
    @classmethod
    def _one_character(cls, value: Any) -> Any:
        named = _DELIMITER_NAMES.get(str(value).lower()) if isinstance(value, str) else None
        if named is not None:
            return named
        if not isinstance(value, str) or len(value) != 1 or not value.isascii():
            raise ValueError(
                f"delimiter {value!r} is not one ASCII character; use e.g. ',', ';', '|' or tab"
            )
        return value


# Names people write for the usual delimiters (a YAML tab is easy to get wrong).
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


class ParquetSource(SpecModel):
    """A Parquet file; ``path`` and ``pick`` as for :class:`CsvSource`."""

    type: Literal["parquet"]
    path: Path
    pick: Literal["name", "mtime"] = Field("name", exclude=True)  # see CsvSource


class XlsxSource(SpecModel):
    """A sheet of an Excel workbook (.xlsx, .xlsm): ``sheet`` is its name or its position
    counting from 1 (default: the first); ``header_row`` is the row, as Excel numbers it,
    that holds the column names (rows above it are skipped). ``path`` and ``pick`` as for
    :class:`CsvSource`."""

    type: Literal["xlsx"]
    path: Path
    sheet: str | int = 1
    header_row: int = Field(1, ge=1)
    pick: Literal["name", "mtime"] = Field("name", exclude=True)  # see CsvSource

    @field_validator("sheet")
    @classmethod
    def _sheet_position(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            raise ValueError(
                f"sheet {value} is not a position: positions count from 1 (the first sheet "
                "is 1); or give the sheet's name"
            )
        return value


class SqlSource(SpecModel):
    """A query file run on the database whose URL is in the environment variable ``url_env``."""

    type: Literal["sql"]
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: Path
    params: dict[str, str | int | float | bool | None] = {}
    chunk_rows: int = Field(10_000, ge=1)  # ~40k order lines: memory stays flat, Arrow still pays


FileSource = Annotated[CsvSource | ParquetSource | XlsxSource, Field(discriminator="type")]
SourceSpec = Annotated[
    CsvSource | ParquetSource | SqlSource | XlsxSource, Field(discriminator="type")
]


class Constant(SpecModel):
    """The same value for every record, e.g. ``currencyCode: {value: USD}``."""

    value: str | int | float | bool


class ColumnMap(SpecModel):
    """A column whose values are translated, e.g. ERP status codes to ``active``."""

    column: str
    map: dict[str, str | int | float | bool]
    default: str | int | float | bool | None = None


def _spec_kind(raw: Any) -> str | None:
    if isinstance(raw, str):
        return "spec:column"
    if isinstance(raw, dict | BaseModel):
        keys = raw.keys() if isinstance(raw, dict) else type(raw).model_fields.keys()
        return "spec:value" if "value" in keys else "spec:map"
    return None


# A plain string names a source column; a mapping is a constant or a translated column.
FieldSpec = Annotated[
    Annotated[str, Tag("spec:column")]
    | Annotated[Constant, Tag("spec:value")]
    | Annotated[ColumnMap, Tag("spec:map")],
    Discriminator(
        _spec_kind,
        custom_error_type="field_spec",
        custom_error_message="must be a column name, {value: ...} or {column: ..., map: {...}}",
    ),
]


def spec_column(spec: Any) -> str | None:
    """The source column a field spec reads (None for a constant)."""
    return spec if isinstance(spec, str) else getattr(spec, "column", None)


class BatchSettings(SpecModel):
    max_items: int = Field(500, ge=1, le=10_000)
    max_bytes: int = Field(4_000_000, ge=1_000)
    concurrency: int = Field(4, ge=1, le=64)
    timeout_s: float = Field(60.0, gt=0)


class NumberStyle(SpecModel):
    """How numbers are written in text columns: ``decimal`` mark, ``thousands`` separator
    (``""``: none accepted), the ``currency`` whose sign and code may stand before or after
    a number (stripped; another currency's sign is rejected), and whether a trailing ``%``
    divides by 100. The default is what the API writes: ``1234.5``."""

    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'", "\u00a0", "\u202f"] = ""
    currency: str | None = None
    percent: bool = False

    @field_validator("currency")
    @classmethod
    def _iso_code(cls, value: str | None) -> str | None:
        if value is not None and value not in ISO_4217:
            raise ValueError(f"currency {value!r} is not an ISO 4217 code such as EUR, USD, CHF")
        return value

    @field_validator("thousands", mode="after")
    @classmethod
    def _differs_from_decimal(cls, value: str, info: Any) -> str:
        if value and value == info.data.get("decimal"):
            raise ValueError(f"thousands separator {value!r} is also the decimal mark")
        return value


class NumberFormat(NumberStyle):
    """``number:`` in a job: the style of every number column, with ``columns`` naming the
    source columns written another way (``columns: {Gewicht: {decimal: "."}}``)."""

    columns: dict[str, NumberStyle] = {}

    def for_column(self, column: str) -> NumberStyle:
        return self.columns.get(column, self)


class WatermarkSpec(SpecModel):
    """Incremental reads: the next run reads from the last stored watermark minus ``overlap``."""

    column: str
    overlap: timedelta = timedelta(0)

    @field_validator("overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


def parse_duration(value: Any) -> Any:
    """``30s``, ``15m``, ``1h``, ``2d`` as a timedelta; anything else is left to pydantic."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError("must be a duration such as 30s, 15m, 1h or 2d")
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


class JobBase(SpecModel):
    """What every job file holds. ``source_columns_used`` names each column the job reads,
    keyed by the job-file key that names it, so a missing column is reported where it is."""

    path: Path
    job: str
    entity: str
    source: SourceSpec
    key: str
    watermark: WatermarkSpec | None = None
    allow_production: bool = False
    batch: BatchSettings = BatchSettings()
    gates: GateSettings = GateSettings()
    expectations: tuple[ExpectationSpec, ...] = ()
    number: NumberFormat = NumberFormat()
    rate_limit: RateLimit | None = None  # the target's budget, shared by every worker
    # The entity's own batch defaults (orders: 50 a call), kept when a job file's ``batch:``
    # names only some keys.
    BATCH_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @field_validator("batch", mode="before")
    @classmethod
    def _entity_batch_defaults(cls, value: Any) -> Any:
        return {**cls.BATCH_DEFAULTS, **value} if isinstance(value, dict) else value

    def source_columns_used(self) -> dict[str, str]:
        used = {"key": self.key}
        for target, spec in getattr(self, "fields", {}).items():
            column = spec_column(spec)
            if column is not None:
                used[f"fields.{target}"] = column
        for name, column in getattr(self, "attributes", {}).items():
            used[f"attributes.{name}"] = column
        if self.watermark is not None:
            used["watermark.column"] = self.watermark.column
        return used

    def sources(self) -> list[Any]:
        """Every source the job reads (its own, and lines or price lists besides)."""
        return [self.source]

import numpy as np
import orjson
import pyarrow as pa
import pytest

from pipelines.admit.acked_state import AckedState
from pipelines.load.batching import Batcher, Pending
from pipelines.transform.convert import convert, normalize_text
from pipelines.transform.serialize import key_hashes, serialize

TEXTS = ["plain", 'quote " and \\ backslash', "new\nline\ttab\r", "ctl \x01 \x1f", "é — ø 😀", None]


def test_serialized_records_are_the_json_orjson_would_write():
    table = pa.table(
        {
            "sku": pa.array(TEXTS),
            "price": pa.array([24.99, 3.0, 1e20, 1e-7, -0.5, None]),
            "qty": pa.array([1, None, -3, 0, 2**40, 7], pa.int64()),
            "active": pa.array([True, False, None, True, True, False]),
            "prices": pa.array(
                [
                    [{"tier": "A", "price": 1.5, "atQuantity": 1}],
                    [],
                    None,
                    [{"tier": 'q"t', "price": 0.0, "atQuantity": 50}],
                    None,
                    [],
                ]
            ),
            "attrs": pa.array([{"b": "x", "a": None}] * 6),
        }
    )
    bodies, _ = serialize(table)
    for body, row in zip(bodies, table.to_pylist(), strict=True):
        assert orjson.loads(body) == row
        assert body == orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("start", range(len(TEXTS)))
def test_each_slice_of_a_column_escapes_exactly_what_it_holds(start):
    """The escape check scans bytes: a slice must be judged on its own values (a quote just
    outside it is harmless), and every value needing escapes inside it must get them."""
    for stop in range(start, len(TEXTS) + 1):
        part = pa.array(TEXTS).slice(start, stop - start)
        bodies, _ = serialize(pa.table({"sku": part}))
        assert [orjson.loads(b)["sku"] for b in bodies] == TEXTS[start:stop]


def test_hashes_depend_on_content_only_not_on_slicing_or_chunking():
    table = pa.table(
        {"sku": pa.array([f"S{i}" for i in range(100)]), "price": pa.array(np.arange(100) / 4)}
    )
    _, whole = serialize(table)
    _, part = serialize(pa.concat_tables([table.slice(40, 10), table.slice(50, 10)]))
    assert (part == whole[40:60]).all()
    assert len(set(whole.tolist())) == 100


def test_a_column_read_as_float_hashes_like_the_same_numbers_read_as_int():
    as_int, _ = convert(normalize_text(pa.array(["12", "7", None])), "integer")
    as_text_float, _ = convert(normalize_text(pa.array(["12.0", "7", ""])), "integer")
    assert (
        serialize(pa.table({"q": as_int}))[1].tolist()
        == serialize(pa.table({"q": as_text_float}))[1].tolist()
    )


NUMBER_CELLS = [
    "1",
    "+1",
    "-1.5",
    ".5",
    "1.",
    "1e5",
    "1.e5",
    "+.5e+3",
    "00012",
    "-0",
    "1e400",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "0x10",
    "1_0",
    "1,5",
    "\u0663",
    "e5",
    ".",
    "1e",
]


@pytest.mark.parametrize("cells", [[c] for c in NUMBER_CELLS] + [NUMBER_CELLS])
def test_a_number_is_what_the_decimal_pattern_accepts_whichever_way_it_is_parsed(cells):
    """Whole columns of good numbers take Arrow's parse, others a pattern: same answers."""
    import re

    pattern = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
    values, bad = convert(pa.array(cells), "decimal")
    good = [pattern.fullmatch(c) is not None for c in cells]
    assert bad.tolist() == [not g for g in good]
    assert values.to_pylist() == [float(c) if g else None for c, g in zip(cells, good, strict=True)]


def test_conversion_flags_exactly_the_cells_that_do_not_parse():
    values, bad = convert(
        normalize_text(pa.array([" 4.50 ", "abc", "", None, "1e3", "-2"])), "decimal"
    )
    assert values.to_pylist() == [4.5, None, None, None, 1000.0, -2.0]
    assert bad.tolist() == [False, True, False, False, False, False]
    _, bad_int = convert(normalize_text(pa.array(["3", "3.5", "twelve"])), "integer")
    assert bad_int.tolist() == [False, True, True]


def test_acked_state_finds_only_identical_content():
    keys = key_hashes(pa.array(["a", "b", "c"]))
    state = AckedState(keys[::-1].copy(), np.array([30, 20, 10], dtype=np.int64))
    probe = key_hashes(pa.array(["a", "b", "zz"]))
    assert state.unchanged(
        state.locate(probe), np.array([10, 99, 10], dtype=np.int64)
    ).tolist() == [
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("max_items", "max_bytes", "sizes"),
    [
        (3, 10_000, [3, 3, 3, 1]),
        (100, 25, [2, 2, 2, 2, 2]),  # 10-byte bodies + separators: two per 25-byte batch
    ],
)
def test_batches_respect_item_and_byte_bounds_across_chunks(max_items, max_bytes, sizes):
    batcher = Batcher(max_items, max_bytes)
    bodies = [b'{"n":%04d}' % i for i in range(10)]
    pending = Pending(
        [str(i) for i in range(10)], np.arange(10), np.arange(10), np.arange(10), bodies
    )
    batches = batcher.add(pending.take(0, 4)) + batcher.add(pending.take(4, 10)) + batcher.flush()
    assert [len(b.records) for b in batches] == sizes
    assert [x for b in batches for x in b.records.bodies] == bodies
    assert all(b.byte_count <= max_bytes for b in batches)


def test_text_is_trimmed_and_blanks_become_missing_in_every_slice_of_every_mix():
    """Clean columns skip the trim kernels after a look at each value's first and last byte;
    whatever the mix, the result equals trimming everything."""
    import itertools

    import pyarrow.compute as pc

    def trimmed(column):
        text = pc.utf8_trim_whitespace(column)
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)

    cells = ["a", " a", "a ", "", " ", "\u00a0x", "x\u3000", "é", "mid dle", None, "\tb", "c\n"]
    for combo in itertools.product(cells, repeat=3):
        column = pa.array(list(combo), pa.string())
        for start in range(3):
            part = column.slice(start)
            assert normalize_text(part).equals(trimmed(part)), (combo, start)

"""Process-wide memory settings: checked in a fresh interpreter, since they act once."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import pyarrow as pa
import pyarrow.compute as pc
from pipelines.ops.memory import defer_pandas

defer_pandas()
pc.equal(pa.array(["a", ""]), "")  # conversions of Python values no longer load pandas
assert "pandas" not in sys.modules, "pandas was imported"
frame = pa.table({"a": [1, 2]}).to_pandas()  # what needs pandas still gets it
assert list(frame["a"]) == [1, 2]
import pandas
print("ok")
"""


def test_defer_pandas_keeps_pandas_out_until_something_needs_it():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

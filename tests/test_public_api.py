"""The package's public API: every name in ``pipelines.__all__`` resolves, and importing the
package alone loads none of the heavy libraries (the emulator and `--help` start fast)."""

from __future__ import annotations

import subprocess
import sys

import pipelines


def test_every_public_name_resolves():
    for name in pipelines.__all__:
        assert getattr(pipelines, name) is not None, name


def test_importing_the_package_loads_no_heavy_library():
    script = (
        "import sys, pipelines; "
        "print(sorted(m for m in ('sqlalchemy', 'pyarrow', 'httpx', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""Secrets never leak: real syncs with a canary API key and a canary ledger password, then
every output, log record, ledger row, rejects file and exception is searched for them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from pipelines.cli import main
from pipelines.emulator import Emulator, EmulatorSettings
from pipelines.errors import AuthError, LedgerError
from pipelines.ledger.records import decode_detail
from pipelines.run.commands import SyncSettings, sync

CANARY_KEY = "canary-KEY-7f3a9c"
CANARY_PW = "canary-PW-51c2"
CANARIES = (CANARY_KEY, CANARY_PW)
UNREACHABLE_LEDGER = f"postgresql+psycopg://u:{CANARY_PW}@127.0.0.1:1/x"
JOB = "mappings/products.yml"
SKU = "FST-10012-SV"


@pytest.fixture
def canary_emulator():
    """An emulator that accepts the canary key."""
    with Emulator.start(EmulatorSettings(api_keys={CANARY_KEY: "org_canary"})) as emu:
        yield emu


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and drivers included
    return caplog


def key_file(tmp_path: Path, key: str = CANARY_KEY, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets" / "api-key"  # outside the state directory searched below
    path.parent.mkdir(exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(mode)
    return path


def cli(state: Path, *args: str, key: str | None = None) -> Result:
    env = {"NYMBLE_SYNC_HOME": str(state), "NYMBLE_API_KEY": key, "NYMBLE_LEDGER_URL": None}
    return CliRunner(env=env).invoke(main, list(args))


def assert_clean(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text


def outputs(result: Result) -> str:
    return result.output + result.stderr + repr(result.exception)


def exception_chain(exc: BaseException | None) -> Iterator[str]:
    while exc is not None:
        yield f"{type(exc).__name__}: {exc} {exc.args!r}"
        exc = exc.__cause__ or exc.__context__


def ledger_dump(url: str) -> str:
    """Every column of every row of every table, outcome detail blobs decoded."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            parts = []
            for table in tables.sorted_tables:
                for row in conn.execute(sa.select(table)).mappings():
                    parts.append(repr(dict(row)))
                    if "detail" in row:
                        parts.append(repr(decode_detail(row["detail"]).to_pylist()))
    finally:
        engine.dispose()
    assert any("nymble_runs" in t for t in tables.tables), "the ledger has no runs table"
    return "\n".join(parts)


def files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def read_commands(state: Path, target: str, *ledger: str, **doctor: str) -> list[Result]:
    """runs, runs show, why and doctor, each with the given ledger options."""
    return [
        cli(state, "runs", *ledger),
        cli(state, "runs", *ledger, "--json"),
        cli(state, "runs", "show", "1", *ledger),
        cli(state, "runs", "show", "1", *ledger, "--json"),
        cli(state, "why", SKU, *ledger),
        cli(state, "why", SKU, *ledger, "--json"),
        cli(state, "doctor", "--target", target, *ledger, **doctor),
    ]


def test_a_sync_with_the_key_in_the_environment_leaks_it_nowhere(tmp_path, canary_emulator, logs):
    state = tmp_path / "state"
    result = cli(state, "run", JOB, "--target", canary_emulator.base_url, "--json", key=CANARY_KEY)
    assert result.exit_code == 1, outputs(result)  # the sample's bad rows are rejected
    again = cli(state, "run", JOB, "--target", canary_emulator.base_url, key=CANARY_KEY)
    assert again.exit_code == 1, outputs(again)
    reads = read_commands(state, canary_emulator.base_url, key=CANARY_KEY)
    assert [r.exit_code for r in reads] == [0] * 7, [outputs(r) for r in reads]
    assert "✓ key" in reads[-1].output

    assert_clean(outputs(result), outputs(again), *(outputs(r) for r in reads), logs.text)
    assert_clean(ledger_dump(f"sqlite:///{state / 'ledger.sqlite'}"))
    assert (state / "rejects" / "products-run1.csv").exists()
    assert_clean(files_text(state))  # the ledger file, rejects files, everything


def test_a_key_file_is_used_and_a_readable_one_warned_about(tmp_path, canary_emulator, logs):
    state = tmp_path / "state"
    private = key_file(tmp_path)
    args = ["run", JOB, "--target", canary_emulator.base_url, "--api-key-file", str(private)]
    result = cli(state, *args)
    assert result.exit_code == 1, outputs(result)
    assert "readable by other users" not in result.stderr

    shared = key_file(tmp_path, mode=0o644)
    warned = cli(state, *args)
    assert warned.exit_code == 1
    assert f"{shared} is readable by other users; run: chmod 600 {shared}" in warned.stderr
    doctor = cli(
        state, "doctor", "--target", canary_emulator.base_url, "--api-key-file", str(shared)
    )
    assert doctor.exit_code == 0 and "readable by other users" in doctor.stderr

    assert_clean(outputs(result), outputs(warned), outputs(doctor), logs.text)
    assert_clean(ledger_dump(f"sqlite:///{state / 'ledger.sqlite'}"), files_text(state))


def test_a_refused_key_stops_the_run_without_showing_it(tmp_path, emulator, logs):
    state = tmp_path / "state"
    path = key_file(tmp_path)  # the emulator fixture knows another key
    refused = cli(state, "run", JOB, "--target", emulator.base_url, "--api-key-file", str(path))
    assert refused.exit_code == 3, outputs(refused)
    from_env = cli(state, "run", JOB, "--target", emulator.base_url, key=CANARY_KEY)
    assert from_env.exit_code == 3
    with pytest.raises(AuthError) as raised:
        sync(
            SyncSettings(
                job_path=Path(JOB),
                target=emulator.base_url,
                state_dir=state,
                environ={"NYMBLE_API_KEY": CANARY_KEY},
                log=lambda _: None,
            )
        )
    assert raised.value.exit_code == 3
    doctor = cli(state, "doctor", "--target", emulator.base_url, "--api-key-file", str(path))
    assert doctor.exit_code == 3 and "the API refused this key" in doctor.output
    reads = read_commands(state, emulator.base_url, key=CANARY_KEY)

    assert_clean(outputs(refused), outputs(from_env), outputs(doctor), logs.text)
    assert_clean(*exception_chain(raised.value), *(outputs(r) for r in reads))
    assert_clean(ledger_dump(f"sqlite:///{state / 'ledger.sqlite'}"), files_text(state))


def test_an_unreachable_ledger_is_named_without_its_password(tmp_path, emulator, logs):
    state = tmp_path / "state"
    ledger = ("--ledger", UNREACHABLE_LEDGER)
    run = cli(state, "run", JOB, "--target", emulator.base_url, *ledger, key=CANARY_KEY)
    assert run.exit_code == 2 and "postgresql+psycopg://u:***@127.0.0.1:1/x" in run.output
    with pytest.raises(LedgerError) as raised:
        sync(SyncSettings(job_path=Path(JOB), ledger_url=UNREACHABLE_LEDGER, state_dir=state))
    reads = read_commands(state, emulator.base_url, *ledger, key=CANARY_KEY)
    assert [r.exit_code for r in reads] == [2] * 7
    assert reads[-1].output.startswith("✗ ledger")

    assert_clean(outputs(run), *(outputs(r) for r in reads), logs.text)
    assert_clean(*exception_chain(raised.value))


@pytest.mark.services
def test_a_postgresql_ledger_password_leaks_nowhere(tmp_path, canary_emulator, pg_url, logs):
    state = tmp_path / "state"
    with_password = sa.make_url(pg_url).set(password=CANARY_PW)  # trust auth accepts any
    url = with_password.render_as_string(hide_password=False)
    assert CANARY_PW in url
    ledger = ("--ledger", url)
    run = cli(state, "run", JOB, "--target", canary_emulator.base_url, *ledger, key=CANARY_KEY)
    assert run.exit_code == 1, outputs(run)
    reads = read_commands(state, canary_emulator.base_url, *ledger, key=CANARY_KEY)
    assert [r.exit_code for r in reads] == [0] * 7, [outputs(r) for r in reads]
    assert "postgresql+psycopg://postgres:***@" in reads[-1].output

    assert_clean(outputs(run), *(outputs(r) for r in reads), logs.text)
    assert_clean(ledger_dump(pg_url), files_text(state))


def test_production_is_refused_without_the_flag(tmp_path):
    result = cli(tmp_path, "run", JOB, "--target", "production", key=CANARY_KEY)
    assert result.exit_code == 2
    assert "refusing to write to production without --allow-production" in result.output
    assert_clean(outputs(result))


def test_a_target_url_with_credentials_is_named_without_them():
    from pipelines.targets import Target

    target = Target("url", "http://proxyuser:ProxyPassw0rd@127.0.0.1:8080/nymble", "k")
    assert target.label == "http://127.0.0.1:8080/nymble"


def test_a_crash_report_masks_secrets_of_the_command_line(tmp_path, monkeypatch):
    """An internal error in any command writes the command line to its crash report: URL
    passwords and --notify webhooks (their secret is in the path) are masked."""
    import sys

    from pipelines.ops import run_reports

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(run_reports, "list_runs", broken)
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite"
    argv = ["nymble-sync", "runs", "--ledger", "postgresql+psycopg://sync:S3cretPw@db/ledger",
            "--notify", "https://hooks.example.com/services/T0/B0/XoXoSecretToken"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    from pipelines.ledger import Ledger

    Ledger.connect(ledger).close()
    result = CliRunner(env={"NYMBLE_SYNC_HOME": str(tmp_path)}).invoke(
        main, ["runs", "--ledger", ledger]
    )
    assert result.exit_code == 70, result.output
    [report] = (tmp_path / "crash").iterdir()
    text = report.read_text()
    assert "RuntimeError: a bug" in text
    assert "S3cretPw" not in text and "XoXoSecretToken" not in text

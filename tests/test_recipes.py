"""The scheduler recipes of README.md ("Running unattended"), run as written against a real
emulator on loopback: the cron line, the systemd unit's ExecStart, the Kubernetes CronJob's
shell line and the Airflow BashOperator's bash_command are extracted from the README, their
production paths swapped for temporary ones, and run the way each scheduler runs them (cron:
/bin/sh -c; systemd: the argv, no shell; Kubernetes: the container's command; Airflow:
bash -c). Each is then judged as its scheduler would judge it, for a refused key (exit 3), a
normal run of the sample (exit 1: rows rejected on purpose) and a lock held by another run
(exit 5); and the Kubernetes wrapper is shown to pass SIGTERM on to the run."""

from __future__ import annotations

import ast
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import API_KEY, bulk_requests

from pipelines.emulator import FaultConfig
from pipelines.ledger import Ledger, lock_holder
from pipelines.run.resources import default_ledger_url
from pipelines.run.stopping import GRACE_S
from pipelines.targets import fingerprint

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
NYMBLE_SYNC = Path(sys.executable).parent / "nymble-sync"  # the venv's console script
WRONG_KEY = "wrong-key-0123456789"
JOB_NAME = "products"  # `job:` of mappings/products.yml
PRODUCTION = "--target production --allow-production"
# The README's production paths, as each recipe names them.
APP_DIRS = ("/srv/nymble-sync", "/opt/nymble-sync")
KEY_FILE = "/etc/nymble-sync/api-key"
LOG_DIR = "/var/log/nymble-sync"
STATE_DIRS = ("/var/lib/nymble-sync", "/data/nymble")
EXECUTABLE = re.compile(r"(?<![\w/.-])(?:[\w./-]*/)?nymble-sync(?= run )")


def recipe_block(title: str, language: str) -> str:
    """The first ``language`` code block after the README's bold ``title``."""
    at = README.index(f"**{title}**")
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(README, at)
    assert match, f"no {language} block after **{title}** in README.md"
    return match.group(1)


def recipe_prose(title: str) -> str:
    """What the README says after a recipe's code block, up to the next recipe or section."""
    at = README.index(f"**{title}**")
    after = README.index("```\n", README.index("```", at) + 3) + 4
    ends = [README.find(mark, after) for mark in ("\n**", "\n#")]
    return README[after : min(e for e in ends if e != -1)]


# --- the recipes, as the README writes them ------------------------------------------------


@dataclass
class Where:
    """The temporary stand-ins for one test's production paths."""

    url: str  # the emulator's base URL, for --target production --allow-production
    state: Path  # NYMBLE_SYNC_HOME
    log_dir: Path
    key_file: Path
    key: str  # what the key file and NYMBLE_API_KEY hold

    def line(self, text: str) -> str:
        """A recipe's shell line with its production paths and target made local."""
        assert PRODUCTION in text, text
        text = EXECUTABLE.sub(shlex.quote(str(NYMBLE_SYNC)), text)
        return self.local(text.replace(PRODUCTION, f"--target {self.url}"))

    def local(self, text: str) -> str:
        """``text`` with the README's production paths replaced by this test's."""
        text = text.replace(KEY_FILE, shlex.quote(str(self.key_file)))
        text = text.replace(LOG_DIR, shlex.quote(str(self.log_dir)))
        for folder in APP_DIRS:
            text = text.replace(folder, shlex.quote(str(ROOT)))
        for folder in (*STATE_DIRS, "/etc/", "/var/", "production"):
            assert folder not in text, f"{folder} left in {text!r}"
        return text

    def env(self, **variables: str) -> dict[str, str]:
        """This process's environment without nymble-sync's own variables, plus ``variables``
        with their production paths made local."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NYMBLE_")}
        for name, value in variables.items():
            env[name] = str(self.state) if value in STATE_DIRS else value
        env.setdefault("NYMBLE_SYNC_HOME", str(self.state))
        return env


@dataclass
class Recipe:
    name: str
    # The command as its scheduler runs it: argv, environment and working directory.
    command: Callable[[Where], tuple[list[str], dict[str, str], Path]]
    # What the scheduler makes of the finished process.
    verdict: Callable[[subprocess.CompletedProcess], str]

    def run(self, where: Where) -> subprocess.CompletedProcess:
        argv, env, cwd = self.command(where)
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def _cron() -> tuple[dict[str, str], str]:
    """The crontab's variables and the command of its one job line (after 5 schedule fields)."""
    variables, commands = {}, []
    for line in recipe_block("cron", "cron").splitlines():
        if re.match(r"^[A-Z_]+=", line):
            name, value = line.split("=", 1)
            variables[name] = value
        elif line.strip() and not line.startswith("#"):
            fields = line.split(maxsplit=5)
            assert fields[:5] == ["15", "2", "*", "*", "*"], line
            commands.append(fields[5])
    assert len(commands) == 1 and "MAILTO" in variables
    return variables, commands[0]


def _cron_command(where: Where):
    variables, command = _cron()
    env = where.env(**{k: v for k, v in variables.items() if k != "MAILTO"})
    return ["/bin/sh", "-c", where.line(command)], env, ROOT  # cron's default SHELL


def cron_verdict(result: subprocess.CompletedProcess) -> str:
    return "mail" if result.stdout.strip() or result.stderr.strip() else "quiet"


def _systemd() -> dict[str, str]:
    """The service unit's settings (first of each key: the service comes before the timer)."""
    settings: dict[str, str] = {}
    for line in recipe_block("systemd", "ini").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), value.strip())
    return settings


def _systemd_command(where: Where):
    unit = _systemd()
    name, value = unit["Environment"].split("=", 1)
    cwd = Path(where.local(unit["WorkingDirectory"]))
    return shlex.split(where.line(unit["ExecStart"])), where.env(**{name: value}), cwd


def success_exit_status() -> set[int]:
    return {int(code) for code in _systemd()["SuccessExitStatus"].split()}


def systemd_verdict(result: subprocess.CompletedProcess) -> str:
    return "success" if result.returncode in {0} | success_exit_status() else "failed"


def _kubernetes() -> tuple[dict, dict]:
    """The CronJob's Job spec and its container named ``sync``."""
    cron_job = yaml.safe_load(recipe_block("Kubernetes CronJob", "yaml"))
    job = cron_job["spec"]["jobTemplate"]["spec"]
    [container] = [c for c in job["template"]["spec"]["containers"] if c["name"] == "sync"]
    return job, container


def fail_job_codes() -> set[int]:
    job, _ = _kubernetes()
    rules = job["podFailurePolicy"]["rules"]
    [codes] = [r["onExitCodes"] for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
    assert codes["operator"] == "In" and codes["containerName"] == "sync"
    return set(codes["values"])


def _kubernetes_command(where: Where):
    _, container = _kubernetes()
    [line] = container["args"]
    assert "\n" not in line.strip(), "the args must fold into one shell line"
    env = {}
    for var in container["env"]:
        if var["name"] == "NYMBLE_API_KEY":  # from a Secret
            env["NYMBLE_API_KEY"] = where.key
        elif "value" in var:  # the ledger URL (a Secret) is left out: SQLite in the state dir
            env[var["name"]] = var["value"]
    return [*container["command"], where.line(line)], where.env(**env), ROOT


def kubernetes_verdict(result: subprocess.CompletedProcess) -> str:
    if result.returncode == 0:
        return "complete"
    return "failed" if result.returncode in fail_job_codes() else "retried"


def _airflow() -> dict:
    """The keyword arguments of the README's BashOperator, as Python values (templated
    strings as written)."""
    tree = ast.parse(recipe_block("Airflow", "python"))
    [call] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "BashOperator"
    ]
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg != "retry_delay"}


def _airflow_command(where: Where):
    operator = _airflow()
    env = {"NYMBLE_API_KEY": where.key} | {
        name: value for name, value in operator["env"].items() if "{{" not in value
    }
    assert operator["append_env"] is True  # the worker's own environment is kept
    cwd = Path(where.local(operator["cwd"]))
    return ["bash", "-c", where.line(operator["bash_command"])], where.env(**env), cwd


def airflow_verdict(result: subprocess.CompletedProcess) -> str:
    operator = _airflow()
    if result.returncode == 0:
        return "success"
    if result.returncode in operator["skip_on_exit_code"]:
        return "skipped"
    return "failed" if operator["retries"] == 0 else "retried"


CRON = Recipe("cron", _cron_command, cron_verdict)
SYSTEMD = Recipe("systemd", _systemd_command, systemd_verdict)
KUBERNETES = Recipe("kubernetes", _kubernetes_command, kubernetes_verdict)
AIRFLOW = Recipe("airflow", _airflow_command, airflow_verdict)
RECIPES = [CRON, SYSTEMD, KUBERNETES, AIRFLOW]


# --- running them --------------------------------------------------------------------------


@pytest.fixture
def where(tmp_path, emulator) -> Callable[..., Where]:
    def make(key: str = API_KEY) -> Where:
        key_file = tmp_path / "api-key"
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        (tmp_path / "log").mkdir(exist_ok=True)
        return Where(emulator.base_url, tmp_path / "state", tmp_path / "log", key_file, key)

    return make


@contextmanager
def lock_held_by_another_run(where: Where):
    """The ledger lock of the products job at the emulator, held by this (live) process."""
    with Ledger.connect(default_ledger_url(where.state)) as ledger:
        target_id = fingerprint(where.url, API_KEY)
        with ledger.acquire_lock(job=JOB_NAME, target_id=target_id, holder=lock_holder()):
            yield


def _log(where: Where) -> str:
    return (where.log_dir / "products.log").read_text(encoding="utf-8")


# --- the three cases, for every recipe -----------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_a_refused_key_is_an_alert_that_is_not_retried(recipe, where):
    place = where(WRONG_KEY)
    result = recipe.run(place)
    assert "Traceback" not in result.stdout + result.stderr
    if recipe is CRON:  # the mail: the exit code and the run's log
        assert "exit 3" in result.stdout
        assert "refused the API key" in result.stdout and result.stdout.strip().endswith(
            _log(place).strip()
        )
        assert recipe.verdict(result) == "mail"
    elif recipe is SYSTEMD:
        assert result.returncode == 3 and 3 not in success_exit_status(), result.stderr
        assert recipe.verdict(result) == "failed"  # OnFailure= fires
    elif recipe is KUBERNETES:
        assert result.returncode == 3 and 3 in fail_job_codes(), result.stderr
        assert recipe.verdict(result) == "failed"  # FailJob: no retry
    else:
        assert result.returncode == 3, result.stderr
        assert recipe.verdict(result) == "failed"
        advice = recipe_prose("Airflow")
        assert "2, 3, 4 and 70" in advice and "AirflowFailException" in advice


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_a_run_that_rejected_rows_on_purpose_is_a_success(recipe, where):
    place = where()
    result = recipe.run(place)
    if recipe is CRON:
        assert result.stdout == "" and result.stderr == ""  # no mail
        assert "rows read        2,000" in _log(place) and "rejected             6" in _log(place)
        assert recipe.verdict(result) == "quiet"
    elif recipe is SYSTEMD:
        assert result.returncode == 1 and 1 in success_exit_status(), result.stderr
        assert recipe.verdict(result) == "success"
    elif recipe is KUBERNETES:
        assert result.returncode == 0, result.stderr  # the CLI's 1, mapped
        assert "rejected             6" in result.stdout
        assert recipe.verdict(result) == "complete"
    else:
        assert result.returncode == 0, result.stderr  # the CLI's 1, mapped
        assert "rejected             6" in result.stdout
        assert recipe.verdict(result) == "success"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_a_run_that_finds_the_lock_held_is_skipped_quietly(recipe, where):
    place = where()
    with lock_held_by_another_run(place):
        result = recipe.run(place)
    if recipe is CRON:
        assert result.stdout == "" and result.stderr == ""  # no mail
        assert "already running" in _log(place)
        assert recipe.verdict(result) == "quiet"
    elif recipe is SYSTEMD:
        assert result.returncode == 5 and 5 in success_exit_status(), result.stderr
        assert recipe.verdict(result) == "success"
    elif recipe is KUBERNETES:
        assert result.returncode == 0, result.stderr  # the CLI's 5, mapped
        assert "already running" in result.stderr
        assert recipe.verdict(result) == "complete"
    else:
        assert result.returncode == 5 and 5 in _airflow()["skip_on_exit_code"], result.stderr
        assert recipe.verdict(result) == "skipped"


# --- stopping ------------------------------------------------------------------------------


def test_the_recipes_leave_a_stopped_run_time_to_stop_cleanly():
    unit = _systemd()
    assert unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) >= GRACE_S + 5
    job, _ = _kubernetes()
    assert job["template"]["spec"]["terminationGracePeriodSeconds"] >= GRACE_S + 5
    assert fail_job_codes() == {2, 3, 4, 70}  # 6 and 143 are retried


def test_the_kubernetes_shell_passes_sigterm_on_and_a_rerun_finishes_the_work(where, emulator):
    """The shell is the pod's process 1 there: only a trap makes SIGTERM reach the run."""
    place = where()
    argv, env, cwd = KUBERNETES.command(place)
    slow = argv[:-1] + [argv[-1].replace(" & pid=", " --batch-size 50 --concurrency 2 & pid=")]
    assert slow != argv
    emulator.set_faults(FaultConfig(latency_ms=150))
    proc = subprocess.Popen(
        slow, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while bulk_requests(emulator) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # to the shell, as the kubelet does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err  # the run's own code: stopped cleanly, retried
    assert "stopped by SIGTERM" in err and KUBERNETES.verdict(proc) == "retried"
    with Ledger.connect(default_ledger_url(place.state), create=False) as ledger:
        [run] = ledger.recent_runs(limit=5)
    assert run.status == "interrupted" and 0 < run.counts["created"] < 1994

    emulator.set_faults(FaultConfig())
    rerun = KUBERNETES.run(place)  # the retry: the lock was released, the work is finished
    assert rerun.returncode == 0, rerun.stderr
    with Ledger.connect(default_ledger_url(place.state), create=False) as ledger:
        newest = ledger.recent_runs(limit=1)[0]
    assert newest.counts["created"] + run.counts["created"] == 1994

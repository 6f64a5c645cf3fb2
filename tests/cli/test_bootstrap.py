"""scripts/bootstrap installs on a fresh checkout and when pyproject.toml changes, and otherwise does nothing.

The script runs on a copy of the checkout's layout whose `python3` is a fake that records each call,
so the test sees which installs would run without touching the network or the real venv.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Stands in for both the interpreter that creates the venv and the venv's own python.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
if [ -n "${FAIL_PIP:-}" ] && [ "$1 $2" = "-m pip" ]; then exit 1; fi
"""


def _checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PYTHON": str(fake), "CALLS": str(tmp_path / "calls")}
    env.pop("FAIL_PIP", None)
    return root, env


def _bootstrap(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "scripts" / "bootstrap")], env=env, capture_output=True, text=True, timeout=30)


def _calls(env: dict[str, str]) -> list[str]:
    path = Path(env["CALLS"])
    calls = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return calls


def test_fresh_checkout_installs_then_second_run_is_silent_and_installs_nothing(tmp_path: Path) -> None:
    root, env = _checkout(tmp_path)
    first = _bootstrap(root, env)
    assert first.returncode == 0, first.stderr
    calls = _calls(env)
    assert calls[0] == "-m venv .venv" and any(c.startswith("-m pip install -q -e .[test]") for c in calls)
    second = _bootstrap(root, env)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert _calls(env) == []


def test_changed_pyproject_reinstalls(tmp_path: Path) -> None:
    root, env = _checkout(tmp_path)
    assert _bootstrap(root, env).returncode == 0
    _calls(env)
    with (root / "pyproject.toml").open("a") as f:
        f.write('dependencies = ["trio"]\n')
    assert _bootstrap(root, env).returncode == 0
    calls = _calls(env)
    assert "-m venv .venv" not in calls and any(c.startswith("-m pip install -q -e .[test]") for c in calls)
    assert _bootstrap(root, env).returncode == 0 and _calls(env) == []


def test_failed_install_is_retried_next_time(tmp_path: Path) -> None:
    root, env = _checkout(tmp_path)
    assert _bootstrap(root, {**env, "FAIL_PIP": "1"}).returncode != 0
    _calls(env)
    assert _bootstrap(root, env).returncode == 0
    assert any(c.startswith("-m pip install") for c in _calls(env))


def test_stamp_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".venv/.bootstrap-stamp"], cwd=REPO)
    assert ignored.returncode == 0

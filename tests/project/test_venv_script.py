"""bin/_venv.sh picks the Python that makes .venv: $PYTHON, else one without a shared libpython, else the first."""

import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

# A stand-in interpreter answering _venv.sh's two probes: the version check and "is libpython mapped?".
FAKE = """#!/bin/sh
case "$2" in
  *version_info*) exit {version_status} ;;
  *libpython*) exit {shared_status} ;;
esac
exit 2
"""


def fake_python(folder: Path, name: str, *, new_enough=True, shared_libpython=False) -> str:
    path = folder / name
    path.write_text(FAKE.format(version_status=0 if new_enough else 1, shared_status=1 if shared_libpython else 0))
    path.chmod(0o755)
    return str(path)


def find_python(candidates, python=None):
    script = f"source bin/_venv.sh; PYTHON_CANDIDATES=({' '.join(candidates)}); find_python"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": python or ""}
    return subprocess.run(["bash", "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True)


@pytest.fixture
def pythons(tmp_path):
    return {
        "old": fake_python(tmp_path, "python3.10", new_enough=False),
        "shared": fake_python(tmp_path, "python3.11-shared", shared_libpython=True),
        "static": fake_python(tmp_path, "python3.11-static"),
    }


def test_prefers_an_interpreter_without_a_shared_libpython(pythons):
    result = find_python([pythons["old"], pythons["shared"], pythons["static"]])
    assert result.stdout.strip() == pythons["static"], result.stderr


def test_takes_the_first_new_enough_one_when_none_is_static(pythons):
    result = find_python([pythons["old"], pythons["shared"]])
    assert result.stdout.strip() == pythons["shared"], result.stderr


def test_no_python_311_is_a_clear_error(pythons):
    result = find_python([pythons["old"], "/nonexistent/python3"])
    assert result.returncode == 1
    assert "Python 3.11 or newer is needed" in result.stderr


def test_python_variable_wins_even_if_shared(pythons):
    result = find_python([pythons["static"]], python=pythons["shared"])
    assert result.stdout.strip() == pythons["shared"], result.stderr


def test_a_python_variable_that_is_not_python_311_is_refused(pythons):
    result = find_python([pythons["static"]], python=pythons["old"])
    assert result.returncode == 1
    assert f"PYTHON={pythons['old']} is not Python 3.11 or newer" in result.stderr


def test_the_libpython_probe_tells_shared_from_static_builds():
    """The probe itself, on whatever interpreters this machine has (pyenv's default build is shared)."""
    probe = 'import sys; sys.exit(any("libpython" in l for l in open("/proc/self/maps")))'
    seen = {}
    for candidate in ("/usr/bin/python3.11", str(Path.home() / ".pyenv/versions/3.11.7/bin/python3.11")):
        if not Path(candidate).exists():
            continue
        linked = subprocess.run(["ldd", candidate], capture_output=True, text=True).stdout
        seen[candidate] = (subprocess.run([candidate, "-c", probe]).returncode == 1, "libpython" in linked)
    if not seen:
        pytest.skip("neither Debian's nor pyenv's python3.11 is installed here")
    for candidate, (probe_says_shared, ldd_says_shared) in seen.items():
        assert probe_says_shared == ldd_says_shared, candidate

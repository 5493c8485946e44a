# Sourced by bin/run and bin/test: make .venv with Python 3.11+ and install the given requirements file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Which Python 3.11+ makes the venv: $PYTHON if set; otherwise the first candidate whose interpreter does not load
# libpython as a shared library, else the first one found. A shared libpython (pyenv's default build, also built
# without profile-guided optimisation) costs every Python function call an indirection, which a request's many small
# calls add up (Debian's python3.11 is built with PGO and LTO and links libpython statically; bench/RESULTS.md).
PYTHON_CANDIDATES=(python3.11 /usr/bin/python3.11 /usr/local/bin/python3.11 python3.12 /usr/bin/python3.12
    python3.13 /usr/bin/python3.13 python3)

is_python_311() {
    command -v "$1" >/dev/null 2>&1 && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

find_python() {
    local candidate first=""
    if [ -n "${PYTHON:-}" ]; then
        is_python_311 "$PYTHON" && echo "$PYTHON" && return 0
        echo "PYTHON=$PYTHON is not Python 3.11 or newer" >&2
        return 1
    fi
    for candidate in "${PYTHON_CANDIDATES[@]}"; do
        is_python_311 "$candidate" || continue
        # Linux only: elsewhere no candidate is known to be static and the first one found is taken.
        if "$candidate" -c 'import sys; sys.exit(any("libpython" in l for l in open("/proc/self/maps")))' 2>/dev/null
        then
            echo "$candidate"
            return 0
        fi
        [ -n "$first" ] || first=$candidate
    done
    if [ -n "$first" ]; then
        echo "$first"
        return 0
    fi
    echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_venv() {
    local requirements=$1
    if [ ! -x .venv/bin/python ]; then
        local python
        python=$(find_python)
        "$python" -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
    fi
    # Reinstall only when the requirements changed since the last install.
    local stamp=.venv/.installed-$(basename "$requirements")
    if [ ! -f "$stamp" ] || ! cmp -s <(cat requirements*.txt) "$stamp"; then
        .venv/bin/python -m pip install -q -r "$requirements"
        cat requirements*.txt > "$stamp"
    fi
}

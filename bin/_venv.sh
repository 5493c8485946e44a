# Sourced by bin/run and bin/test: make .venv with Python 3.11+ and install the given requirements file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_venv() {
    local requirements=$1
    if [ ! -x .venv/bin/python ]; then
        "$(find_python)" -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
    fi
    # Reinstall only when the requirements changed since the last install.
    local stamp=.venv/.installed-$(basename "$requirements")
    if [ ! -f "$stamp" ] || ! cmp -s <(cat requirements*.txt) "$stamp"; then
        .venv/bin/python -m pip install -q -r "$requirements"
        cat requirements*.txt > "$stamp"
    fi
}

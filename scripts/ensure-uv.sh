#!/usr/bin/env bash
# Make sure `uv` is on PATH: install it with pip (user site) if it is missing.
# Used by the Makefile and .ci/run. Prints where uv is.
set -euo pipefail

# The PATH of the shell the user types in (make passes it: it adds ~/.local/bin itself).
callers_path="${SIMLAB_USER_PATH:-${PATH}}"
export PATH="${HOME}/.local/bin:${PATH}"

# The README's commands (`uv run simlab login`, ...) run in the user's own shell: make uv
# reachable there too, not only inside make (where ~/.local/bin is added to PATH).
reachable_for_the_user() {
    local uv_path
    uv_path="$(command -v uv)"
    if PATH="${callers_path}" command -v uv >/dev/null 2>&1; then
        return 0
    fi
    for dir in /usr/local/bin "${HOME}/bin"; do
        case ":${callers_path}:" in *":${dir}:"*) ;; *) continue ;; esac
        if [ -d "${dir}" ] && [ -w "${dir}" ]; then
            ln -sf "${uv_path}" "${dir}/uv"
            echo "uv linked into ${dir} (on your PATH)" >&2
            return 0
        fi
    done
    echo "note: uv is in $(dirname "${uv_path}"), which is not on your PATH; run" >&2
    echo "  export PATH=\"$(dirname "${uv_path}"):\$PATH\"" >&2
    echo "before the README's 'uv run ...' commands (or call ${uv_path} directly)" >&2
}

if command -v uv >/dev/null 2>&1; then
    reachable_for_the_user
    command -v uv
    exit 0
fi

PYTHON="${PYTHON:-python3}"
echo "uv not found: installing it with ${PYTHON} -m pip" >&2
if ! "${PYTHON}" -m pip --version >/dev/null 2>&1; then
    "${PYTHON}" -m ensurepip --user >/dev/null 2>&1 || "${PYTHON}" -m ensurepip >/dev/null 2>&1 || true
fi
# A Debian-style Python refuses plain --user installs (PEP 668); uv then goes to the user
# site anyway, not the system's packages.
"${PYTHON}" -m pip install --user --quiet uv 2>/dev/null \
    || "${PYTHON}" -m pip install --user --quiet --break-system-packages uv \
    || "${PYTHON}" -m pip install --quiet uv

if ! command -v uv >/dev/null 2>&1; then
    echo "uv was installed but is not on PATH; add \$HOME/.local/bin (or pip's scripts dir) to PATH" >&2
    exit 1
fi
reachable_for_the_user
command -v uv

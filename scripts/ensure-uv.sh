#!/usr/bin/env bash
# Make sure `uv` is on PATH: install it with pip (user site) if it is missing.
# Used by the Makefile and .ci/run. Prints where uv is.
set -euo pipefail

export PATH="${HOME}/.local/bin:${PATH}"
if command -v uv >/dev/null 2>&1; then
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
command -v uv

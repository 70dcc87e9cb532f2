#!/usr/bin/env bash
# Make sure `wrk` (the HTTP load generator benchmarks/proxy.py uses for requests/s) is
# installed: from Debian's packages when running as root (or with password-less sudo).
# Never fatal: without wrk the benchmark loads from its own process and says so.
set -uo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "wrk not found and no apt-get here: benchmarks/proxy.py loads from its own process" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "wrk not found (apt install wrk): benchmarks/proxy.py loads from its own process" >&2
    exit 0
fi
echo "wrk not found: installing Debian's package" >&2
"${sudo[@]}" apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 && "${sudo[@]}" apt-get install -y -qq wrk >/dev/null 2>&1; } \
    || echo "installing wrk failed: benchmarks/proxy.py loads from its own process" >&2
exit 0

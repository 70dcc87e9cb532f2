#!/usr/bin/env bash
# The web UI's front-end libraries, from the npm registry as frontend/package-lock.json
# pins them: `npm ci` when the lock file changed since the last install, then the files
# the pages load are copied to frontend/dist, which Django serves as static/vendor/.
# Run by `make sync` (so by `make run`, `make check` and `make test`).
set -euo pipefail

cd "$(dirname "$0")/../frontend"
if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm (Node.js) is needed for the web UI's libraries; install Node.js 18+" >&2
    exit 1
fi
installed=node_modules/.simlab-package-lock.json
if ! cmp -s package-lock.json "${installed}" 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "${installed}"
fi
mkdir -p dist
cp node_modules/htmx.org/dist/htmx.min.js dist/htmx.min.js
cp node_modules/alpinejs/dist/cdn.min.js dist/alpine.min.js
cp node_modules/leaflet/dist/leaflet.js dist/leaflet.js
cp node_modules/leaflet/dist/leaflet.css dist/leaflet.css

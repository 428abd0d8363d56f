#!/usr/bin/env bash
# Refresh the screenshots of `prism admin` in docs/admin/ (shown in README.md and docs/admin.md): the browser
# tests save them while they drive Debian's Chromium over a seeded deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
PRISM_ADMIN_SCREENSHOTS="$PWD/docs/admin" .venv/bin/pytest -q -p no:cacheprovider tests/test_admin_browser.py

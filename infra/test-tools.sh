#!/usr/bin/env bash
# The programs some tests drive besides Python: Debian's Chromium (the report's and the
# dashboard's browser tests) and a foreign Kafka command-line client (kafka-console, for
# tests/integration/test_foreign_client.py). Installs what is missing where it can
# (root or passwordless sudo for apt; npm); with --strict (CI) a missing one fails,
# otherwise the tests that need it are skipped with the reason.
set -uo pipefail
strict=0
[ "${1:-}" = "--strict" ] && strict=1
missing=0

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (apt) for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  { as_root apt-get update -qq && as_root apt-get install -y -qq chromium >/dev/null; } \
    || { echo "could not install chromium: the browser tests will be skipped" >&2; missing=1; }
fi

# Pinned: one small pure-JavaScript package (docs/operations.md, "Clients").
if ! command -v kafka-console >/dev/null 2>&1; then
  echo "installing kafka-console (npm) for the foreign-client test" >&2
  { command -v npm >/dev/null 2>&1 && npm install -g --no-audit --no-fund --silent kafka-console@3.1.55; } \
    || { echo "could not install kafka-console: the foreign-client test will be skipped" >&2; missing=1; }
fi

if [ "$strict" -eq 1 ] && [ "$missing" -ne 0 ]; then exit 1; fi
exit 0

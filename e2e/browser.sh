#!/usr/bin/env bash
# Real browser: Debian chromium driven by playwright-core. Args: BASE_URL CLERK_URL ARTIFACTS
set -euo pipefail
cd "$(dirname "$0")"
echo "playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version"), $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?')"
node browser.mjs "$1" "$3" "$2"
# The operator console (the proxy runs with ADMIN_ORG_ID = the fake Clerk's seeded organisation).
# BROWSER_ADMIN=0 leaves it out for a proxy run without the console (the
# compose stack: e2e/run covers the console).
if [ "${BROWSER_ADMIN:-1}" != 0 ]; then
  node browser-admin.mjs "$1" "$3" "$2"
fi

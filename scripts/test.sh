#!/usr/bin/env bash
# The project's test command (the one README.md gives and .ci/run calls):
# installs the pinned third-party peers into .peers/, then runs every test
# target. Extra arguments go to `cargo test`, e.g. `scripts/test.sh sdk_list`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-peers.sh
exec cargo test --all-targets --no-fail-fast "$@"

#!/usr/bin/env bash
# The test command: fast offline tests and the slow ones (real weights, real images, real browser).
# Slow tests skip with a reason when a prerequisite (weights, ../shared/images, chromium) is absent.
#   bash test.sh                  everything
#   bash test.sh -m "not slow"    the fast suite only (about a minute)
set -euo pipefail
cd "$(dirname "$0")"
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Outage benchmark (issue 9): many reports of one broken site, and many
# broken sites, against the real server on loopback. See bench/README.md.
#
#   bash bench/outage.sh [-strict] [-scenario one|sites] [-server-flag=--flag=value]...
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/outage "$@"

#!/usr/bin/env bash
# `make run`: the main job on this machine. The full job (local control plane + operator + a 3-member
# RaftCluster named demo) needs the local control plane and the operator; until they land this script
# runs the best real thing the tree has and says so.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "make run: the raftkv server, local control plane and operator have not landed yet."
echo "make run: what this build has:"
bin/raftkv --version
bin/raftkv-operator --version
exit 0

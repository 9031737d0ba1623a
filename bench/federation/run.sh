#!/bin/sh
# Federation delivery benchmark: two nodes (in one process, each with its own SQLite data
# directory and its own HTTPS listener on 127.0.0.1), see README.md.
# Usage: bench/federation/run.sh [MESSAGES] [LATENCY_MESSAGES] [RATE]
set -eu
cd "$(dirname "$0")/../.."
cargo build --release -p liaison-cli
BIN="${CARGO_TARGET_DIR:-target}/release/liaison"
LIAISON_LOG=warn "$BIN" federation bench --messages "${1:-10000}" --latency-messages "${2:-1000}" --rate "${3:-200}"

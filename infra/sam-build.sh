#!/usr/bin/env bash
# `sam build` as a deployment runs it: installs the AWS SAM CLI, cargo-lambda and Zig from
# PyPI into a venv (~/.cache/dtx-migrate/sam-venv), adds Rust's aarch64 target, then builds
# the three functions for arm64 (cargo lambda, Zig as the linker; no Docker). Extra arguments
# go to `sam build`. The artifacts land in .aws-sam/build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DTX_SAM_VENV:-$HOME/.cache/dtx-migrate/sam-venv}"
if [ ! -x "$VENV/bin/sam" ] || [ ! -x "$VENV/bin/cargo-lambda" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "aws-sam-cli==${SAM_CLI_VERSION:-1.170.0}" "cargo-lambda==${CARGO_LAMBDA_VERSION:-1.9.2}" "ziglang==${ZIG_VERSION:-0.13.0}"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
export PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
sam build "$@"

#!/usr/bin/env bash
# Static checks of the SAM template: cfn-lint, then checkov.
#
# Usage: infra/check-template.sh [path/to/template.yaml]
#
# cfn-lint and checkov (pinned below) are taken from the project venv
# (${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}); if either is missing there or
# is not the pinned version, both are (re)installed into that venv with pip
# from PyPI; if that fails, the tools on PATH are used.
# Fails (non-zero exit) if cfn-lint reports any error or checkov reports any
# failed check (or cannot parse the template); cfn-lint warnings are printed
# but do not fail the check. Checkov findings that do not apply are skipped in
# the template itself (Metadata: checkov: skip, each with a comment), so a new
# finding fails here until it is fixed or skipped there with a reason.
set -euo pipefail

CFN_LINT_VERSION="1.51.0"
CHECKOV_VERSION="3.3.30"
DTX_VENV="${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
template="${1:-$repo_root/template.yaml}"

if [[ ! -f "$template" ]]; then
    echo "check-template: FAILED - template not found: $template" >&2
    exit 2
fi

# True if the venv has both tools at the pinned versions.
venv_is_pinned() {
    [[ -x "$DTX_VENV/bin/cfn-lint" && -x "$DTX_VENV/bin/checkov" ]] || return 1
    "$DTX_VENV/bin/python" - "$CFN_LINT_VERSION" "$CHECKOV_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("cfn-lint"), version("checkov")) == (sys.argv[1], sys.argv[2]) else 1)
EOF
}

# Installs the pinned tools into the venv unless they are there already.
# Diagnostics go to stderr; returns non-zero if the install failed.
ensure_venv() {
    venv_is_pinned && return 0
    echo "check-template: installing cfn-lint==$CFN_LINT_VERSION checkov==$CHECKOV_VERSION into $DTX_VENV" >&2
    command -v python3 >/dev/null 2>&1 \
        && python3 -m venv "$DTX_VENV" >&2 \
        && "$DTX_VENV/bin/pip" install -q --disable-pip-version-check \
            "cfn-lint==$CFN_LINT_VERSION" "checkov==$CHECKOV_VERSION" >&2 \
        && venv_is_pinned
}

# Prints the executable to use for tool $1 on stdout: the venv's, else PATH's.
find_tool() {
    local tool="$1"
    if [[ $venv_ok -eq 1 ]]; then
        echo "$DTX_VENV/bin/$tool"
        return 0
    fi
    if command -v "$tool" >/dev/null 2>&1; then
        echo "check-template: venv install failed, falling back to $tool on PATH" >&2
        command -v "$tool"
        return 0
    fi
    return 1
}

venv_ok=0
if ensure_venv; then venv_ok=1; fi
if ! cfn_lint="$(find_tool cfn-lint)"; then
    echo "check-template: FAILED - cfn-lint not available (venv: $DTX_VENV)" >&2
    exit 2
fi
if ! checkov="$(find_tool checkov)"; then
    echo "check-template: FAILED - checkov not available (venv: $DTX_VENV)" >&2
    exit 2
fi
if [[ $venv_ok -eq 1 ]]; then py="$DTX_VENV/bin/python"; else py="python3"; fi

rel="${template#"$repo_root"/}"
failed=0

# --- cfn-lint ---------------------------------------------------------------
cfn_version="$("$cfn_lint" --version 2>/dev/null || echo 'cfn-lint (unknown version)')"
# parseable format: path:line:col:endline:endcol:RULE:message
set +e
cfn_output="$("$cfn_lint" --format parseable --non-zero-exit-code error -- "$template" 2>&1)"
cfn_rc=$?
set -e
errors=$(grep -cE '^.+:[0-9]+:[0-9]+:[0-9]+:[0-9]+:E[0-9]+:' <<<"$cfn_output" || true)
warnings=$(grep -cE '^.+:[0-9]+:[0-9]+:[0-9]+:[0-9]+:W[0-9]+:' <<<"$cfn_output" || true)
if [[ -n "$cfn_output" ]]; then
    printf '%s\n' "$cfn_output"
fi
if [[ $cfn_rc -ne 0 || $errors -gt 0 ]]; then
    echo "check-template: cfn-lint failed ($errors error(s), exit $cfn_rc)" >&2
    failed=1
fi

# --- checkov ----------------------------------------------------------------
# The cloudformation framework covers SAM templates (AWS::Serverless::*,
# Globals). --quiet/--compact: print only failed checks, without code.
# --skip-download and no update check: nothing is fetched from the network.
ckv_dir="$(mktemp -d)"
trap 'rm -rf "$ckv_dir"' EXIT
set +e
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$checkov" --file "$template" --framework cloudformation \
    --quiet --compact --skip-download \
    --output cli --output json --output-file-path "console,$ckv_dir/results.json" 2>&1 \
    | grep -vE '^[[:space:]]*$'
ckv_rc=${PIPESTATUS[0]}
set -e
# Summary from the JSON report: "passed failed skipped parsing_errors version".
# A template checkov did not recognise or parse yields no checks at all: that
# counts as a failure too, never as a pass.
if ckv_summary="$("$py" - "$ckv_dir/results.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    data = json.load(f)
reports = data if isinstance(data, list) else [data]
total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
version = "unknown"
for report in reports:
    summary = report.get("summary", report)
    for key in total:
        total[key] += int(summary.get(key, 0))
    version = summary.get("checkov_version", version)
print(total["passed"], total["failed"], total["skipped"], total["parsing_errors"], version)
EOF
)"; then
    read -r passed ckv_failed skipped parse_errors ckv_version <<<"$ckv_summary"
else
    passed=0 ckv_failed="?" skipped=0 parse_errors="?" ckv_version="unknown"
fi
if [[ $ckv_rc -ne 0 || "$ckv_failed" != 0 || "$parse_errors" != 0 || $passed -eq 0 ]]; then
    echo "check-template: checkov failed ($ckv_failed failed check(s), $parse_errors parsing error(s), $passed passed, exit $ckv_rc)" >&2
    failed=1
fi

versions="$cfn_version, checkov $ckv_version"
checkov_counts="checkov $passed passed, $ckv_failed failed, $skipped skipped"
if [[ $failed -ne 0 ]]; then
    echo "check-template: FAILED - $rel: cfn-lint $errors error(s), $warnings warning(s); $checkov_counts [$versions]"
    exit 1
fi
echo "check-template: OK - $rel: cfn-lint 0 errors, $warnings warning(s); $checkov_counts [$versions]"

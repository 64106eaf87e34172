#!/usr/bin/env bash
# Lint the SAM template with cfn-lint.
#
# Usage: infra/check-template.sh [path/to/template.yaml]
#
# cfn-lint is taken from the project venv
# (${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}); if it is not there it is
# installed into that venv; if that fails, cfn-lint on PATH is used.
# Exits non-zero if cfn-lint reports any error; warnings are printed but do
# not fail the check.
set -euo pipefail

CFN_LINT_VERSION="1.51.0"
DTX_VENV="${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
template="${1:-$repo_root/template.yaml}"

if [[ ! -f "$template" ]]; then
    echo "check-template: FAILED - template not found: $template" >&2
    exit 2
fi

# Prints the cfn-lint executable to use on stdout; diagnostics go to stderr.
find_cfn_lint() {
    if [[ -x "$DTX_VENV/bin/cfn-lint" ]]; then
        echo "$DTX_VENV/bin/cfn-lint"
        return 0
    fi
    echo "check-template: installing cfn-lint==$CFN_LINT_VERSION into $DTX_VENV" >&2
    if command -v python3 >/dev/null 2>&1 \
        && python3 -m venv "$DTX_VENV" >&2 \
        && "$DTX_VENV/bin/pip" install -q "cfn-lint==$CFN_LINT_VERSION" >&2 \
        && [[ -x "$DTX_VENV/bin/cfn-lint" ]]; then
        echo "$DTX_VENV/bin/cfn-lint"
        return 0
    fi
    if command -v cfn-lint >/dev/null 2>&1; then
        echo "check-template: venv install failed, falling back to cfn-lint on PATH" >&2
        command -v cfn-lint
        return 0
    fi
    return 1
}

if ! cfn_lint="$(find_cfn_lint)"; then
    echo "check-template: FAILED - cfn-lint not available (venv: $DTX_VENV)" >&2
    exit 2
fi
version="$("$cfn_lint" --version 2>/dev/null || echo 'cfn-lint (unknown version)')"

# parseable format: path:line:col:endline:endcol:RULE:message
set +e
output="$("$cfn_lint" --format parseable --non-zero-exit-code error -- "$template" 2>&1)"
rc=$?
set -e

errors=$(grep -cE '^.+:[0-9]+:[0-9]+:[0-9]+:[0-9]+:E[0-9]+:' <<<"$output" || true)
warnings=$(grep -cE '^.+:[0-9]+:[0-9]+:[0-9]+:[0-9]+:W[0-9]+:' <<<"$output" || true)

if [[ -n "$output" ]]; then
    printf '%s\n' "$output"
fi

rel="${template#"$repo_root"/}"
if [[ $rc -ne 0 || $errors -gt 0 ]]; then
    echo "check-template: FAILED - $rel: $errors error(s), $warnings warning(s) [$version, exit $rc]"
    exit $(( rc != 0 ? rc : 1 ))
fi
echo "check-template: OK - $rel: 0 errors, $warnings warning(s) [$version]"

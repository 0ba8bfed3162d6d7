#!/usr/bin/env bash
# The Terraform checks, offline: `terraform fmt -check`, `init` from the machine's local
# provider mirror (no registry), `validate`, the plan-level unit tests (`terraform test` with a
# mock provider), and `checkov` (zero unsuppressed failures; each suppression says why, in the
# code). ./test.sh runs it (and installs checkov); it also runs alone.
#
# The provider comes from the machine's local mirror (./mirror.sh finds it).
set -euo pipefail
cd "$(dirname "$0")"

command -v terraform >/dev/null || { echo "terraform/check.sh: no terraform on PATH"; exit 1; }
CLI_CONFIG=$(./mirror.sh)
WORK="$PWD/../target/terraform"
export TF_CLI_CONFIG_FILE="$CLI_CONFIG" TF_DATA_DIR="$WORK/data" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

terraform fmt -check -recursive -diff .
terraform init -backend=false -input=false -no-color >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; exit 1; }
terraform validate -no-color
terraform test -no-color

CHECKOV="${CAUCE_CHECKOV:-$PWD/../.venv/bin/checkov}"
[ -x "$CHECKOV" ] || CHECKOV="$(command -v checkov || true)"
[ -n "$CHECKOV" ] || { echo "terraform/check.sh: no checkov (../test.sh installs it into .venv)"; exit 1; }
"$CHECKOV" -d . --framework terraform --quiet --compact --skip-download >"$WORK/checkov.log" 2>&1 || { cat "$WORK/checkov.log"; exit 1; }
grep -E "^(Passed|Failed) checks" "$WORK/checkov.log" || true

#!/usr/bin/env bash
# The Terraform checks, offline: `terraform fmt -check`, `init` from the machine's local
# provider mirror (no registry), `validate`, the plan-level unit tests (`terraform test` with a
# mock provider), and `checkov` (zero unsuppressed failures; each suppression says why, in the
# code). ./test.sh runs it (and installs checkov); it also runs alone.
#
# The mirror is found in CAUCE_TF_PLUGIN_DIR, or in the usual places, or by a search for a
# `registry.terraform.io/hashicorp/aws` folder.
set -euo pipefail
cd "$(dirname "$0")"

command -v terraform >/dev/null || { echo "terraform/check.sh: no terraform on PATH"; exit 1; }
MIRROR="${CAUCE_TF_PLUGIN_DIR:-}"
if [ -z "$MIRROR" ]; then
  for dir in /opt/tf-plugins "$HOME/.terraform.d/plugins" /usr/share/terraform/plugins \
             "$HOME/.local/share/terraform/plugins" /usr/local/share/terraform/plugins; do
    if [ -d "$dir/registry.terraform.io/hashicorp/aws" ]; then MIRROR="$dir"; break; fi
  done
fi
if [ -z "$MIRROR" ]; then
  FOUND=$(find / -xdev -maxdepth 6 -type d -path '*/registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n 1 || true)
  [ -n "$FOUND" ] && MIRROR="${FOUND%/registry.terraform.io/hashicorp/aws}"
fi
[ -n "$MIRROR" ] || { echo "terraform/check.sh: no local mirror of hashicorp/aws (set CAUCE_TF_PLUGIN_DIR)"; exit 1; }

WORK="$PWD/../target/terraform"
mkdir -p "$WORK"
cat >"$WORK/cli.tfrc" <<CONF
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
CONF
export TF_CLI_CONFIG_FILE="$WORK/cli.tfrc" TF_DATA_DIR="$WORK/data" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

terraform fmt -check -recursive -diff .
terraform init -backend=false -input=false -no-color >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; exit 1; }
terraform validate -no-color
terraform test -no-color

CHECKOV="${CAUCE_CHECKOV:-$PWD/../.venv/bin/checkov}"
[ -x "$CHECKOV" ] || CHECKOV="$(command -v checkov || true)"
[ -n "$CHECKOV" ] || { echo "terraform/check.sh: no checkov (../test.sh installs it into .venv)"; exit 1; }
"$CHECKOV" -d . --framework terraform --quiet --compact --skip-download >"$WORK/checkov.log" 2>&1 || { cat "$WORK/checkov.log"; exit 1; }
grep -E "^(Passed|Failed) checks" "$WORK/checkov.log" || true

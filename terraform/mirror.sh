#!/usr/bin/env bash
# Finds the machine's local mirror of the hashicorp/aws provider and writes a Terraform CLI
# configuration that installs the provider from it and from nowhere else (`terraform init` works
# offline). Prints the configuration's path, for TF_CLI_CONFIG_FILE. check.sh and the test that
# applies the Terraform to the moto server (tests/aws_deploy.rs) both use it.
#
# The mirror is CAUCE_TF_PLUGIN_DIR, or one of the usual places, or found by a search for a
# `registry.terraform.io/hashicorp/aws` folder.
set -euo pipefail
cd "$(dirname "$0")"

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
[ -n "$MIRROR" ] || { echo "terraform/mirror.sh: no local mirror of hashicorp/aws (set CAUCE_TF_PLUGIN_DIR)" >&2; exit 1; }

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
echo "$WORK/cli.tfrc"

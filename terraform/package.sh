#!/usr/bin/env bash
# Builds the Lambda packages that Terraform deploys: one zip per function, `{function}.zip` in
# target/lambda-zips (the root module's `lambda_dir`), each holding one `bootstrap` executable.
#
#   terraform/package.sh            # x86_64 (the default `architecture`)
#   terraform/package.sh arm64      # Graviton
#
# cargo-lambda builds with zig against glibc 2.34, the C library of Amazon Linux 2023
# (`provided.al2023`), and the script then checks that no bootstrap asks for a newer symbol. The
# zips are deterministic (fixed timestamps and modes), so an unchanged build gives the same
# `source_code_hash` and Terraform does not redeploy it. cargo-lambda and zig come from PyPI
# into the project's virtualenv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH="${1:-x86_64}"
case "$ARCH" in
  x86_64) TRIPLE=x86_64-unknown-linux-gnu ;;
  arm64) TRIPLE=aarch64-unknown-linux-gnu ;;
  *) echo "terraform/package.sh: architecture is x86_64 or arm64, not $ARCH"; exit 2 ;;
esac
GLIBC=2.34
FUNCTIONS=(api authorizer writer exporter compactor reporter)

VENV="${CAUCE_VENV:-.venv}"
if ! "$VENV/bin/python" -c 'import ziglang' >/dev/null 2>&1 || [ ! -x "$VENV/bin/cargo-lambda" ]; then
  echo "terraform/package.sh: installing cargo-lambda and ziglang into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda ziglang
fi
# cargo-lambda finds zig through `python3 -m ziglang`: the virtualenv's python must come first.
export PATH="$PWD/$VENV/bin:$PATH"
rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE" || rustup target add "$TRIPLE"

BINS=()
for f in "${FUNCTIONS[@]}"; do BINS+=(--bin "$f"); done
cargo lambda build --profile lambda --target "$TRIPLE.$GLIBC" --output-format zip \
  -p cauce-ingest -p cauce-exporter -p cauce-analytics "${BINS[@]}"

OUT=target/lambda-zips
mkdir -p "$OUT"
python3 - "$OUT" "$GLIBC" "${FUNCTIONS[@]}" <<'PY'
import re, subprocess, sys, zipfile

out, glibc, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
newest_allowed = tuple(int(p) for p in glibc.split("."))
for f in functions:
    with zipfile.ZipFile(f"target/lambda/{f}/bootstrap.zip") as z:
        binary = z.read("bootstrap")
    path = f"target/lambda/{f}/bootstrap"
    with open(path, "wb") as fh:
        fh.write(binary)
    # The versioned glibc symbols the bootstrap needs, from its dynamic symbol table.
    symbols = subprocess.run(["objdump", "-T", path], check=True, capture_output=True, text=True).stdout
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    newest = max(versions, default=(0,))
    if newest > newest_allowed:
        sys.exit(f"{f}: needs GLIBC_{'.'.join(map(str, newest))}, newer than Amazon Linux 2023's {glibc}")
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.create_system = 3
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(f"{out}/{f}.zip", "w") as z:
        z.writestr(info, binary, compresslevel=9)
    size = len(open(f"{out}/{f}.zip", "rb").read())
    print(f"{out}/{f}.zip  {size / 1e6:6.2f} MB  (bootstrap {len(binary) / 1e6:.2f} MB, GLIBC ≤ {'.'.join(map(str, newest))})")
PY

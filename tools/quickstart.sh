#!/bin/sh
# Quick start on a fresh Debian 12 machine: install what is needed, build, and
# show the store at work: write a directory as a layer, check it out again, and
# verify the store.
set -eu
cd "$(dirname "$0")/.."

sh tools/install-deps.sh
cargo build --release --quiet
PATH="$PWD/target/release:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KARAPACE_STORE="$work/store"

kp-init
mkdir -p "$work/demo/etc" "$work/demo/bin"
echo "hello from karapace" >"$work/demo/etc/motd"
printf '#!/bin/sh\necho hi\n' >"$work/demo/bin/hi" && chmod 755 "$work/demo/bin/hi"
ln -s ../etc/motd "$work/demo/bin/motd"

echo "== blob ids equal b3sum:"
kp-hash-object "$work/demo/etc/motd"
layer=$(kp-write-layer "$work/demo")
echo "== wrote layer $layer:"
kp-ls-layer -r -l "$layer"
kp-checkout-layer "$layer" "$work/out"
echo "== checked out; identical to the source:"
diff -r "$work/demo" "$work/out" && echo "yes"
kp-update-ref refs/tags/demo "$layer"
kp-fsck

#!/bin/sh
# Quick start on a fresh Debian 12 machine, as root: install what is needed,
# build Karapace, make a Debian base image locally with debootstrap, build the
# example environment (examples/hello.toml: GNU hello from Debian's archive,
# installed inside the sandbox) and run it.
set -eu
cd "$(dirname "$0")/.."
top=$PWD

sh tools/install-deps.sh
cargo build --release --quiet
PATH="$top/target/release:$PATH"

# The debootstrap tree is made once and cached (as the test suite's is).
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
test_lazy_prereq() { :; }
. "$top/t/lib-fixtures.sh"
echo "== making a Debian 12 minbase tree with debootstrap (cached in $KP_TEST_CACHE)"
rootfs=$(fixture_debian_minbase)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KARAPACE_STORE="$work/store"

echo "== importing it as the image debian-bookworm"
karapace image import "$rootfs" debian-bookworm
mkdir "$work/hello"
cp examples/hello.toml "$work/hello/karapace.toml"
echo "== building examples/hello.toml"
karapace build "$work/hello" --name hello
echo "== the lock records the installed closure:"
grep -A2 '^\[\[packages\]\]' "$work/hello/karapace.lock" | grep -v '^--'
echo "== running it"
karapace exec hello -- hello
karapace list

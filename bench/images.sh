#!/bin/sh
# Image import benchmarks (issue 4's targets), side by side with tar:
#   1. import of the Debian minbase rootfs.tar.xz (fresh store each run) vs
#      `tar -xJf` of the same file into an empty directory (target <= 1.2x);
#   2. re-import of the same file into the same store (target <= 5% of 1.);
#   3. peak memory of the import for the archive and for one four times larger
#      (target: flat in the archive's size).
# Needs root for debootstrap (the tree and its tarball are cached in $KP_TEST_CACHE).
# Usage: sh bench/images.sh   (builds the release binaries first)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$PWD/target/release"
PATH="$BIN:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
TEST_DIRECTORY="$PWD/t"
test_lazy_prereq() { :; }
. t/lib-images.sh
W=$(mktemp -d /var/tmp/kp-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
TARBALL=$(image_debian_tarball)
export KARAPACE_STORE="$W/store"

peak() { # peak RSS in KiB of a command
	/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
}

echo "## machine: $(nproc) cores, $(uname -r), $(df -h "$W" | awk 'NR==2 {print $1}')"
echo "## archive: $(du -h "$TARBALL" | cut -f1) xz, $(xz -l --robot "$TARBALL" | awk '/^totals/ {printf "%.0f MiB", $5/1048576}') unpacked"
echo
echo "## 1. first import vs tar -xJf"
hyperfine -N --warmup 1 --runs 5 --export-markdown "$W/h1.md" \
	--prepare "rm -rf $W/store $W/x" \
	-n "kp-fetch-image (fresh store)" "sh -c 'kp-init $W/store >/dev/null && kp-fetch-image --name debian $TARBALL'" \
	-n "tar -xJf" "sh -c 'mkdir $W/x && tar -C $W/x -xJf $TARBALL'" >/dev/null
cat "$W/h1.md"
echo
echo "## 2. re-import (same archive, same store)"
rm -rf "$W/store" && kp-init "$W/store" >/dev/null && kp-fetch-image --name debian "$TARBALL" >/dev/null
hyperfine -N --warmup 1 --runs 10 --export-markdown "$W/h2.md" \
	-n "kp-fetch-image again" "kp-fetch-image --name debian $TARBALL" >/dev/null
cat "$W/h2.md"
echo
echo "## 3. peak memory (KiB), /usr/bin/time -f %M"
mkdir "$W/big"
for i in 1 2 3 4; do mkdir "$W/big/$i" && tar -C "$W/big/$i" -xJf "$TARBALL"; done
tar -C "$W/big" --numeric-owner -cf - . | xz -T2 -1 >"$W/big.tar.xz"
rm -rf "$W/big" "$W/store" && kp-init "$W/store" >/dev/null
echo "| archive | xz size | kp-fetch-image | tar -xJf |"
echo "|---|---|---|---|"
one_kp=$(peak kp-fetch-image --name one "$TARBALL")
mkdir "$W/t1" && one_tar=$(peak tar -C "$W/t1" -xJf "$TARBALL")
rm -rf "$W/store" "$W/t1" && kp-init "$W/store" >/dev/null
four_kp=$(peak kp-fetch-image --name four "$W/big.tar.xz")
mkdir "$W/t4" && four_tar=$(peak tar -C "$W/t4" -xJf "$W/big.tar.xz")
echo "| minbase | $(du -h "$TARBALL" | cut -f1) | $one_kp | $one_tar |"
echo "| 4 x minbase | $(du -h "$W/big.tar.xz" | cut -f1) | $four_kp | $four_tar |"

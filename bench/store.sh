#!/bin/sh
# Store benchmarks, side by side with peers, from one run (issue 2's targets):
#   kp-hash-object vs b3sum on a 1 GiB file (time and peak memory);
#   kp-write-layer vs ostree commit (bare-user) vs tar -c | b3sum on a Debian
#   minbase tree, and kp-write-layer again over the unchanged tree;
#   kp-checkout-layer vs ostree checkout -H vs tar -x, and the disk it adds;
#   store growth for ten trees that differ by one file.
# Needs root for debootstrap (the tree is cached in $KP_TEST_CACHE).
# Usage: sh bench/store.sh   (builds the release binaries first)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$PWD/target/release"
PATH="$BIN:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
W=$(mktemp -d /var/tmp/kp-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
# ostree stores no device nodes: compare on the tree without /dev's nodes.
ROOTFS="$W/rootfs"
cp -a "$(fixture_debian_minbase)" "$ROOTFS"
find "$ROOTFS/dev" -mindepth 1 -delete
export KARAPACE_STORE="$W/store"
kp-init >/dev/null

peak() { # peak RSS in KiB of a command
	/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
}

echo "## machine: $(nproc) cores, $(uname -r), $(df -h "$W" | awk 'NR==2 {print $1}')"
echo
echo "## 1. hashing a 1 GiB file"
head -c 1073741824 /dev/urandom >"$W/big"
cat "$W/big" >/dev/null
hyperfine -N --warmup 1 --runs 5 --export-markdown "$W/h1.md" \
	"kp-hash-object $W/big" "b3sum --no-names $W/big" >/dev/null
cat "$W/h1.md"
echo
echo "peak RSS: kp-hash-object $(peak kp-hash-object "$W/big") KiB, b3sum $(peak b3sum --no-names "$W/big") KiB"
head -c 104857600 /dev/urandom >"$W/small"
echo "peak RSS on 100 MiB (flat in size?): kp-hash-object $(peak kp-hash-object "$W/small") KiB"
rm -f "$W/big" "$W/small"

echo
echo "## 2. writing the Debian minbase tree ($(du -sh "$ROOTFS" | cut -f1), $(find "$ROOTFS" | wc -l) entries)"
ostree --repo="$W/ostree" init --mode=bare-user
hyperfine -N --runs 5 --export-markdown "$W/h2.md" \
	--prepare "sh -c 'rm -rf $W/store && kp-init --store $W/store >/dev/null && sync'" \
	"kp-write-layer --store $W/store $ROOTFS" \
	--prepare "sh -c 'rm -rf $W/ostree && ostree --repo=$W/ostree init --mode=bare-user && sync'" \
	"ostree --repo=$W/ostree commit --branch=b --tree=dir=$ROOTFS" \
	--prepare "sync" \
	"sh -c 'tar -C $ROOTFS -cf - . | b3sum'" >/dev/null
cat "$W/h2.md"
kp-write-layer "$ROOTFS" >"$W/layer"
hyperfine -N --warmup 1 --runs 10 --export-markdown "$W/h3.md" \
	"kp-write-layer $ROOTFS" >/dev/null
echo
echo "second kp-write-layer over the unchanged tree:"
cat "$W/h3.md"

echo
echo "## 3. checking the tree out"
ostree --repo="$W/ostree" commit --branch=b --tree=dir="$ROOTFS" >/dev/null
tar -C "$ROOTFS" -cf "$W/rootfs.tar" .
L=$(cat "$W/layer")
hyperfine -N --runs 10 --export-markdown "$W/h4.md" \
	--prepare "rm -rf $W/co" "kp-checkout-layer $L $W/co" \
	--prepare "rm -rf $W/co" "ostree --repo=$W/ostree checkout -U -H b $W/co" \
	--prepare "sh -c 'rm -rf $W/co && mkdir $W/co'" "tar -C $W/co -xf $W/rootfs.tar" >/dev/null
cat "$W/h4.md"
rm -rf "$W/co"
before=$(df -B1 --output=used "$W" | tail -n 1)
kp-checkout-layer "$L" "$W/co"
after=$(df -B1 --output=used "$W" | tail -n 1)
echo
echo "disk added by one kp-checkout-layer: $(( (after - before) / 1024 )) KiB (directories and inodes only; file data: $(du -sh "$ROOTFS" | cut -f1) shared)"

echo
echo "## 4. deduplication"
rm -rf "$W/s10" && kp-init --store "$W/s10" >/dev/null
rm -rf "$W/tree" && cp -a "$ROOTFS" "$W/tree"
kp-write-layer --store "$W/s10" "$W/tree" >/dev/null
one=$(du -sb "$W/s10/objects" | cut -f1)
for i in 1 2 3 4 5 6 7 8 9; do
	echo "change $i" >"$W/tree/etc/bench-change"
	kp-write-layer --store "$W/s10" "$W/tree" >/dev/null
done
ten=$(du -sb "$W/s10/objects" | cut -f1)
echo "one tree: $one bytes; ten trees differing by one file: $ten bytes ($(( (ten - one) * 100 / one ))% more)"
kp-write-layer --store "$W/s10" "$W/tree" >/dev/null
cp -a "$W/tree" "$W/tree2"
kp-write-layer --store "$W/s10" "$W/tree2" >/dev/null
same=$(du -sb "$W/s10/objects" | cut -f1)
echo "the same tree written again from a copy: +$(( same - ten )) bytes"

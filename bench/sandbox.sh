#!/bin/sh
# Sandbox start-up, side by side with peers, from one run (issue 5's targets):
#   kp-sandbox (read-only root, and overlay root) vs
#   bwrap --unshare-all --ro-bind ROOTFS / --proc /proc --dev /dev true vs
#   unshare -Urm chroot ROOTFS true, all running `true` on a Debian minbase tree;
#   then ten kp-sandbox started at once vs one (and the same for bwrap: with few
#   cores, ten start-ups are bound by CPU time, not by any wait between them).
# Needs root for debootstrap (the tree is cached in $KP_TEST_CACHE); the
# sandboxes themselves run as the invoking user.
# Usage: sh bench/sandbox.sh   (builds the release binaries first)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p plumbing
BIN="$PWD/target/release"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
ROOTFS=$(fixture_debian_minbase)
W=$(mktemp -d /var/tmp/kp-bench-sandbox.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/upper" "$W/work"
for i in 0 1 2 3 4 5 6 7 8 9; do mkdir -p "$W/u$i" "$W/w$i"; done

KP="$BIN/kp-sandbox"
echo "== one sandbox running true"
hyperfine -N --warmup 20 --runs 300 \
	-n kp-sandbox-ro "$KP --rootfs $ROOTFS -- true" \
	-n kp-sandbox-overlay "$KP --lower $ROOTFS --upper $W/upper --work $W/work -- true" \
	-n bwrap "bwrap --unshare-all --ro-bind $ROOTFS / --proc /proc --dev /dev true" \
	-n unshare-chroot "unshare -Urm chroot $ROOTFS true"

echo "== ten overlay sandboxes at once over the same lower directory, vs one"
cat >"$W/one.sh" <<EOS
$KP --lower $ROOTFS --upper $W/u0 --work $W/w0 -- true
EOS
cat >"$W/ten.sh" <<EOS
for i in 0 1 2 3 4 5 6 7 8 9; do
	$KP --lower $ROOTFS --upper $W/u\$i --work $W/w\$i -- true &
done
wait
EOS
cat >"$W/bwrap-one.sh" <<EOS
bwrap --unshare-all --ro-bind $ROOTFS / --proc /proc --dev /dev true
EOS
cat >"$W/bwrap-ten.sh" <<EOS
for i in 0 1 2 3 4 5 6 7 8 9; do
	bwrap --unshare-all --ro-bind $ROOTFS / --proc /proc --dev /dev true &
done
wait
EOS
hyperfine -N --warmup 10 --runs 100 -n one "sh $W/one.sh" -n ten "sh $W/ten.sh" \
	-n bwrap-one "sh $W/bwrap-one.sh" -n bwrap-ten "sh $W/bwrap-ten.sh"

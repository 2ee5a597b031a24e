#!/bin/sh
# pacman: a build installing three small packages (kp-hello, its dependency
# kp-greet, kp-note with a post_install scriptlet) vs running pacman directly
# in a chroot of the same root (goal: at most 1.1x). The packages, their
# repository (served on 127.0.0.1) and the Arch-style root are the tests'
# fixtures (t/lib-pacman.sh, cached in $KP_TEST_CACHE). Needs root.
# Both sides start from the same state each run: the image already in the
# store and checked out, the last run's environment destroyed and collected
# (karapace), or a fresh overlay over the root (chroot); the repository's
# database not yet synced. The chroot's pacman.conf lacks CheckSpace (a chroot
# shows the host's mounts, which pacman cannot match to its root); the
# build's keeps it.
# Usage: sh bench/packages-pacman.sh [RUNS]   (default 5; builds the release
# binaries first, or uses KP_BENCH_BIN=DIR's as they are)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-5}
if test -z "${KP_BENCH_BIN:-}"; then
	cargo build --release --quiet
fi
BIN=${KP_BENCH_BIN:-$PWD/target/release}
PATH="$BIN:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
TEST_DIRECTORY="$PWD/t"
test_lazy_prereq() { :; }
. t/lib-pacman.sh
W=$(mktemp -d /var/tmp/kp-bench.XXXXXX)
HOME=$W
TRASH_DIRECTORY=$W
TEST_DAEMONS=
export HOME
cleanup() {
	test_daemons_stop
	while umount "$W/r" 2>/dev/null; do :; done
	rm -rf "$W"
}
trap cleanup EXIT

PACMAN_REPOS=$(fixture_pacman_repos)
mkdir "$W/serve"
pacman_serve v1
image_httpd "$W/serve" >/dev/null
trap cleanup EXIT # test_daemon set its own
pacman_image "$W/img" "$HTTPD"
grep -v "^CheckSpace" "$W/img/etc/pacman.conf" >"$W/chroot.conf"
PKGS="kp-hello kp-note"
PAC="pacman --noconfirm --needed --noprogressbar -Sy -- $PKGS"

# The store: the image imported (by name, as a release or an image server's
# build would be: no tarball to hash again) and checked out (shared) by a
# first build.
export KARAPACE_STORE="$W/store"
karapace image import "$W/img.tar" kp-arch >/dev/null
write_manifest "$W/proj" kp-arch $PKGS
karapace build "$W/proj" --name b >/dev/null 2>&1
FRESH="sh -c 'karapace destroy b >/dev/null 2>&1; karapace gc >/dev/null 2>&1; rm -f $W/proj/karapace.lock'"
OVERLAY="sh -c 'umount $W/r 2>/dev/null; rm -rf $W/up $W/wk; mkdir -p $W/up/etc $W/wk $W/r && cp $W/chroot.conf $W/up/etc/pacman.conf && mount -t overlay overlay -o lowerdir=$W/img,upperdir=$W/up,workdir=$W/wk $W/r'"

echo "## machine: $(nproc) cores, $(uname -r); pacman $(pacman --version | sed -n 's/.*Pacman v\([^ ]*\).*/\1/p')"
echo
hyperfine -N --runs "$RUNS" --export-json "$W/h.json" --export-markdown "$W/h.md" \
	--prepare "$FRESH" \
	-n "karapace build (3 packages)" "karapace build $W/proj --name b" \
	--prepare "$OVERLAY" \
	-n "pacman in a chroot" "chroot $W/r $PAC" >/dev/null
cat "$W/h.md"
python3 - "$W/h.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
kp, ch = r["karapace build (3 packages)"], r["pacman in a chroot"]
print(f"\nratio build / chroot: {kp / ch:.2f}x (goal <= 1.1x)")
PY

echo
echo "## system calls (strace -c -f), one run each"
eval "$FRESH"
strace -f -c -o "$W/kp.strace" karapace build "$W/proj" --name b >/dev/null 2>&1
eval "$OVERLAY"
strace -f -c -o "$W/ch.strace" chroot "$W/r" $PAC >/dev/null 2>&1
echo "| | calls | errors |"
echo "|---|---|---|"
for s in kp ch; do
	awk -v n="$s" '/^100.00|total/ {print "| " (n == "kp" ? "karapace build" : "pacman in a chroot") " | " $(NF-2) " | " $(NF-1) " |"}' "$W/$s.strace"
done

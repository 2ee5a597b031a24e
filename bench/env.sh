#!/bin/sh
# Environment benchmarks (issue 6's targets), side by side in one run:
#   karapace build of a manifest with no packages, image already imported;
#   karapace exec ENV -- true vs bwrap and unshare+chroot on the same rootfs;
#   exec into an environment already running a command (joins its overlay) vs cold;
#   disk added by ten environments built from the same base.
# Needs root (debootstrap); the Debian minbase tree is cached in $KP_TEST_CACHE.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
PATH="$PWD/target/release:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
ROOTFS=$(fixture_debian_minbase)

W=$(mktemp -d /var/tmp/kp-bench-env.XXXXXX)
trap 'rm -rf "$W"' EXIT
export KARAPACE_STORE="$W/store"
karapace init >/dev/null
karapace image import "$ROOTFS" bookworm >/dev/null
manifest() { # DIR [extra TOML]
	mkdir -p "$1"
	printf 'manifest_version = 1\n[base]\nimage = "bookworm"\n%s\n' "${2:-}" >"$1/karapace.toml"
}
manifest "$W/p"
karapace build "$W/p" --name e >/dev/null

echo "## build, no packages, image imported (a new environment each run)"
hyperfine -N --warmup 2 --runs 20 --export-markdown "$W/b.md" \
	--prepare "karapace destroy e" "karapace build $W/p --name e" >/dev/null
cat "$W/b.md"
echo
echo "## exec ENV -- true vs bwrap vs unshare+chroot (same Debian minbase rootfs)"
hyperfine -N --warmup 5 --runs 50 --export-markdown "$W/x.md" \
	"karapace exec e -- /bin/true" \
	"kp-sandbox --rootfs $ROOTFS -- /bin/true" \
	"bwrap --unshare-all --ro-bind $ROOTFS / --proc /proc --dev /dev /bin/true" \
	"unshare -Urm chroot $ROOTFS /bin/true" >/dev/null
cat "$W/x.md"
echo
echo "## exec ENV -- true, cold vs while another command runs in ENV (it joins that overlay)"
hyperfine -N --warmup 5 --runs 50 --export-markdown "$W/j.md" "karapace exec e -- /bin/true" >/dev/null
karapace exec e -- sleep 600 &
holder=$!
sleep 1
hyperfine -N --warmup 5 --runs 50 --export-markdown "$W/j2.md" "karapace exec e -- /bin/true" >/dev/null
kill "$holder"; wait "$holder" 2>/dev/null || true
sed -n 1,2p "$W/j.md"; sed -n 3p "$W/j.md" | sed "s/^| \`/| cold: \`/"; sed -n 3p "$W/j2.md" | sed "s/^| \`/| joining: \`/"
echo
echo "## ten environments on one base"
karapace exec e -- true
before=$(du -sb "$W/store" | cut -f1)
for i in 0 1 2 3 4 5 6 7 8 9; do
	manifest "$W/m$i" "[mounts]
m = \"/tmp:/mnt/$i:ro\""
	karapace build "$W/m$i" >/dev/null
	karapace exec "$(karapace --json build "$W/m$i" | sed 's/.*"env_id":"\([0-9a-f]*\)".*/\1/')" -- true
done
after=$(du -sb "$W/store" | cut -f1)
echo "store before: $before bytes; after ten more environments, each run once: $after bytes (+$(( (after - before) / 1024 )) KiB; the base is $(du -sh "$ROOTFS" | cut -f1))"

# t/lib-env.sh: environments for tests: a Debian image whose only apt source is
# a local repository (t/lib-fixtures.sh), and manifests over it.

. "$TEST_DIRECTORY/lib-fixtures.sh"

test_lazy_prereq DEBIAN_IMAGE '
	test "$(id -u)" = 0 && command -v debootstrap && command -v dpkg-scanpackages &&
	fixture_debian_image >/dev/null &&
	unshare --user --map-root-user --mount true
'

# use_debian_image: skips the whole script unless DEBIAN_IMAGE holds; otherwise
# points KARAPACE_STORE into the trash directory and sets IMAGE to the fixture.
use_debian_image() {
	if ! test_have_prereq DEBIAN_IMAGE; then
		test_skip_all "needs root, debootstrap, dpkg-dev and user namespaces (prereq DEBIAN_IMAGE)"
	fi
	KARAPACE_STORE="$HOME/store"
	export KARAPACE_STORE
	IMAGE=$(fixture_debian_image)
}

test_lazy_prereq BUSYBOX_SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'

# use_busybox_sandbox: skips the whole script unless BUSYBOX_SANDBOX holds (user
# namespaces, busybox-static for fixture_busybox_rootfs); otherwise points
# KARAPACE_STORE into the trash directory.
use_busybox_sandbox() {
	test_have_prereq BUSYBOX_SANDBOX || test_skip_all "needs user namespaces and busybox-static"
	KARAPACE_STORE="$HOME/store"
	export KARAPACE_STORE
}

# write_manifest DIR IMAGE [PACKAGES...]: a manifest in DIR/karapace.toml.
write_manifest() {
	dir=$1 image=$2
	shift 2
	mkdir -p "$dir" &&
	{
		echo "manifest_version = 1"
		echo "[base]"
		echo "image = \"$image\""
		echo "[system]"
		printf "packages = ["
		sep=
		for p in "$@"; do printf '%s"%s"' "$sep" "$p"; sep=", "; done
		echo "]"
	} >"$dir/karapace.toml"
}

# store_state STORE: every path of the store with its type and mode, and for
# files their size and modification time, so any change shows. Except: a
# build from an image tarball imports it again first (the same objects; its
# record under meta/images and refs/images is rewritten, through tmp/), which
# is the image's doing and happens before the manager is known.
# store_unchanged: state.after has nothing state.before lacks, and lacks nothing
# of it but scratch left under tmp/ by an earlier build (every build sweeps it
# first).
store_state() {
	find "$1" \( -type d -o -path "$1/meta/images/*" -o -path "$1/refs/images/*" \) -printf '%y %m %P\n' -o \
		-printf '%y %m %s %T@ %P\n' | sort
}
store_unchanged() {
	comm -13 state.before state.after >added &&
	test_must_be_empty added &&
	{ comm -23 state.before state.after | grep -v "^[a-z] [0-9]* tmp/" >removed; true; } &&
	test_must_be_empty removed
}

# bench/lib-store.sh: a store that grows cheaply, for bench/scale.sh and
# bench/tui.sh. Sourced with W set (a scratch directory); sets KARAPACE_STORE,
# BASE (the busybox image's layer) and ID (environment `e`, built from a
# manifest over it), and defines fill.
#
# The other environments are recorded by the plumbing `karapace pull` uses:
# for each, `kp-resolve --image-digest` locks a manifest that differs by one
# mount (so each has its own env_id) and `kp-record-env LOCK BASE` records it
# (origin remote, no name, no packages). Every record is written by Karapace.
test_lazy_prereq() { :; }
. t/lib-fixtures.sh

export KARAPACE_STORE="$W/store"
karapace init >/dev/null
fixture_busybox_rootfs "$W/rootfs"
BASE=$(karapace image import "$W/rootfs" bb | awk '{print $2}')
mkdir -p "$W/p" "$W/f"
printf 'manifest_version = 1\n[base]\nimage = "bb"\n' >"$W/p/karapace.toml"
ID=$(karapace build "$W/p" --name e 2>/dev/null)

# fill N: records environments until the store holds N.
have=1
fill() {
	while [ "$have" -lt "$1" ]; do
		printf 'manifest_version = 1\n[base]\nimage = "bb"\n[mounts]\nm = "/tmp:/mnt/%s:ro"\n' "$have" >"$W/f/karapace.toml"
		kp-resolve --image-digest "$BASE" "$W/f" >/dev/null
		kp-record-env "$W/f/karapace.lock" "$BASE" >/dev/null
		have=$((have + 1))
	done
}

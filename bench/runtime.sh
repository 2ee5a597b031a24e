#!/bin/sh
# Start-up cost of each backend (issue 19's numbers), side by side in one run,
# all running /bin/true on the same Debian minbase tree:
#   karapace exec ENV -- true, native backend;
#   karapace exec ENV -- true, oci backend (runtime = "runc", no probe);
#   kp-sandbox --backend oci:runc --rootfs ROOTFS -- true (the backend alone);
#   runc run of a bare bundle over ROOTFS (rootless, in a user namespace of
#   its own, as the oci backend runs it; the goal: the oci backend at most
#   1.2x this);
#   bwrap --unshare-all --ro-bind ROOTFS / --proc /proc --dev /dev true;
#   karapace quick bookworm -- true, the second time (the reuse path: the
#   goal, at most 50 ms more than exec).
# Then the ratios (goals: the oci backend at most 1.2x bare runc), the CPU
# time of each, and the system calls of quick's reuse path next to exec's.
# Needs root (debootstrap) and runc; the tree is cached in $KP_TEST_CACHE.
# Usage: sh bench/runtime.sh   (builds the release binaries first)
#   KP_BENCH_RUNS=N       hyperfine runs per command (default 50)
#   KP_BENCH_PROFILE=debug  use target/debug as built (no release build)
#   KP_BENCH_DIR=DIR      where the store and bundle go (default /var/tmp)
set -eu
cd "$(dirname "$0")/.."
: "${KP_BENCH_PROFILE:=release}" "${KP_BENCH_RUNS:=50}" "${KP_BENCH_DIR:=/var/tmp}"
case $KP_BENCH_PROFILE in
release) cargo build --release --quiet ;;
debug) ;;
*) echo "KP_BENCH_PROFILE is release or debug" >&2; exit 64 ;;
esac
PATH="$PWD/target/$KP_BENCH_PROFILE:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
ROOTFS=$(fixture_debian_minbase)
RUNC=$(command -v runc || echo /usr/sbin/runc)

W=$(mktemp -d "$KP_BENCH_DIR/kp-bench-runtime.XXXXXX")
trap 'rm -rf "$W"' EXIT
export KARAPACE_STORE="$W/store"
mkdir -p "$W/n" "$W/o"
head='manifest_version = 1
[base]
image = "bookworm"'
printf '%s\n' "$head" >"$W/n/karapace.toml"
printf '%s\n[runtime]\nbackend = "oci"\nruntime = "runc"\n' "$head" >"$W/o/karapace.toml"
karapace init >/dev/null && karapace image import "$ROOTFS" bookworm >/dev/null
karapace build "$W/n" --name native >/dev/null && karapace build "$W/o" --name oci >/dev/null
(cd "$W" && karapace quick bookworm -- /bin/true 2>/dev/null)

# The bare bundle: runc's own rootless spec over the same tree, `true`,
# no terminal; run from a user namespace as the oci backend runs runc.
mkdir -p "$W/bundle"
(cd "$W/bundle" && "$RUNC" spec --rootless)
python3 - "$W/bundle/config.json" "$ROOTFS" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
json.dump(c, open(path, "w"))
PY

echo "## exec ENV -- true through each backend, next to plain runc and bwrap ($KP_BENCH_PROFILE build)"
uptime
hyperfine -N --warmup 5 --runs "$KP_BENCH_RUNS" --export-markdown "$W/r.md" --export-json "$W/r.json" \
	"karapace exec native -- /bin/true" \
	"karapace exec oci -- /bin/true" \
	"kp-sandbox --backend oci:runc --rootfs $ROOTFS -- /bin/true" \
	"unshare -Urm $RUNC --root $W/state run --bundle $W/bundle bare" \
	"bwrap --unshare-all --ro-bind $ROOTFS / --proc /proc --dev /dev /bin/true" \
	"karapace quick bookworm -- /bin/true" >/dev/null
cat "$W/r.md"
echo
echo "## CPU time (user + system) per run: what load on the machine does not inflate"
python3 - "$W/r.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%7.1f ms  %s" % ((r["user"] + r["system"]) * 1000, r["command"]))
PY
echo
echo "## Ratios (means)"
python3 - "$W/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
m = [x["mean"] for x in r]
native, oci, sandbox_oci, runc, bwrap, quick = m
print("%5.2fx  karapace exec (oci) / bare runc run          (goal <= 1.2x)" % (oci / runc))
print("%5.2fx  kp-sandbox --backend oci:runc / bare runc run" % (sandbox_oci / runc))
print("%5.2fx  karapace exec (native) / bwrap --unshare-all" % (native / bwrap))
print("%+6.1f ms karapace quick (reused) - karapace exec (native) (goal <= +50 ms)" % ((quick - native) * 1000))
PY
if command -v strace >/dev/null; then
	echo
	echo "## System calls, all processes (strace -c -f): quick's reuse path next to exec"
	for c in "karapace exec native -- /bin/true" "karapace quick bookworm -- /bin/true"; do
		(cd "$W" && strace -f -c -o "$W/strace.out" $c)
		printf '%6s calls  %s\n' "$(awk '$NF == "total" {print $4}' "$W/strace.out")" "$c"
	done
fi

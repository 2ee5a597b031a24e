#!/bin/sh
# Drift benchmarks (issue 7's targets), on a writable layer holding one 200 MB
# file and 5000 small files, over a busybox base:
#   commit (time, peak RSS), commit with nothing changed, restore (hash cache
#   warm, and back to back), store growth
#   of ten commits that each change one small file, verify-store vs b3sum.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
PATH="$PWD/target/release:$PATH"
test_lazy_prereq() { :; }
. t/lib-fixtures.sh

W=$(mktemp -d /var/tmp/kp-bench-drift.XXXXXX)
trap 'rm -rf "$W"' EXIT
export KARAPACE_STORE="$W/store"
fixture_busybox_rootfs "$W/p/rootfs"
printf 'manifest_version = 1\n[base]\nimage = "./rootfs"\n' >"$W/p/karapace.toml"
karapace build "$W/p" --name d >/dev/null 2>&1
karapace exec d -- sh -c '
	mkdir -p /data/small && i=0 &&
	while test $i -lt 5000; do echo "small file $i" >/data/small/f$i; i=$((i + 1)); done &&
	dd if=/dev/urandom of=/data/big bs=1M count=200 2>/dev/null'
sync

rss() { # peak RSS in KiB of a command
	/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
}
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

echo "## commit: 200 MB file + 5000 small files, first commit (cold store)"
t0=$(now); peak=$(rss karapace commit d); t1=$(now)
echo "commit: $(secs "$t0" "$t1") s, peak RSS $((peak / 1024)) MiB"
echo
echo "## commit with nothing changed (files left alone > 2 s: hash cache warm)"
sleep 2.5
karapace commit d >/dev/null
hyperfine -N --warmup 2 --runs 10 "karapace commit d" 2>/dev/null | sed -n '/Time/p'
echo
snap=$(karapace --json snapshots d | sed 's/.*"snapshot":"\([0-9a-f]*\)".*/\1/')
echo "## restore, after the writable layer was left alone > 2 s and committed (hash cache warm)"
for i in 1 2 3; do
	sleep 2.5
	karapace commit d >/dev/null
	t0=$(now); karapace restore d "$snap" >/dev/null; t1=$(now)
	echo "restore: $(secs "$t0" "$t1") s"
done
echo "## restore back to back (each restore relinks every file, so the next hashes all again)"
hyperfine -N --warmup 1 --runs 5 "karapace restore d $snap" 2>/dev/null | sed -n '/Time/p'
echo
echo "## ten commits, each changing one small file"
before=$(du -sb "$W/store/objects" | cut -f1)
for i in 0 1 2 3 4 5 6 7 8 9; do
	karapace exec d -- sh -c "echo change $i >>/data/small/f$i"
	karapace commit d >/dev/null
done
after=$(du -sb "$W/store/objects" | cut -f1)
upper=$(du -sb "$W/store/envs" | cut -f1)
echo "objects grew by $((after - before)) bytes for ten commits; one copy of the writable layer is $upper bytes ($(echo "scale=3; 100 * ($after - $before) / $upper" | bc)%)"
echo
echo "## verify-store vs b3sum over the same objects"
bytes=$(du -sb "$W/store/objects" | cut -f1)
hyperfine -N --warmup 1 --runs 5 --export-markdown "$W/v.md" \
	"karapace verify-store" \
	"sh -c 'find $W/store/objects -type f -print0 | xargs -0 b3sum >/dev/null'" >/dev/null
cat "$W/v.md"
echo "($((bytes / 1048576)) MiB of objects)"

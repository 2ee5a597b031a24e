#!/bin/sh
# Scale benchmarks (issue 21's targets), one table from one run:
#   in stores of 1, 100, 1,000 and 10,000 environments: exec true by name and
#   by env_id, inspect, a cached build, commit of an unchanged environment,
#   list (from its summary, and from the records with the summary saved
#   again), gc --dry-run (its throughput: objects and records it examined per
#   second); and the system calls of a list (strace -f -c), per environment;
#   first commits of 5,000 and 50,000 small files (kp-write-layer into a fresh
#   store, the path `karapace commit` takes) next to `ostree commit` of the
#   same tree; the system calls of the 5,000-file write, per file.
# System call counts are the kernel's, whatever the load; times are not.
#
# How the store grows cheaply (bench/lib-store.sh): the measured environment
# `e` is built with `karapace build --name e` from a busybox image; the others
# are recorded by the plumbing `karapace pull` uses. None is written by hand.
#
# Needs root or a rootless setup that can run `karapace exec` (busybox-static
# for the image, b3sum, hyperfine; ostree for its column, skipped when absent).
# Usage: sh bench/scale.sh [MAX [envs|files]]   (MAX: largest store, default
# 10000; envs or files runs only that half)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p plumbing -p porcelain
PATH="$PWD/target/release:$PATH"
MAX=${1:-10000}
PART=${2:-all}
W=$(mktemp -d /var/tmp/kp-bench-scale.XXXXXX)
trap 'rm -rf "$W"' EXIT
. bench/lib-store.sh
karapace exec e -- true

mean_ms() { # hyperfine JSON -> mean in ms
	sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' "$1" | head -n 1 | awk '{printf "%.1f", $1 * 1000}'
}

COLS=""
[ "$PART" != files ] || MAX=0
for n in 1 100 1000 10000; do
	[ "$n" -le "$MAX" ] || break
	fill "$n"
	COLS="$COLS $n"
	i=0
	for cmd in "karapace exec e -- true" "karapace exec $ID -- true" "karapace inspect e" \
		"karapace build $W/p --name e" "karapace commit e" "karapace list" "karapace gc --dry-run"; do
		i=$((i + 1))
		# list saves its summary only once meta/envs/ has been left alone
		# for two seconds (docs/store-format.md, "Listing").
		[ "$cmd" != "karapace list" ] || { sleep 3 && karapace list >/dev/null; }
		hyperfine -N --warmup 2 --runs 10 --export-json "$W/r.json" "$cmd" >/dev/null 2>&1
		echo "$(mean_ms "$W/r.json")" >>"$W/col.$i"
	done
	sleep 3
	hyperfine -N --warmup 1 --runs 10 --export-json "$W/r.json" \
		--prepare "rm -f $W/store/cache/envs-list" "karapace list" >/dev/null 2>&1
	echo "$(mean_ms "$W/r.json")" >>"$W/col.9"
	if command -v strace >/dev/null; then
		sleep 3 && karapace list >/dev/null
		strace -f -c -o "$W/strace" karapace list >/dev/null
		a=$(awk '$NF == "total" {print $(NF-2)}' "$W/strace")
		rm -f "$W/store/cache/envs-list"
		strace -f -c -o "$W/strace" karapace list >/dev/null
		b=$(awk '$NF == "total" {print $(NF-2)}' "$W/strace")
		echo "| $n | $a | $b | $(echo "$b $n" | awk '{printf "%.1f", $1 / $2}') |" >>"$W/calls"
	fi
	start=$(date +%s%N)
	karapace gc --dry-run >/dev/null
	end=$(date +%s%N)
	objs=$(find "$W/store/objects" -type f | wc -l)
	echo "$(( (objs + n) * 1000000000 / (end - start + 1) ))/s" >>"$W/col.8"
done

if [ -n "$COLS" ]; then
echo "## per-environment commands, mean ms (hyperfine -N, 10 runs), by environments in the store"
printf '| command |'; for n in $COLS; do printf ' %s |' "$n"; done; echo
printf '|---|'; for n in $COLS; do printf -- '---:|'; done; echo
i=0
for label in "exec e -- true (name)" "exec ENV_ID -- true" "inspect e" "build (cached)" \
	"commit e (unchanged)" "list" "gc --dry-run" "gc --dry-run throughput (objects+records/s)" \
	"list (no summary: records read, summary saved)"; do
	i=$((i + 1))
	printf '| %s |' "$label"; tr '\n' '|' <"$W/col.$i" | sed 's/|/ | /g; s/^/ /'; echo
done
if [ -f "$W/calls" ]; then
	echo
	echo "## system calls of one list (strace -f -c), by environments in the store"
	echo "| environments | from the summary | from the records | per environment, from the records |"
	echo "|---:|---:|---:|---:|"
	cat "$W/calls"
fi
fi
[ "$PART" != envs ] || exit 0

echo
echo "## first commit of N small files (fresh store each run), mean s"
echo "| files | kp-write-layer | ostree commit (bare-user) |"
echo "|---:|---:|---:|"
for files in 5000 50000; do
	T="$W/tree$files"
	mkdir -p "$T"
	(cd "$T" && j=0 && while [ "$j" -lt "$files" ]; do
		d=$((j / 1000)); mkdir -p "d$d"; echo "file $j" >"d$d/f$j"; j=$((j + 1))
	done)
	hyperfine -N --runs 3 --export-json "$W/w.json" \
		--prepare "sh -c 'rm -rf $W/s2 && kp-init --store $W/s2 >/dev/null && sync'" \
		"kp-write-layer --store $W/s2 $T" >/dev/null 2>&1
	kp=$(mean_ms "$W/w.json" | awk '{printf "%.2f", $1 / 1000}')
	if command -v ostree >/dev/null; then
		hyperfine -N --runs 3 --export-json "$W/o.json" \
			--prepare "sh -c 'rm -rf $W/o && ostree --repo=$W/o init --mode=bare-user && sync'" \
			"ostree --repo=$W/o commit --branch=b --tree=dir=$T" >/dev/null 2>&1
		os=$(mean_ms "$W/o.json" | awk '{printf "%.2f", $1 / 1000}')
	else
		os="(ostree not installed)"
	fi
	echo "| $files | $kp | $os |"
	if [ "$files" = 5000 ] && command -v strace >/dev/null; then
		rm -rf "$W/s2" && kp-init --store "$W/s2" >/dev/null
		calls=$(strace -f -c -o "$W/strace" kp-write-layer --store "$W/s2" "$T" >/dev/null 2>&1 && awk '$NF == "total" {print $(NF-2)}' "$W/strace")
		echo "(5,000 files: $calls syscalls, $((calls / files)) per file; strace -f -c)" >"$W/sc"
	fi
	rm -rf "$T"
done
cat "$W/sc" 2>/dev/null || true

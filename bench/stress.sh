#!/bin/sh
# SIGKILL stress (issue 12, "SIGKILL anywhere loses nothing"): kills build,
# commit, restore, gc, destroy and rename at random points, KILLS times in all
# (default 200, spread evenly over the six), and after each run, killed or not:
#   - `verify-store` is clean;
#   - what the command worked on is fully old or fully new (a build's
#     environment runs with its content or does not exist; a commit's snapshot
#     list has the new snapshot or not, the writable layer unchanged; a
#     restore's writable layer is the old one or the snapshot's; a destroyed
#     environment still runs or is gone; a renamed one has the old name or the
#     new one, never both or neither);
#   - a rerun of the killed command succeeds (when it has anything left to do)
#     and gives the new state; a rerun of a build or gc leaves `tmp/` empty.
# A kill lands at a uniformly random point of the command's run time (measured
# once, unkilled, then narrowed after each run that ended before its kill); the
# checks start once every process of the killed command is gone. Prints per command how many runs were
# killed, then the totals; exits 1 at the first broken promise, naming it.
#
#   bench/stress.sh [KILLS]               release build, scratch under /var/tmp
#   KP_STRESS_NO_BUILD=1 stress.sh KILLS  the karapace on PATH (t/t6600-stress.sh)
#   KP_STRESS_SEED=N                      repeat a run (the seed is printed)
set -u
KILLS=${1:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if test -z "${KP_STRESS_NO_BUILD:-}"; then
	(cd "$ROOT" && cargo build --release --quiet) || exit 1
	PATH="$ROOT/target/release:$PATH"
fi
test_lazy_prereq() { :; }
TEST_DIRECTORY=$ROOT/t
. "$ROOT/t/lib-fixtures.sh"

W=$(mktemp -d "${TMPDIR:-/var/tmp}/kp-stress.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
KARAPACE_STORE="$W/store"
export KARAPACE_STORE
kills=0
SEED=${KP_STRESS_SEED:-$(date +%s)}
RANDS=0

fail() {
	echo "FAILED (seed $SEED, after $kills kill(s)): $*" >&2
	exit 1
}
# rand MAX: a uniform random decimal in (0, MAX], the next of a seeded sequence.
awk -v s="$SEED" -v n=$((KILLS * 4 + 64)) 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%.4f\n", rand() }' >rands
rand() {
	RANDS=$((RANDS + 1))
	echo "$(sed -n "${RANDS}p" rands) * $1 + 0.001" | bc
}
now() { date +%s.%N; }
snapshots() {
	karapace --json snapshots "$1" | sed 's/"snapshot":"\([0-9a-f]*\)"/\n\1\n/g' | grep '^[0-9a-f]\{64\}$'
}
env_id() {
	karapace --json inspect "$1" 2>/dev/null | sed 's/.*"env_id":"\([0-9a-f]*\)".*/\1/'
}
# leftovers WHAT: a build or gc sweeps what a crash left in tmp/.
leftovers() {
	test -z "$(ls store/tmp)" || { ls -l store/tmp >&2; fail "$1 left files in tmp/"; }
}
sound() {
	karapace verify-store >verify.out 2>&1 || { cat verify.out >&2; fail "verify-store after $1"; }
}

# --- the world: x (commit, restore, gc work on it), and builds of b ---
fixture_busybox_rootfs p/rootfs || exit 1
printf 'manifest_version = 1\n[base]\nimage = "./rootfs"\n' >p/karapace.toml
karapace build p --name x >/dev/null 2>&1 || fail "setup build"
karapace exec x -- sh -c '
	mkdir -p /data && i=0 &&
	while test $i -lt 200; do echo file $i >/data/f$i; i=$((i + 1)); done &&
	dd if=/dev/urandom of=/data/big bs=1M count=2 2>/dev/null' || fail "setup exec"
karapace commit x >/dev/null 2>&1 || fail "setup commit"
SNAP=$(snapshots x | tail -n 1)
karapace diff x >diff.snap
fixture_busybox_rootfs b/rootfs || exit 1
cp p/karapace.toml b/
n=0
victim=

# Each command: prep_C (state before), args_C (the karapace command), check_C (after it,
# killed or not: old or new), rerun_C (the rerun, then the new state).
prep_build() { n=$((n + 1)); echo "$n" >b/rootfs/marker; rm -f b/karapace.lock; }
args_build() { echo build b --name "b$n"; }
check_build() {
	if karapace inspect "b$n" >/dev/null 2>&1; then
		test "$(karapace exec "b$n" -- cat /marker)" = "$n" || fail "build b$n: recorded but not its content"
	fi
}
rerun_build() {
	karapace build b --name "b$n" >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of build b$n"; }
	test "$(karapace exec "b$n" -- cat /marker)" = "$n" || fail "build b$n: rerun does not run"
	victim="b$n"
	leftovers "rerun of build"
}

prep_commit() {
	n=$((n + 1))
	karapace exec x -- sh -c "echo $n >/data/c; dd if=/dev/urandom of=/data/big bs=256k count=4 2>/dev/null" || fail "exec before commit"
	snapshots x >snaps.before
	karapace diff x >diff.before
}
args_commit() { echo commit x; }
check_commit() {
	snapshots x >snaps.after
	karapace diff x >diff.after
	cmp -s diff.before diff.after || fail "commit changed the writable layer"
	test "$(wc -l <snaps.after)" -le "$(($(wc -l <snaps.before) + 1))" || fail "commit recorded more than one snapshot"
	head -n "$(wc -l <snaps.before)" snaps.after | cmp -s - snaps.before || fail "commit lost a snapshot"
}
rerun_commit() {
	karapace commit x >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of commit"; }
	test "$(snapshots x | wc -l)" = "$(($(wc -l <snaps.before) + 1))" || fail "commit: rerun did not record one snapshot"
	last=$(snapshots x | tail -n 1)
	karapace restore x "$last" >/dev/null 2>&1 || fail "the new snapshot does not restore"
}

prep_restore() {
	n=$((n + 1))
	karapace exec x -- sh -c "echo $n >/data/r; rm -f /data/f1$((n % 10))" || fail "exec before restore"
	karapace diff x >diff.before
}
args_restore() { echo restore x "$SNAP"; }
check_restore() {
	karapace diff x >diff.after
	cmp -s diff.after diff.before || cmp -s diff.after diff.snap || fail "restore left neither the old nor the snapshot's writable layer"
	! ls store/envs/*/ | grep -q 'upper\.\(new\|old\)' || fail "restore left upper.new or upper.old"
}
rerun_restore() {
	karapace restore x "$SNAP" >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of restore"; }
	karapace diff x | cmp -s - diff.snap || fail "restore: rerun does not give the snapshot"
}

prep_gc() {
	n=$((n + 1))
	mkdir -p junk && dd if=/dev/urandom of=junk/a bs=64k count=4 2>/dev/null && echo "$n" >junk/b &&
		kp-write-layer junk >/dev/null || fail "garbage for gc"
	karapace exec x -- sh -c "echo $n >/data/g" && karapace commit x >/dev/null || fail "commit before gc"
}
args_gc() { echo gc; }
check_gc() {
	for s in $(snapshots x); do
		kp-cat-object -t "$s" >/dev/null 2>&1 || fail "gc removed snapshot $s"
	done
	karapace exec x -- true || fail "x does not run after gc"
}
rerun_gc() {
	karapace gc >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of gc"; }
	test -z "$(karapace gc --dry-run 2>&1 | grep -v '^would remove 0 objects')" || fail "gc: rerun left garbage"
	leftovers "rerun of gc"
	karapace restore x "$(snapshots x | head -n 1)" >/dev/null 2>&1 || fail "a snapshot does not restore after gc"
}

prep_destroy() {
	if test -z "$victim"; then
		prep_build
		karapace $(args_build) >/dev/null 2>&1 || fail "build of a victim"
		victim="b$n"
	fi
	vid=$(env_id "$victim")
}
args_destroy() { echo destroy "$victim"; }
check_destroy() {
	if karapace inspect "$victim" >/dev/null 2>&1; then
		karapace exec "$victim" -- true || fail "destroy of $victim: still there but does not run"
	fi
}
rerun_destroy() {
	if karapace inspect "$victim" >/dev/null 2>&1; then
		karapace destroy "$victim" >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of destroy"; }
	fi
	! karapace inspect "$victim" >/dev/null 2>&1 || fail "destroy: $victim is still there"
	victim=
}

prep_rename() {
	n=$((n + 1))
	from=x
	to=r$n
}
args_rename() { echo rename "$from" "$to"; }
check_rename() {
	a=$(env_id "$from")
	b=$(env_id "$to")
	test -n "$a$b" || fail "rename $from $to: neither name resolves"
	test -z "$a" || test -z "$b" || fail "rename $from $to: both names resolve"
}
rerun_rename() {
	if test -n "$(env_id "$from")"; then
		karapace rename "$from" "$to" >/dev/null 2>rerun.err || { cat rerun.err >&2; fail "rerun of rename"; }
	fi
	test -n "$(env_id "$to")" || fail "rename: $to does not resolve"
	# x keeps its name for the other commands
	karapace rename "$to" x >/dev/null || fail "rename back to x"
}

COMMANDS="build commit restore gc destroy rename"
# Normal run times, unkilled.
for c in $COMMANDS; do
	"prep_$c"
	t0=$(now)
	karapace $("args_$c") >/dev/null 2>run.err || { cat run.err >&2; fail "unkilled $c"; }
	t1=$(now)
	eval "dur_$c=$(echo "$t1 - $t0" | bc)"
	"check_$c"
	"rerun_$c"
	sound "unkilled $c"
done

kills=0
runs=0
start=$(now)
per=$(((KILLS + 5) / 6))
for c in $COMMANDS; do eval "killed_$c=0 runs_$c=0"; done
while test "$kills" -lt "$KILLS" && test "$runs" -lt $((KILLS * 4)); do
	for c in $COMMANDS; do
		test "$kills" -lt "$KILLS" || break
		eval "k=\$killed_$c"
		test "$k" -lt "$per" || continue
		"prep_$c"
		eval "d=\$dur_$c"
		d=$(rand "$d")
		timeout -s KILL "$d" karapace $("args_$c") >/dev/null 2>run.err &
		tpid=$!
		wait "$tpid"
		rc=$?
		# timeout kills its process group; a child in the kernel (an fsync)
		# dies when it returns from there: the checks start after.
		while pgrep -g "$tpid" >/dev/null; do sleep 0.01; done
		runs=$((runs + 1))
		eval "runs_$c=\$((runs_$c + 1))"
		# The kill window follows the command's run time: narrower after a
		# run that ended first, a little wider after a kill.
		case $rc in
		137)
			kills=$((kills + 1))
			eval "killed_$c=\$((killed_$c + 1)) dur_$c=\$(echo \"\$dur_$c * 1.1\" | bc)"
			;;
		0) eval "dur_$c=\$(echo \"\$dur_$c * 0.6\" | bc)" ;;
		*) cat run.err >&2; fail "$c exited $rc" ;;
		esac
		sound "$c killed at ${d}s"
		"check_$c"
		"rerun_$c"
	done
done
sound "the last rerun"
end=$(now)

echo "SIGKILL stress, seed $SEED: $kills kill(s) in $runs run(s), $(echo "$end - $start" | bc) s"
for c in $COMMANDS; do
	eval "echo \"  $c: killed \$killed_$c of \$runs_$c run(s), kill window at the end \$dur_$c s\""
done
echo "after every run: verify-store clean, old or new state, rerun succeeded"
test "$kills" -ge "$KILLS" || { echo "only $kills kill(s) of $KILLS" >&2; exit 1; }

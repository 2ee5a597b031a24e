#!/bin/sh
test_description='SIGKILL stress, short form of bench/stress.sh: build, commit, restore, gc, destroy and rename killed at random points lose nothing'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox && command -v bc'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces, busybox-static and bc"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_expect_success 'a young temporary file whose writer is gone goes at the next gc' '
	karapace init >/dev/null &&
	echo partial >store/tmp/kp.small-4194305.abcdef &&
	karapace gc >/dev/null 2>&1 &&
	test_path_is_missing store/tmp/kp.small-4194305.abcdef
'

test_expect_success 'a young temporary file whose writer runs stays' '
	sleep 30 & pid=$! &&
	echo partial >store/tmp/kp.small-$pid.abcdef &&
	karapace gc >/dev/null 2>&1 &&
	kill $pid &&
	test_path_is_file store/tmp/kp.small-$pid.abcdef &&
	rm store/tmp/kp.small-$pid.abcdef
'

test_expect_success 'a temporary file stays while its writer holds its lock, and goes once nobody does, whatever pid its name has' '
	# Our own pid in both names: a live (or reused) pid keeps nothing.
	flock -o store/tmp/kp.small-$$.l.held sleep 30 & locker=$! &&
	echo partial >store/tmp/kp.small-$$.l.free &&
	i=0 && while ! test -e store/tmp/kp.small-$$.l.held && test $i -lt 100; do sleep 0.1; i=$((i+1)); done &&
	karapace gc >/dev/null 2>&1 &&
	test_path_is_missing store/tmp/kp.small-$$.l.free &&
	test_path_is_file store/tmp/kp.small-$$.l.held &&
	kill $locker && wait $locker;
	karapace gc >/dev/null 2>&1 &&
	test_path_is_missing store/tmp/kp.small-$$.l.held
'

test_expect_success '6 kills, one per command: verify-store clean, old or new state, reruns succeed' '
	KP_STRESS_NO_BUILD=1 TMPDIR="$PWD" sh "$TEST_DIRECTORY/../bench/stress.sh" 6 >out 2>err || {
		cat out err >&4; false; } &&
	grep "^SIGKILL stress, seed [0-9]*: 6 kill(s)" out
'

test_done

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

test_expect_success '6 kills, one per command: verify-store clean, old or new state, reruns succeed' '
	KP_STRESS_NO_BUILD=1 TMPDIR="$PWD" sh "$TEST_DIRECTORY/../bench/stress.sh" 6 >out 2>err || {
		cat out err >&4; false; } &&
	grep "^SIGKILL stress, seed [0-9]*: 6 kill(s)" out
'

test_done

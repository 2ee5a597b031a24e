#!/bin/sh
test_description='crash safety: build, commit, restore and gc SIGKILLed at many points leave a sound store and a running environment'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# Kill delays in seconds, from before the store is opened to after the end.
DELAYS="0.001 0.005 0.01 0.02 0.03 0.05 0.08 0.12 0.2 0.3 0.5"

# sound: the store verifies and the environment still runs.
sound() {
	karapace verify-store >problems 2>&1 || { cat problems >&4; return 1; }
	karapace exec x -- true
}

test_expect_success 'setup: an environment with a large writable layer and a snapshot' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs &&
	karapace build proj --name x >/dev/null &&
	karapace exec x -- sh -c "
		mkdir -p /data && i=0 &&
		while test \$i -lt 400; do echo file \$i >/data/f\$i; i=\$((i + 1)); done &&
		dd if=/dev/urandom of=/data/big bs=1M count=24 2>/dev/null && rm /bin/ls" &&
	karapace --json commit x >c &&
	sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" c >snap &&
	karapace diff x >diff.snap
'

test_expect_success 'SIGKILLed commits' '
	n=0 &&
	for d in $DELAYS; do
		karapace exec x -- sh -c "echo $d >/data/commit-$d; dd if=/dev/urandom of=/data/big bs=1M count=24 2>/dev/null" &&
		{ timeout -s KILL $d karapace commit x >/dev/null 2>&1; echo $? >>codes; } &&
		sound || return 1
	done &&
	grep -c "^137\$" codes >killed &&
	test "$(cat killed)" -gt 0
'

test_expect_success 'SIGKILLed restores leave the old or the new writable layer' '
	for d in $DELAYS; do
		karapace exec x -- sh -c "echo $d >/data/restore-$d; rm -f /data/f1$d" &&
		karapace diff x >diff.before &&
		{ timeout -s KILL $d karapace restore x $(cat snap) >/dev/null 2>&1; echo $? >>rcodes; } &&
		sound &&
		karapace diff x >diff.after &&
		{ cmp -s diff.after diff.before || cmp -s diff.after diff.snap ||
		  { echo "state after a restore killed at $d is neither" >&4; diff diff.snap diff.after >&4; return 1; }; } &&
		ls store/envs/*/ >leftover &&
		! grep "upper\.\(new\|old\)" leftover || return 1
	done
'

test_expect_success 'SIGKILLed builds leave no half environment; the next build finishes the job' '
	fixture_busybox_rootfs b/rootfs &&
	dd if=/dev/urandom of=b/rootfs/big bs=1M count=24 2>/dev/null &&
	write_manifest b ./rootfs &&
	for d in $DELAYS; do
		echo $d >b/rootfs/marker && rm -f b/karapace.lock &&
		{ timeout -s KILL $d karapace build b >/dev/null 2>&1; echo $? >>bcodes; } &&
		sound || return 1
	done &&
	grep -c "^137\$" bcodes >killed &&
	test "$(cat killed)" -gt 0 &&
	echo done >b/rootfs/marker && rm -f b/karapace.lock &&
	karapace build b >id &&
	karapace exec $(cat id) -- cat /marker >out &&
	echo done >expect && test_cmp expect out &&
	ls store/tmp >left && test_must_be_empty left &&
	for e in store/envs/*; do
		test -f store/meta/envs/${e##*/}.json || { echo "$e has no record" >&4; return 1; }
	done
'

test_expect_success 'SIGKILLed gcs' '
	for d in $DELAYS; do
		karapace exec x -- sh -c "echo $d >>/data/gc" &&
		karapace commit x >/dev/null &&
		cp -a proj junk && rm junk/karapace.lock && echo $d >junk/rootfs/junk &&
		karapace build junk --name junk >/dev/null &&
		karapace exec junk -- sh -c "echo junk >/j" && karapace commit junk >/dev/null &&
		karapace destroy junk >/dev/null && rm -rf junk &&
		{ timeout -s KILL $d karapace gc >/dev/null 2>&1; echo $? >>gcodes; } &&
		sound || return 1
	done &&
	karapace gc >/dev/null &&
	karapace gc --dry-run >left && test ! -s left &&
	sound &&
	karapace restore x $(cat snap) &&
	karapace diff x >out && test_cmp diff.snap out
'

test_done

#!/bin/sh
test_description='races: commit against gc, concurrent execs against each other and stop, list and restore; stale markers and foreign files are named'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# snapshots ENV: the ids of ENV's snapshots, one per line.
snapshots() {
	karapace --json snapshots "$1" | sed "s/\"snapshot\":\"\([0-9a-f]*\)\"/\n\1\n/g" | grep "^[0-9a-f]\{64\}\$"
}

# execs ENV PARALLEL ROUNDS: PARALLEL execs of ENV at once, ROUNDS times; each
# failure's message goes to exec-errors (a script, so the test users run it too).
cat >execs.sh <<\END
r=0
while test $r -lt $3; do
	i=0
	while test $i -lt $2; do
		{ karapace exec "$1" -- true 2>>exec-errors || echo "exec failed: $?" >>exec-errors; } &
		i=$((i + 1))
	done
	wait
	r=$((r + 1))
done
END
execs() { sh "$HOME/execs.sh" "$@"; }

test_expect_success 'setup' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs &&
	karapace build proj --name x >/dev/null
'

test_expect_success 'commit against gc: every commit is recorded whole, every snapshot restores' '
	: >gc-errors &&
	{ i=0; while test $i -lt 30; do karapace gc >/dev/null 2>&1 || echo "gc failed" >>gc-errors; i=$((i + 1)); done & } &&
	i=0 &&
	while test $i -lt 30; do
		karapace exec x -- sh -c "echo $i >/f$i" &&
		karapace commit x >/dev/null || return 1
		i=$((i + 1))
	done &&
	wait &&
	test_must_be_empty gc-errors &&
	karapace verify-store &&
	snapshots x >snaps && test_line_count = 30 snaps &&
	for s in $(cat snaps); do karapace restore x $s >/dev/null || return 1; done &&
	karapace exec x -- cat /f29 >out && echo 29 >expect && test_cmp expect out
'

test_expect_success 'concurrent execs never fail, while stop, list and restore look on' '
	: >exec-errors && : >look-errors &&
	s=$(snapshots x | head -n 1) &&
	{ i=0; while test $i -lt 40; do
		karapace list >/dev/null 2>>look-errors || echo "list failed" >>look-errors
		karapace inspect x >/dev/null 2>>look-errors || echo "inspect failed" >>look-errors
		# refused while an exec runs, or done when none does: never anything else
		karapace restore x $s >/dev/null 2>restore-err ||
			grep -q "running" restore-err || cat restore-err >>look-errors
		i=$((i + 1))
	done & } &&
	execs x 10 15 &&
	wait &&
	test_must_be_empty exec-errors &&
	test_must_be_empty look-errors &&
	ls store/envs/*/run store/envs/*/work >left &&
	! grep "^[0-9]" left &&
	karapace verify-store
'

test_expect_success 'stop against starting execs: stop never fails, execs end or run' '
	: >exec-errors &&
	{ execs x 4 8 & } &&
	i=0 && while test $i -lt 20; do karapace stop x >/dev/null || return 1; i=$((i + 1)); done &&
	wait &&
	! grep -v -e "exec failed: 1[34][0-9]" -e "^Terminated$" -e "^Killed$" exec-errors
'

test_expect_success ROOTLESS 'rootless: concurrent execs never fail' '
	mkdir rl && fixture_busybox_rootfs rl/proj/rootfs && write_manifest rl/proj ./rootfs &&
	chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 KARAPACE_STORE="$PWD/st" && export KARAPACE_STORE &&
	 as_user karapace build proj --name mine >/dev/null &&
	 : >exec-errors && chown $KP_TEST_USER exec-errors &&
	 as_user sh ../execs.sh mine 6 8 &&
	 test_must_be_empty exec-errors)
'

test_expect_success 'a stale run marker is named by doctor and, with -v, by the command that removes it' '
	id=$(karapace --json inspect x | sed "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/") &&
	echo 4194304 >store/envs/$id/run/4194304 &&
	karapace doctor >out 2>&1 ;
	grep "run/4194304" out &&
	test_path_is_file store/envs/$id/run/4194304 &&
	karapace -v inspect x >out 2>err &&
	grep "run/4194304.*gone" err &&
	test_path_is_missing store/envs/$id/run/4194304 &&
	karapace inspect x >out 2>err && test_must_be_empty err
'

test_expect_success 'a foreign file in tmp/ is named by doctor and left by gc' '
	echo mine >store/tmp/notes.txt &&
	karapace doctor >out 2>&1 ;
	grep "tmp/notes.txt" out &&
	karapace gc >out 2>err &&
	grep "tmp/notes.txt.*not a karapace" err &&
	echo mine >expect && test_cmp expect store/tmp/notes.txt &&
	rm store/tmp/notes.txt
'

test_done

#!/bin/sh
test_description='environment lifecycle: running, stop, freeze, archive, destroy, rename, names'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# state ENV: prints the STATE column of `karapace list` for ENV's name.
state() {
	karapace list >list.out &&
	awk -v n="$1" '$2 == n {print $3}' list.out
}

# wait_state ENV STATE: polls until ENV is in STATE (at most 10 s).
wait_state() {
	i=0
	while test "$(state "$1")" != "$2"; do
		i=$((i + 1))
		test $i -lt 200 || { echo "state of $1 is $(state "$1"), not $2" >&4; return 1; }
		sleep 0.05
	done
}

test_expect_success 'setup: an environment from a busybox image, without packages' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs &&
	karapace build proj --name life >id &&
	test "$(state life)" = built
'

test_expect_success 'running while a command is inside, built again after' '
	karapace exec life -- sleep 30 &
	pid=$! &&
	wait_state life running &&
	test_path_is_file store/run/$(cat id) &&
	karapace --json inspect life >json && grep "\"state\":\"running\"" json &&
	karapace stop --timeout 5 life >out &&
	grep "stopped life" out &&
	{ wait $pid; echo $? >code; } &&
	echo 143 >expect && test_cmp expect code &&
	test "$(state life)" = built &&
	test_path_is_missing store/run/$(cat id)
'

test_expect_success 'stop kills what ignores SIGTERM after the timeout' '
	karapace exec life -- sh -c "trap \"\" TERM; sleep 30" &
	pid=$! &&
	wait_state life running &&
	karapace stop --timeout 0.5 life >out &&
	grep "1 killed" out &&
	wait $pid;
	test "$(state life)" = built
'

test_expect_success 'a SIGKILLed exec leaves the state right (stale marker cleared)' '
	karapace exec life -- sleep 30 &
	pid=$! &&
	wait_state life running &&
	kill -9 $pid && wait $pid;
	test_path_is_file store/run/$(cat id) &&
	wait_state life built &&
	test -z "$(ls store/envs/$(cat id)/run)" &&
	test_path_is_missing store/run/$(cat id)
'

test_expect_success 'two commands at once in one environment: both run, both writes land' '
	karapace exec life -- sh -c "sleep 1; echo a >/conc-a" &
	pid=$! &&
	wait_state life running &&
	karapace exec life -- sh -c "echo b >/conc-b" &&
	wait $pid &&
	karapace exec life -- cat /conc-a /conc-b >out &&
	printf "a\nb\n" >expect && test_cmp expect out &&
	ls store/envs/$(cat id)/work >work && echo shared >expect && test_cmp expect work
'

test_expect_success 'destroy, freeze and archive are refused while running' '
	karapace exec life -- sleep 30 &
	pid=$! &&
	wait_state life running &&
	test_expect_code 1 karapace destroy life 2>err &&
	grep "life is running" err && grep "karapace stop life" err &&
	test_expect_code 1 karapace freeze life &&
	test_expect_code 1 karapace archive life &&
	karapace stop life && wait $pid;
	test "$(state life)" = built
'

test_expect_success 'rename: valid, unique names' '
	karapace build proj >/dev/null &&
	write_manifest proj2 /nonexistent-unused &&
	cp -a proj other && echo "[runtime]" >>other/karapace.toml && echo "network_isolation = true" >>other/karapace.toml &&
	karapace build other --name second >id2 &&
	test_expect_code 1 karapace rename second life 2>err &&
	grep "taken by environment" err &&
	test_expect_code 1 karapace rename second "bad name" 2>err &&
	grep "invalid name" err &&
	karapace rename second renamed &&
	karapace exec renamed -- true &&
	test_expect_code 1 karapace build other --name "x/y" 2>err && grep "invalid name" err
'

test_expect_success 'network isolation: only loopback inside' '
	karapace exec renamed -- cat /proc/net/dev >dev &&
	sed -n "3,\$p" dev | cut -d: -f1 | tr -d " " >nets &&
	echo lo >expect && test_cmp expect nets &&
	karapace exec life -- cat /proc/net/dev >dev &&
	sed -n "3,\$p" dev | cut -d: -f1 | tr -d " " >nets &&
	! test_cmp expect nets
'

test_expect_success 'freeze: exec still reads, writes do not reach the environment' '
	karapace exec life -- sh -c "echo before >/kept" &&
	karapace freeze life &&
	test "$(state life)" = frozen &&
	karapace exec life -- cat /kept >out && echo before >expect && test_cmp expect out &&
	karapace exec life -- sh -c "echo during >/kept; cat /kept" >out && echo during >expect && test_cmp expect out &&
	karapace exec life -- cat /kept >out && echo before >expect && test_cmp expect out &&
	test_expect_code 1 karapace freeze life 2>err && grep "already frozen" err
'

test_expect_success 'archive: kept, protected from prune, but it does not run' '
	karapace archive life &&
	test "$(state life)" = archived &&
	test_expect_code 1 karapace exec life -- true 2>err &&
	grep "archived" err &&
	kp-prune >/dev/null && kp-fsck &&
	for l in $(karapace --json inspect life | sed "s/.*\"layers\":\[\([^]]*\)\].*/\1/" | tr -d "\"" | tr "," " "); do
		kp-cat-object -e $l || return 1
	done
'

test_expect_success 'destroy removes the record and the writable layer' '
	karapace destroy life >out && grep "destroyed life" out &&
	test_path_is_missing store/envs/$(cat id) &&
	test_expect_code 1 karapace inspect life &&
	karapace list >l && ! grep " life " l
'

test_expect_success 'every verb speaks JSON' '
	karapace --json rename renamed again >out && grep "\"name\":\"again\"" out &&
	karapace --json freeze again >out && grep "\"result\":\"frozen\"" out &&
	karapace --json stop again >out && grep "\"stopped\":0" out &&
	karapace --json destroy again >out && grep "\"result\":\"destroyed\"" out
'

test_expect_success 'enter runs a command, or a shell that reads stdin' '
	karapace build proj --name ent >/dev/null &&
	karapace enter ent -- echo inside >out && echo inside >expect && test_cmp expect out &&
	echo "echo from-shell" | karapace enter ent >out && echo from-shell >expect && test_cmp expect out
'

test_expect_success 'the mock backend (tests only) is refused with the reason' '
	cp -a proj mock && printf "[runtime]\nbackend = \"mock\"\n" >>mock/karapace.toml &&
	karapace build mock --name mock >/dev/null &&
	test_expect_code 1 karapace exec mock -- true 2>err &&
	grep "runtime.backend = \"mock\"" err
'

test_expect_success 'an oci environment runs, or says why no OCI runtime can run it (t5120 has the rest)' '
	cp -a proj oci && printf "[runtime]\nbackend = \"oci\"\n" >>oci/karapace.toml &&
	karapace build oci --name oci >/dev/null &&
	if karapace exec oci -- sh -c "echo \$container" >out 2>err
	then echo karapace >expect && test_cmp expect out
	else test $? = 125 && grep "OCI runtime: none works here" err
	fi
'

test_expect_success ROOTLESS 'rootless: build, exec, stop and destroy as an unprivileged user' '
	mkdir rl && fixture_busybox_rootfs rl/proj/rootfs && write_manifest rl/proj ./rootfs &&
	chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace build proj --name mine >id &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace exec mine -- sh -c "id -u; echo hi >/f" >out &&
	 echo 0 >expect && test_cmp expect out &&
	 test "$(stat -c %U st/envs/$(cat id)/upper/f)" = "$KP_TEST_USER" &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace destroy mine &&
	 test_path_is_missing st/envs/$(cat id))
'

test_done

#!/bin/sh
test_description='environments with [runtime] backend = "oci": exec, statuses, signals, stop, writes, one run at a time, bad runtimes; as root and rootless'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
test_have_prereq SANDBOX || test_skip_all "needs user namespaces and busybox-static"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# oci_manifest DIR [RUNTIME]: a busybox manifest with backend = "oci".
oci_manifest() {
	fixture_busybox_rootfs "$1/rootfs" && write_manifest "$1" ./rootfs &&
	printf '[runtime]\nbackend = "oci"\n%s' "${2:+runtime = \"$2\"
}" >>"$1/karapace.toml"
}

test_expect_success 'setup: an oci environment (runtime auto)' '
	oci_manifest proj &&
	karapace build proj --name box >id
'

if ! karapace exec box -- true 2>probe.err; then
	test_skip_all "no OCI runtime works here: $(tail -n 1 probe.err)"
fi

test_expect_success 'the runtime key is in the lock and in env_id' '
	grep "^runtime = \"auto\"$" proj/karapace.lock &&
	oci_manifest runc runc &&
	karapace build runc --name runc >id2 &&
	grep "^runtime = \"runc\"$" runc/karapace.lock &&
	test "$(cat id)" != "$(cat id2)"
'

test_expect_success 'exec passes output and exit statuses through: N, 128+signal, 127, 126' '
	karapace exec box -- sh -c "echo \$container \$(hostname)" >out &&
	echo "karapace box" >expect && test_cmp expect out &&
	test_expect_code 7 karapace exec box -- sh -c "exit 7" &&
	test_expect_code 143 karapace exec box -- sh -c "kill -TERM \$\$" &&
	test_expect_code 127 karapace exec box -- no-such-program 2>err &&
	grep "no-such-program: command not found" err &&
	test_expect_code 126 karapace exec box -- /etc/passwd
'

test_expect_success 'stdin passes through; writes land in the writable layer and persist' '
	echo hello | karapace exec box -- sh -c "cat >/greeting" &&
	karapace exec box -- cat /greeting >out && echo hello >expect && test_cmp expect out &&
	test -f store/envs/$(cat id)/upper/greeting
'

test_expect_success ROOT 'host root is not root inside: the command runs as the first id of the karapace range' '
	start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1) && test -n "$start" &&
	{ karapace exec box -- sleep 37 & } &&
	pid= && for i in $(seq 1 100); do
		pid=$(pgrep -x -f "sleep 37" | head -n1); test -n "$pid" && break; sleep 0.1
	done &&
	test "$(stat -c %u /proc/$pid)" = "$start" &&
	karapace stop --timeout 5 box && wait
'

test_expect_success 'enter on a terminal: the shell gets a pty with the window size; its status is the exit status' '
	command -v script >/dev/null || { say "skip: no script(1)"; return 0; }
	printf "test -t 0 && test -t 1 && echo isatty; stty size; exit 5\n" >input &&
	script -qec "stty rows 21 cols 77; karapace enter box; echo status=\$?" /dev/null <input >out &&
	grep isatty out && grep "21 77" out && grep "status=5" out
'

test_expect_success 'signals reach the command; stop ends it; a second run is refused meanwhile' '
	karapace exec box -- sleep 30 &
	pid=$! &&
	i=0 && while ! karapace --json inspect box | grep -q "\"state\":\"running\""; do
		i=$((i + 1)) && test $i -lt 200 || return 1; sleep 0.05
	done &&
	test_expect_code 125 karapace exec box -- true 2>err &&
	grep "oci backend runs one at a time" err &&
	karapace stop --timeout 5 box >out && grep "stopped box" out &&
	{ wait $pid; echo $? >code; } && echo 143 >expect && test_cmp expect code &&
	karapace exec box -- true
'

test_expect_success 'an unknown runtime is a manifest error; nothing is built' '
	oci_manifest bad docker &&
	ls store/envs >before &&
	test_expect_code 2 karapace build bad 2>err &&
	grep "runtime.runtime: unknown OCI runtime \"docker\"" err &&
	test_line_count = 1 err &&
	ls store/envs >after && test_cmp before after
'

test_expect_success 'runtime without backend = "oci" is a manifest error' '
	fixture_busybox_rootfs nat/rootfs && write_manifest nat ./rootfs &&
	printf "[runtime]\nruntime = \"runc\"\n" >>nat/karapace.toml &&
	test_expect_code 2 karapace build nat 2>err &&
	grep "runtime.runtime: applies only with backend = \"oci\"" err
'

test_expect_success 'a runtime that is not installed: one line, 125, the environment untouched' '
	oci_manifest yk youki &&
	karapace build yk --name yk >/dev/null &&
	if command -v youki >/dev/null || test -x /usr/sbin/youki; then say "youki is installed: case not run"; else
		find store/envs -newer yk/karapace.lock -print >before &&
		test_expect_code 125 karapace exec yk -- true 2>err &&
		grep "youki is not installed" err && test_line_count = 1 err
	fi
'

test_expect_success 'a runtime that fails says so and exits 125' '
	mkdir -p fake &&
	cat >fake/runc <<-\EOF &&
	#!/bin/sh
	# --log FILE ...: fails as a broken runtime does, logging why.
	echo "time=x level=error msg=\"broken on purpose\"" >>"$2"
	exit 1
	EOF
	chmod +x fake/runc &&
	PATH="$PWD/fake:$PATH" test_expect_code 125 karapace exec runc -- true 2>err &&
	grep "runc failed (exit status 1): broken on purpose" err
'

test_expect_success ROOTLESS 'rootless: an oci environment builds, runs and keeps its writes' '
	mkdir rl && oci_manifest rl/proj && chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace build proj --name mine >id &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace exec mine -- sh -c "id -u; echo hi >/f" >out &&
	 echo 0 >expect && test_cmp expect out &&
	 test "$(stat -c %U st/envs/$(cat id)/upper/f)" = "$KP_TEST_USER" &&
	 test_expect_code 3 as_user env KARAPACE_STORE="$PWD/st" karapace exec mine -- sh -c "exit 3")
'

test_expect_success ROOTLESS_SINGLE 'rootless with a single-id map: an oci environment runs' '
	mkdir rs && oci_manifest rs/proj && chown -R $KP_TEST_USER_SINGLE rs &&
	(cd rs &&
	 as_single_user env KARAPACE_STORE="$PWD/st" karapace build proj --name one >/dev/null &&
	 as_single_user env KARAPACE_STORE="$PWD/st" karapace exec one -- cat /proc/self/uid_map >map &&
	 read inside outside count <map && test "$inside $outside $count" = "0 0 1")
'

test_done

#!/bin/sh
test_description='resource limits through the OCI runtime: runc as host root applies runtime.resource_limits in cgroup v1; rootless stays refused'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_busybox_sandbox

# The v1 hierarchy of CONTROLLER this shell is in: "MOUNT-NAME PATH".
own_v1() {
	sed -n "s/^[0-9]*:\([^:]*\<$1\>[^:]*\):\(.*\)/\1 \2/p" /proc/self/cgroup
}

test_lazy_prereq CGROUP_V1 '
	test -n "$(own_v1 memory)" && test -n "$(own_v1 cpu)" &&
	set -- $(own_v1 memory) && test -f "/sys/fs/cgroup/$1$2/memory.limit_in_bytes"
'

# limits_manifest DIR [BACKEND-LINES]: a busybox manifest asking 32 MB and 512 CPU shares.
limits_manifest() {
	fixture_busybox_rootfs "$1/rootfs" && write_manifest "$1" ./rootfs &&
	printf '%s[runtime.resource_limits]\nmemory_limit_mb = 32\ncpu_shares = 512\n' "$2" >>"$1/karapace.toml"
}

test_expect_success 'setup: an oci (runc) environment with limits' '
	limits_manifest proj "[runtime]
backend = \"oci\"
runtime = \"runc\"
" &&
	karapace build proj --name lim >id
'

if ! test_have_prereq ROOT; then
	test_skip_all "runc applies limits for host root only (rootless: t4030 and the refusal below need root to set up users)"
fi
if ! test_have_prereq CGROUP_V1; then
	test_skip_all "no cgroup v1 memory and cpu hierarchies under /sys/fs/cgroup (runc applies the limits there)"
fi
if ! karapace exec lim -- true 2>probe.err; then
	test_skip_all "runc does not run here: $(tail -n 1 probe.err)"
fi

test_expect_success 'the plan gives the limits to the runtime, in this process'"'"'s v1 cgroups' '
	set -- $(own_v1 memory) && mem=/sys/fs/cgroup/$1$2 &&
	set -- $(own_v1 cpu) && cpu=/sys/fs/cgroup/$1$2 &&
	kp-sandbox --backend oci:runc --rootfs proj/rootfs --memory-mb 32 --cpu-shares 512 --print-plan -- true >plan &&
	grep "^cgroup ${mem%/} memory.limit_in_bytes 33554432$" plan &&
	grep "^cgroup ${cpu%/} cpu.shares 512$" plan
'

test_expect_success 'while a command runs, its cgroups hold the limits' '
	karapace exec lim -- sh -c "cat /proc/self/cgroup; exec sleep 30" >cg &
	pid=$! &&
	i=0 &&
	until grep -q ":cpu:" cg; do
		i=$((i + 1)) && test $i -lt 400 || return 1
		sleep 0.05
	done &&
	set -- $(sed -n "s/^[0-9]*:\([^:]*\<memory\>[^:]*\):\(.*\)/\1 \2/p" cg) &&
	echo 33554432 >expect &&
	test_cmp expect "/sys/fs/cgroup/$1$2/memory.limit_in_bytes" &&
	case "$2" in */karapace-oci-*) ;; *) false ;; esac &&
	set -- $(sed -n "s/^[0-9]*:\([^:]*\<cpu\>[^:]*\):\(.*\)/\1 \2/p" cg) &&
	echo 512 >expect &&
	test_cmp expect "/sys/fs/cgroup/$1$2/cpu.shares" &&
	karapace stop --timeout 5 lim >/dev/null &&
	{ wait $pid; echo $? >code; } &&
	echo 143 >expect && test_cmp expect code
'

test_expect_success 'an allocation over the limit is killed (128+9); one under it runs' '
	test_expect_code 137 karapace exec lim -- sh -c "x=\$(head -c 67108864 /dev/zero | tr \"\\0\" a); echo \${#x}" &&
	karapace exec lim -- sh -c "x=\$(head -c 4194304 /dev/zero | tr \"\\0\" a); echo \${#x}" >out &&
	echo 4194304 >expect && test_cmp expect out
'

test_expect_success 'the cgroups made for the runtime are gone after each run' '
	set -- $(own_v1 memory) && ls "/sys/fs/cgroup/$1$2" >mem.ls &&
	set -- $(own_v1 cpu) && ls "/sys/fs/cgroup/$1$2" >cpu.ls &&
	! grep karapace-oci- mem.ls cpu.ls
'

test_expect_success 'doctor says the oci backend applies limits here, for root only' '
	karapace --json doctor >doc || :
	grep "have the runtime apply them (cgroup v1)" doc &&
	if test_have_prereq ROOTLESS; then
		as_user env KARAPACE_STORE="$HOME/nostore" karapace --json doctor >doc.user || :
		grep "\"cgroup delegation\"" doc.user &&
		! grep "have the runtime apply them" doc.user
	fi
'

test_expect_success 'the native backend still refuses the same limits without a delegated cgroup v2' '
	limits_manifest native &&
	karapace build native --name nat >/dev/null &&
	{ karapace exec nat -- cat /proc/self/cgroup >cg 2>err; echo $? >status; } &&
	if test "$(cat status)" = 125; then
		test_line_count = 1 err && grep "resource limits refused: " err
	else
		grep "kp-sandbox-" cg
	fi
'

test_expect_success SUBUID 'rootless: the oci backend refuses the limits, naming why, and runs nothing' '
	mkdir rl && limits_manifest rl/proj "[runtime]
backend = \"oci\"
runtime = \"runc\"
" && chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace build proj --name mine >/dev/null &&
	 test_expect_code 125 as_user env KARAPACE_STORE="$PWD/st" karapace exec mine -- touch /ran 2>err &&
	 test_line_count = 1 err && grep "resource limits refused: " err &&
	 test -z "$(find st/envs -name ran)")
'

test_done

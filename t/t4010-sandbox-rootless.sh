#!/bin/sh
test_description='kp-sandbox as an unprivileged user: single and subordinate id maps, overlay roots, isolation'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-backend.sh"

test_have_prereq ROOTLESS || test_skip_all "needs root to create the unprivileged test user"
test_have_prereq BUSYBOX || test_skip_all "busybox-static is not installed"
as_user unshare --user --map-root-user true 2>/dev/null ||
	test_skip_all "unprivileged user namespaces are disabled"

# The test user owns everything it works on: rootless overlays cannot copy up
# files whose owner has no mapping inside.
test_expect_success 'setup: a busybox root and layer directories owned by the test user' '
	mkdir rl && fixture_busybox_rootfs rl/root &&
	mkdir -p rl/l1/etc rl/u rl/w && echo from-l1 >rl/l1/etc/motd &&
	chown -R "$KP_TEST_USER:$KP_TEST_USER" rl
'

test_expect_success 'runs as root inside, mapped to the caller outside' '
	mkdir -p rl/shared && chown "$KP_TEST_USER" rl/shared &&
	as_user kp-sandbox --uid-map single --rootfs rl/root --allow "$PWD/rl" --bind "$PWD/rl/shared:/tmp/srv" -- \
		sh -c "id -u; cat /proc/self/setgroups; touch /tmp/srv/made" >out &&
	echo 0 >expect && head -n1 out >first && test_cmp expect first &&
	grep "^deny\$" out &&
	id -u "$KP_TEST_USER" >expect && stat -c %u rl/shared/made >actual && test_cmp expect actual
'

test_expect_success 'exit statuses and signals as an unprivileged user' '
	{ as_user kp-sandbox --rootfs rl/root -- sh -c "exit 5"; echo $? >status; } &&
	echo 5 >expect && test_cmp expect status &&
	# TERM, not INT: a suite started in the background runs with SIGINT
	# ignored, which the sandbox (rightly) passes on.
	{ as_user kp-sandbox --rootfs rl/root -- sh -c "kill -TERM \$\$"; echo $? >status; } &&
	echo 143 >expect && test_cmp expect status &&
	{ as_user kp-sandbox --rootfs rl/root -- nope 2>err; echo $? >status; } &&
	echo 127 >expect && test_cmp expect status
'

test_expect_success 'a root-owned read-only root works too' '
	fixture_busybox_rootfs rootroot &&
	as_user kp-sandbox --rootfs rootroot -- sh -c "echo ok; hostname" >out &&
	printf "ok\nkarapace\n" >expect && test_cmp expect out
'

test_expect_success 'host processes are invisible and only loopback exists' '
	as_user kp-sandbox --rootfs rl/root -- sh -c "ls -d /proc/[0-9]*; cat /proc/net/dev" >out &&
	grep "^/proc/1\$" out && grep "^/proc/2\$" out &&
	if test_have_prereq NATIVE; then ! grep "^/proc/3" out; else test "$(grep -c "^/proc/" out)" -le 4; fi &&
	grep -v "^/proc/[0-9]" out | tail -n +3 | cut -d: -f1 | tr -d " " >ifaces && echo lo >expect && test_cmp expect ifaces
'

test_expect_success 'overlay root: writes go to the upper directory, lowers stay as they were' '
	as_user kp-sandbox --lower rl/l1 --lower rl/root --upper rl/u --work rl/w -- \
		sh -c "cat /etc/motd; echo mine >/etc/mine; rm /etc/motd" >out &&
	echo from-l1 >expect && test_cmp expect out &&
	test_path_is_file rl/u/etc/mine && test_path_is_file rl/l1/etc/motd &&
	as_user kp-sandbox --lower rl/l1 --lower rl/root --upper rl/u --work rl/w -- \
		sh -c "test -e /etc/motd || echo deleted; cat /etc/mine" >out &&
	printf "deleted\nmine\n" >expect && test_cmp expect out
'

test_expect_success 'single mapping: other owners cannot be set' '
	mkdir -p rl/u1 rl/w1 && chown "$KP_TEST_USER:$KP_TEST_USER" rl/u1 rl/w1 &&
	test_must_fail as_user kp-sandbox --uid-map single --lower rl/root --upper rl/u1 --work rl/w1 -- \
		sh -c "touch /f && chown 5:5 /f" 2>err
'

test_expect_success SUBUID 'subordinate range: files can belong to other users' '
	mkdir -p rl/u2 rl/w2 && chown "$KP_TEST_USER:$KP_TEST_USER" rl/u2 rl/w2 &&
	as_user kp-sandbox --uid-map subuid --lower rl/root --upper rl/u2 --work rl/w2 -- \
		sh -c "touch /f && chown 5:7 /f && stat -c %u:%g /f; cat /proc/self/uid_map" >out &&
	echo 5:7 >expect && head -n1 out >first && test_cmp expect first &&
	start=$(grep "^$KP_TEST_USER:" /etc/subuid | head -n1 | cut -d: -f2) &&
	gstart=$(grep "^$KP_TEST_USER:" /etc/subgid | head -n1 | cut -d: -f2) &&
	echo "$((start + 4)):$((gstart + 6))" >expect && stat -c %u:%g rl/u2/f >actual && test_cmp expect actual
'

test_expect_success SUBUID 'auto picks the subordinate range when one is granted' '
	as_user kp-sandbox --rootfs rl/root --print-plan -- true >plan &&
	grep "^uidmap 1 .* newuidmap\$" plan
'

test_expect_success 'ten rootless sandboxes over the same lower directories at once' '
	for i in 0 1 2 3 4 5 6 7 8 9; do
		mkdir -p rl/par/u$i rl/par/w$i || return 1
	done &&
	chown -R "$KP_TEST_USER:$KP_TEST_USER" rl/par &&
	for i in 0 1 2 3 4 5 6 7 8 9; do
		{ as_user kp-sandbox --lower rl/l1 --lower rl/root --upper rl/par/u$i --work rl/par/w$i -- \
			sh -c "echo $i >/x; cat /x /etc/motd" >out$i & } || return 1
	done &&
	wait &&
	for i in 0 1 2 3 4 5 6 7 8 9; do
		printf "$i\nfrom-l1\n" >expect && test_cmp expect out$i || return 1
	done
'

test_expect_success 'binding a directory the user owns, read-write and read-only' '
	mkdir rl/data && chown "$KP_TEST_USER:$KP_TEST_USER" rl/data &&
	as_user kp-sandbox --rootfs rl/root --allow "$HOME" --bind "$HOME/rl/data:/tmp/data" -- \
		sh -c "echo written >/tmp/data/f" &&
	echo written >expect && test_cmp expect rl/data/f &&
	test_must_fail as_user kp-sandbox --rootfs rl/root --allow "$HOME" --bind "$HOME/rl/data:/tmp/data:ro" -- \
		sh -c "echo again >/tmp/data/f" 2>err &&
	test_cmp expect rl/data/f
'

test_done

#!/bin/sh
test_description='kp-sandbox as root: exit statuses, signals, streaming, stdin, namespaces, read-only roots, overlays'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-backend.sh"

test_have_prereq USERNS || test_skip_all "user namespaces are not available"
test_have_prereq BUSYBOX || test_skip_all "busybox-static is not installed"

# sb CMD...: run CMD in a sandbox over the read-only busybox root.
sb() { kp-sandbox --rootfs "$HOME/root" "$@"; }

# wait_for FILE PATTERN: poll (up to 20 s) until FILE contains PATTERN.
wait_for() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1)) && test $i -lt 200 || return 1
		sleep 0.1
	done
}

test_expect_success 'setup: busybox root (with /run, which the sandbox mounts on)' '
	fixture_busybox_rootfs root
'

test_expect_success 'the command runs and its status is the sandbox status' '
	sb -- sh -c "echo hello" >out && echo hello >expect && test_cmp expect out &&
	sb -- true &&
	{ sb -- sh -c "exit 3"; echo $? >status; } && echo 3 >expect && test_cmp expect status
'

test_expect_success 'killed by signal N exits 128+N' '
	{ sb -- sh -c "kill -KILL \$\$"; echo $? >status; } && echo 137 >expect && test_cmp expect status &&
	{ sb -- sh -c "kill -TERM \$\$"; echo $? >status; } && echo 143 >expect && test_cmp expect status
'

test_expect_success 'not found exits 127, not executable 126, with a message' '
	{ sb -- no-such-command 2>err; echo $? >status; } && echo 127 >expect && test_cmp expect status &&
	grep "no-such-command: command not found" err &&
	{ sb -- /no/such/file 2>err; echo $? >status; } && echo 127 >expect && test_cmp expect status &&
	{ sb -- /etc/passwd 2>err; echo $? >status; } && echo 126 >expect && test_cmp expect status &&
	grep "/etc/passwd: Permission denied" err
'

test_expect_success 'a sandbox that cannot start exits 125 and says why' '
	{ kp-sandbox --rootfs "$HOME/nonexistent" -- true 2>err; echo $? >status; } &&
	echo 125 >expect && test_cmp expect status && grep "nonexistent" err
'

test_expect_success 'usage errors exit 64' '
	{ kp-sandbox -- true 2>err; echo $? >status; } && echo 64 >expect && test_cmp expect status &&
	{ kp-sandbox --rootfs root --net bogus -- true 2>err; echo $? >status; } && test_cmp expect status
'

test_expect_success 'stdin passes through' '
	printf "line1\nline2\n" >expect &&
	sb -- cat <expect >out && test_cmp expect out
'

test_expect_success 'output streams before the command ends' '
	mkdir ctl &&
	{ sb --allow "$HOME" --bind "$HOME/ctl:/tmp/ctl" -- sh -c \
		"echo started; while ! test -e /tmp/ctl/go; do sleep 0.1; done; echo finished" >stream & } &&
	pid=$! &&
	wait_for stream started &&
	! grep finished stream &&
	touch ctl/go && wait $pid &&
	printf "started\nfinished\n" >expect && test_cmp expect stream
'

test_expect_success 'signals sent to kp-sandbox reach the command' '
	kp-sandbox --rootfs root -- sh -c "trap \"echo got TERM; exit 7\" TERM; echo ready; while :; do sleep 0.1; done" >sig &
	pid=$! &&
	wait_for sig ready &&
	kill -TERM $pid &&
	{ wait $pid; echo $? >status; } &&
	echo 7 >expect && test_cmp expect status && grep "got TERM" sig
'

test_expect_success 'hostname is set, default karapace' '
	sb --hostname box-1 -- hostname >out && echo box-1 >expect && test_cmp expect out &&
	sb -- hostname >out && echo karapace >expect && test_cmp expect out
'

test_expect_success NATIVE 'PID 1 is the sandbox init, the command is PID 2, host processes are invisible' '
	sb -- sh -c "echo \$\$; tr \"\\0\" \" \" </proc/1/cmdline" >out &&
	head -n1 out >pid && echo 2 >expect && test_cmp expect pid &&
	grep "^kp-sandbox " out || grep "/kp-sandbox " out &&
	sb -- sh -c "ls -d /proc/[0-9]*" >procs &&
	printf "/proc/1\n/proc/2\n" >expect && test_cmp expect procs
'

test_expect_success 'on any backend the command is not PID 1, and only the sandbox'"'"'s processes show' '
	sb -- sh -c "echo \$\$; ls -d /proc/[0-9]*" >out &&
	test "$(head -n 1 out)" != 1 &&
	grep -x /proc/1 out &&
	test "$(grep -c "^/proc/" out)" -le 4
'

test_expect_success 'the network namespace has only loopback, which is up' '
	sb -- cat /proc/net/dev >dev &&
	tail -n +3 dev | cut -d: -f1 | tr -d " " >ifaces &&
	echo lo >expect && test_cmp expect ifaces &&
	sb -- ip link show lo >lo && grep "UP" lo
'

test_expect_success '--net host shares the host interfaces' '
	tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort >expect &&
	sb --net host -- cat /proc/net/dev >dev &&
	tail -n +3 dev | cut -d: -f1 | tr -d " " | sort >ifaces && test_cmp expect ifaces
'

test_expect_success 'the root directory is read-only; /tmp, /run and /dev/shm are private tmpfs' '
	test_must_fail sb -- touch /bin/new 2>err &&
	test_path_is_missing root/bin/new &&
	sb -- sh -c "echo x >/tmp/f && echo y >/run/f && echo z >/dev/shm/f && cat /tmp/f /run/f /dev/shm/f" >out &&
	printf "x\ny\nz\n" >expect && test_cmp expect out &&
	test_path_is_missing root/tmp/f
'

test_expect_success 'a fresh /dev: the usual nodes, a private devpts, mode 755' '
	sb -- sh -c "ls /dev; stat -c %a /dev; echo hi >/dev/null; head -c4 /dev/zero | wc -c" >out &&
	for n in null zero full random urandom tty pts ptmx shm fd stdin stdout stderr; do
		grep "^$n\$" out || return 1
	done &&
	grep "^755\$" out && grep "^4\$" out && ! grep "^vda\$" out
'

test_expect_success 'no_new_privs is set for the command' '
	sb -- grep NoNewPrivs /proc/self/status >out && grep "1\$" out
'

test_expect_success 'the environment is fixed: no host variables but terminal and locale' '
	FOO=bar TERM=xterm-test sb -- env >env &&
	! grep "^FOO=" env && grep "^TERM=xterm-test\$" env &&
	grep "^HOME=/root\$" env && grep "^PATH=/usr/local/sbin" env && grep "^container=karapace\$" env
'

test_expect_success '--cwd sets the working directory' '
	sb --cwd /etc -- pwd >out && echo /etc >expect && test_cmp expect out &&
	test_must_fail sb --cwd /no/such -- true 2>err && grep "chdir /no/such" err
'

test_expect_success 'overlay root: lowers read-only, writes and deletions land in the upper directory' '
	mkdir -p l1/etc u w && echo from-l1 >l1/etc/motd && echo base >root/etc/issue &&
	kp-sandbox --lower l1 --lower root --upper u --work w -- \
		sh -c "cat /etc/motd /etc/issue && echo new >/etc/new && rm /etc/issue && ls /etc" >out &&
	printf "from-l1\nbase\n" >expect && head -n2 out >head && test_cmp expect head &&
	! grep "^issue\$" out && grep "^new\$" out &&
	test_path_is_file u/etc/new && test_path_is_file root/etc/issue &&
	echo base >expect && test_cmp expect root/etc/issue
'

test_expect_success XATTR 'overlay root honours rootless whiteouts and opaque directories in lower layers' '
	mkdir -p l2/etc l2/d l2/x u2 w2 && echo hidden >l2/d/old && echo gone >l2/etc/gone &&
	mkdir -p top/etc top/d top/x &&
	setfattr -n user.overlay.opaque -v y top/d &&
	touch top/etc/gone && setfattr -n user.overlay.whiteout -v "" top/etc/gone &&
	setfattr -n user.overlay.opaque -v x top/etc &&
	kp-sandbox --lower top --lower l2 --lower root --upper u2 --work w2 -- \
		sh -c "ls /d; test -e /etc/gone && echo still-there; ls /etc" >out &&
	! grep old out && ! grep still-there out && grep passwd out
'

test_expect_success '--overlay fuse is refused for root: its layers are idmapped, which only kernel overlayfs reads' '
	mkdir -p u3 w3 &&
	test_expect_code 125 kp-sandbox --overlay fuse --lower l1 --lower root --upper u3 --work w3 -- true 2>err &&
	grep "kernel overlayfs only" err
'

test_expect_success 'ten sandboxes over the same layers run at once' '
	for i in 0 1 2 3 4 5 6 7 8 9; do
		mkdir -p par/u$i par/w$i &&
		{ kp-sandbox --lower l1 --lower root --upper par/u$i --work par/w$i -- \
			sh -c "echo $i >/mine; cat /mine /etc/motd" >par/out$i & } || return 1
	done &&
	wait &&
	for i in 0 1 2 3 4 5 6 7 8 9; do
		printf "$i\nfrom-l1\n" >expect && test_cmp expect par/out$i || return 1
	done
'

test_expect_success '--print-plan prints the steps and runs nothing' '
	kp-sandbox --rootfs root --hostname h --print-plan -- touch /tmp/marker >plan &&
	head -n1 plan >first && echo "unshare user mount pid uts ipc net" >expect && test_cmp expect first &&
	grep "^root-bind $(cd root && pwd -P | sed "s/ /\\\\ /g")" plan || grep "^root-bind \"" plan &&
	grep "^hostname h\$" plan && grep "^exec touch /tmp/marker\$" plan &&
	grep "^proc /proc\$" plan && grep "^pivot-root\$" plan
'

test_expect_success 'a terminal caller gets a pty of its own, with its window size' '
	command -v script >/dev/null || { say "skip: no script(1)"; return 0; }
	script -qec "stty rows 33 cols 99; kp-sandbox --rootfs \"$HOME/root\" -- sh -c \"test -t 0 && test -t 1 && echo isatty; stty size\"" /dev/null >out &&
	grep isatty out && grep "33 99" out
'

test_done

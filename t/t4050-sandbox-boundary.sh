#!/bin/sh
test_description='kp-sandbox as a boundary: host root is not root inside, /proc is read-only or masked, no caller
state (variables, descriptors, keyring) crosses, mounts are locked, the seccomp filter holds; as root and rootless'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"
. "$TEST_DIRECTORY/lib-backend.sh"

test_have_prereq USERNS || test_skip_all "user namespaces are not available"
test_have_prereq BUSYBOX || test_skip_all "busybox-static is not installed"

# Each check runs as the caller (root when the suite runs as root), as the
# test user with a subordinate range and as the one without: as root, as_user
# and as_single_user. Their trees are the test user's, world-readable.
test_expect_success 'setup: a busybox root and data to bind' '
	chmod 755 "$HOME" &&
	fixture_busybox_rootfs root && mkdir -p root/srv root/mnt data &&
	echo inside >data/f &&
	mkdir -p ov/l ov/u ov/w && echo lower >ov/l/motd &&
	# Debian gives /dev/fuse mode 0666 (udev); a machine without udev leaves
	# 0600, which keeps rootless fuse-overlayfs from being tried at all.
	if test "$(id -u)" = 0 && test -c /dev/fuse && test "$(stat -c %a /dev/fuse)" = 600; then
		chmod 666 /dev/fuse
	fi
'

# run_as WHO CMD...: CMD as the caller (self), the test user (user) or the
# test user without a range (single); a missing user skips with a message.
run_as() {
	who=$1 && shift &&
	case $who in
	self) "$@" ;;
	user) as_user "$@" ;;
	single) as_single_user "$@" ;;
	esac
}

# For each of self, user, single that this run can be: the list.
WHO=self
if test_have_prereq ROOTLESS; then
	chown -R "$KP_TEST_USER" root data ov && WHO="$WHO user"
	test_have_prereq SUBUID || say "the test user has no subordinate range here"
fi
test_have_prereq ROOTLESS_SINGLE && WHO="$WHO single"

sb() { who=$1 && shift && run_as "$who" kp-sandbox --rootfs "$HOME/root" "$@"; }

test_expect_success ROOT 'host root runs as the first id of the karapace range, not as 0' '
	start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1) &&
	test -n "$start" && test "$start" -gt 0 &&
	{ sb self -- sh -c "echo ready >/tmp/x; sleep 37" & } &&
	pid= && for i in $(seq 1 100); do
		pid=$(pgrep -f -n "^sleep 37\$") && break
		sleep 0.1
	done &&
	test -n "$pid" &&
	awk "/^Uid:/ { print \$2 }" /proc/$pid/status >actual &&
	kill $pid && wait &&
	echo "$start" >expect && test_cmp expect actual
'

test_expect_success 'the kernel settings are read-only inside, whoever runs it' '
	for who in $WHO; do
		sb $who -- sh -c "echo |/x >/proc/sys/kernel/core_pattern" 2>err && return 1
		grep "Read-only file system" err || return 1
		sb $who -- sh -c "echo 1 >/proc/sys/net/ipv4/ip_forward" 2>err && return 1
		grep "Read-only file system" err || return 1
		sb $who -- sh -c "test ! -e /proc/sysrq-trigger || echo h >/proc/sysrq-trigger" 2>err || {
			grep "Read-only file system" err || return 1
		}
		sb $who -- grep -w "/proc/sys" /proc/self/mountinfo >out &&
		grep " ro," out || return 1
	done
'

test_expect_success 'kernel internals in /proc are masked, and there is no /sys' '
	for who in $WHO; do
		sb $who -- sh -c "cat /proc/keys /proc/timer_list /proc/sched_debug 2>/dev/null | wc -c; ls /sys/firmware 2>&1; true" >out &&
		echo 0 >expect && head -n1 out >first && test_cmp expect first &&
		grep "No such file" out || return 1
	done
'

test_expect_success 'the caller s variables are not in any /proc/PID/environ inside' '
	for who in $WHO; do
		run_as $who env KP_LEAK_MARKER=s3cret kp-sandbox --rootfs "$HOME/root" -- \
			sh -c "for p in /proc/[0-9]*; do cat \$p/environ 2>/dev/null; echo; done" >out &&
		! grep s3cret out || return 1
	done
'

test_expect_success 'no process inside has the host as its root (kernel overlay and fuse-overlayfs)' '
	echo host-only >"$HOME/host-marker" &&
	check="for p in /proc/[0-9]*; do test -e \"\$p/root$HOME/host-marker\" && echo LEAK \$p; done; ls -d /proc/[0-9]*" &&
	for who in $WHO; do
		owner=$(run_as $who id -u) &&
		mkdir -p ov/u-$who ov/w-$who && chown -R $owner ov/u-$who ov/w-$who &&
		run_as $who kp-sandbox --lower "$HOME/ov/l" --lower "$HOME/root" --upper "$HOME/ov/u-$who" \
			--work "$HOME/ov/w-$who" -- sh -c "$check" >out &&
		! grep LEAK out || return 1
		test "$who" = self && continue
		# The OCI backend mounts kernel overlayfs only (t4100).
		test_have_prereq NATIVE || continue
		command -v fuse-overlayfs >/dev/null || { say "no fuse-overlayfs: fuse case not run"; continue; }
		run_as $who test -w /dev/fuse || { say "/dev/fuse is not usable by the test user: fuse case not run"; continue; }
		mkdir -p ov/fu-$who ov/fw-$who && chown -R $owner ov/fu-$who ov/fw-$who &&
		run_as $who kp-sandbox --overlay fuse --lower "$HOME/ov/l" --lower "$HOME/root" \
			--upper "$HOME/ov/fu-$who" --work "$HOME/ov/fw-$who" -- \
			sh -c "grep -c fuse /proc/self/mountinfo; $check" >out &&
		! grep LEAK out && test "$(head -n1 out)" -ge 1 || return 1
	done
'

test_expect_success 'only descriptors 0, 1 and 2 reach the command' '
	for who in $WHO; do
		run_as $who sh -c "exec 7</dev/null 9>&1; kp-sandbox --rootfs \"$HOME/root\" -- ls /proc/self/fd" >out &&
		printf "0\n1\n2\n3\n" >expect && test_cmp expect out || return 1
	done
'

# PID 1 is the caller's fork and never execs: what the caller had open (a
# store lock, a run marker) must not stay open in it, or it outlives a
# killed caller. Its descriptors are only root's to list (it is not dumpable).
test_expect_success ROOT 'PID 1 keeps none of the caller s descriptors' '
	exec 7</dev/null &&
	{ kp-sandbox --rootfs "$HOME/root" -- sleep 30 & } && caller=$! &&
	i=0 && while test -z "$(pgrep -P $caller)" && test $i -lt 100; do sleep 0.1; i=$((i+1)); done &&
	pid1=$(pgrep -P $caller) &&
	sleep 0.5 && ls /proc/$pid1/fd >fds &&
	kill $caller && wait $caller;
	exec 7<&- &&
	! grep -qx 7 fds && test "$(wc -l <fds)" -le 4
'

test_expect_success 'read-only mounts stay read-only and masks stay on; a tmpfs can still be mounted' '
	for who in $WHO; do
		sb $who --allow "$HOME" --bind "$HOME/data:/srv:ro" -- sh -c "
			mount -o remount,bind,rw /srv 2>/dev/null && echo remounted-srv
			mount -o remount,rw /proc/sys 2>/dev/null && echo remounted-sys
			umount /proc/keys 2>/dev/null && echo unmasked
			umount -l /srv 2>/dev/null && echo unmounted
			echo x >/srv/new 2>/dev/null && echo wrote
			mount -t tmpfs none /mnt 2>/dev/null && echo x >/mnt/y && echo tmpfs-ok; true" >out &&
		# The OCI backend keeps its mounts by withholding CAP_SYS_ADMIN
		# (docs/sandbox.md, "Backends"): no mount at all there.
		if test_have_prereq NATIVE; then echo tmpfs-ok; fi >expect &&
		test_cmp expect out || return 1
	done
'

test_expect_success 'the seccomp filter is on by default and --seccomp off lifts it' '
	for who in $WHO; do
		sb $who -- grep "^Seccomp:" /proc/self/status >out &&
		printf "Seccomp:\t2\n" >expect && test_cmp expect out &&
		sb $who --seccomp off -- grep "^Seccomp:" /proc/self/status >out &&
		printf "Seccomp:\t0\n" >expect && test_cmp expect out || return 1
	done &&
	test_expect_code 64 kp-sandbox --rootfs root --seccomp strict -- true 2>err &&
	grep "seccomp \"strict\" is not default or off" err
'

# The Debian tree has perl, which can make any system call by number.
test_expect_success DEBOOTSTRAP 'keyctl is refused, and the session keyring is a new one' '
	case $(uname -m) in x86_64) ;; *) say "system call numbers below are x86_64"; return 0 ;; esac &&
	base=$(fixture_debian_minbase) && mkdir -p du dw &&
	deb() { kp-sandbox --lower "$base" --upper "$HOME/du" --work "$HOME/dw" "$@"; } &&
	get="print syscall(250, 0, -3, 0) < 0 ? \"errno=\".(\$!+0) : \"ok\", qq(\n)" &&
	deb -- perl -e "$get" >out && echo errno=1 >expect && test_cmp expect out &&
	ids="print syscall(250, 0, -3, 0), qq(\n)" &&
	perl -e "$ids" >outside &&
	deb --seccomp off -- perl -e "$ids" >inside &&
	test "$(cat inside)" -gt 0 && ! test_cmp outside inside
'

test_done

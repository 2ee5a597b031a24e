#!/bin/sh
test_description='kp-sandbox host integration: each switch, with fake sockets in a fake runtime directory'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_have_prereq USERNS || test_skip_all "user namespaces are not available"
test_have_prereq BUSYBOX || test_skip_all "busybox-static is not installed"
test_have_prereq PYTHON3 || test_skip_all "python3 makes the fake sockets"

# sock PATH: a unix socket file at PATH (the listener is gone; the file stays).
sock() {
	mkdir -p "$(dirname "$1")" &&
	python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$1"
}

# Integration targets live on tmpfs (/run, /tmp, /dev) or need a mount point:
# an overlay root creates those in its upper directory.
ov() { n=$1 && shift && kp-sandbox --lower root --upper "up$n" --work "wk$n" "$@"; }

test_expect_success 'setup: busybox root, fake runtime directory' '
	fixture_busybox_rootfs root && mkdir -p rt &&
	for i in 1 2 3; do mkdir -p up$i wk$i || return 1; done &&
	sock rt/wl-test && sock rt/pipewire-0 && sock rt/pulse/native && sock rt/bus && sock agent.sock
'

sb() { kp-sandbox --rootfs root "$@"; }

test_expect_success '--wayland: the compositor socket and WAYLAND_DISPLAY' '
	XDG_RUNTIME_DIR=$PWD/rt WAYLAND_DISPLAY=wl-test sb --wayland -- \
		sh -c "test -S /run/user/0/wayland-0 && echo \$WAYLAND_DISPLAY \$XDG_RUNTIME_DIR" >out &&
	echo "wayland-0 /run/user/0" >expect && test_cmp expect out &&
	XDG_RUNTIME_DIR=$PWD/rt WAYLAND_DISPLAY=wl-test sb -- sh -c "ls /run/user/0; echo \${WAYLAND_DISPLAY-unset}" >out &&
	echo unset >expect && test_cmp expect out
'

test_expect_success '--wayland refuses without a socket' '
	{ XDG_RUNTIME_DIR=$PWD/rt WAYLAND_DISPLAY=nope sb --wayland -- true 2>err; echo $? >status; } &&
	echo 125 >expect && test_cmp expect status && grep -e "--wayland: .*nope" err
'

test_expect_success '--x11: the display socket and DISPLAY' '
	n=$((7000 + $$ % 1000)) &&
	test_when_finished "rm -f /tmp/.X11-unix/X$n" &&
	sock /tmp/.X11-unix/X$n &&
	DISPLAY=:$n.0 sb --x11 -- sh -c "test -S /tmp/.X11-unix/X$n && echo \$DISPLAY" >out &&
	echo ":$n" >expect && test_cmp expect out &&
	test_must_fail env DISPLAY=otherhost:0 kp-sandbox --rootfs root --x11 -- true 2>err && grep "not a local display" err
'

test_expect_success '--pipewire and --pulseaudio: their sockets' '
	XDG_RUNTIME_DIR=$PWD/rt sb --pipewire --pulseaudio -- \
		sh -c "test -S /run/user/0/pipewire-0 && test -S /run/user/0/pulse/native && echo \$PULSE_SERVER" >out &&
	echo "unix:/run/user/0/pulse/native" >expect && test_cmp expect out
'

test_expect_success '--dbus-session: the bus socket and its address' '
	DBUS_SESSION_BUS_ADDRESS=unix:path=$PWD/rt/bus,guid=0123 sb --dbus-session -- \
		sh -c "test -S /run/user/0/bus && echo \$DBUS_SESSION_BUS_ADDRESS" >out &&
	echo "unix:path=/run/user/0/bus" >expect && test_cmp expect out &&
	test_must_fail env DBUS_SESSION_BUS_ADDRESS=unix:abstract=/tmp/x kp-sandbox --rootfs root --dbus-session -- true 2>err &&
	grep "abstract socket" err &&
	DBUS_SESSION_BUS_ADDRESS=unix:path=$PWD/rt/bus sb -- sh -c "echo \${DBUS_SESSION_BUS_ADDRESS-unset}" >out &&
	echo unset >expect && test_cmp expect out
'

test_expect_success '--ssh-agent is opt-in: the agent socket only when asked' '
	SSH_AUTH_SOCK=$PWD/agent.sock sb -- sh -c "echo \${SSH_AUTH_SOCK-unset}; ls /run/user/0" >out &&
	echo unset >expect && test_cmp expect out &&
	SSH_AUTH_SOCK=$PWD/agent.sock sb --ssh-agent -- sh -c "test -S \$SSH_AUTH_SOCK && echo \$SSH_AUTH_SOCK" >out &&
	echo /run/user/0/ssh-agent.sock >expect && test_cmp expect out &&
	test_must_fail env -u SSH_AUTH_SOCK kp-sandbox --rootfs root --ssh-agent -- true 2>err &&
	grep "SSH_AUTH_SOCK is not set" err
'

test_expect_success '--home: the home directory, writable, and HOME' '
	mkdir -p home/me && echo hi >home/me/file &&
	HOME=$PWD/home/me ov 1 --home -- sh -c "cat \"\$HOME/file\" && echo back >\"\$HOME/new\" && echo \"\$HOME\"" >out &&
	printf "hi\n%s\n" "$PWD/home/me" >expect && test_cmp expect out &&
	echo back >expect && test_cmp expect home/me/new
'

test_expect_success 'without --home the host home is not there' '
	mkdir -p home/me && HOME=$PWD/home/me ov 2 -- sh -c "echo \$HOME; test -e \"$PWD/home/me/file\" || echo absent" >out &&
	printf "/root\nabsent\n" >expect && test_cmp expect out
'

test_expect_success '--fonts: host font directories, read-only' '
	if test -d /usr/share/fonts; then
		ov 3 --fonts -- sh -c "ls /usr/share/fonts >/dev/null && echo seen; touch /usr/share/fonts/x 2>/dev/null || echo ro" >out &&
		printf "seen\nro\n" >expect && test_cmp expect out
	else
		test_must_fail ov 3 --fonts -- true 2>err && grep -e "--fonts" err
	fi
'

test_expect_success '--themes: host icon and theme directories, read-only' '
	if test -d /usr/share/icons; then
		ov 3 --themes -- sh -c "ls /usr/share/icons >/dev/null && echo seen; mkdir /usr/share/icons/x 2>/dev/null || echo ro" >out &&
		printf "seen\nro\n" >expect && test_cmp expect out
	elif test -d /usr/share/themes; then
		ov 3 --themes -- ls /usr/share/themes
	else
		test_must_fail ov 3 --themes -- true 2>err && grep -e "--themes" err
	fi
'

test_expect_success '--gpu: /dev/dri and NVIDIA nodes when present, else refused' '
	if test -d /dev/dri || ls /dev/nvidia* >/dev/null 2>&1; then
		sb --gpu -- sh -c "test -d /dev/dri || ls /dev/nvidia*" >out
	else
		{ sb --gpu -- true 2>err; echo $? >status; } && echo 125 >expect && test_cmp expect status &&
		grep "no GPU device" err
	fi
'

test_expect_success '--audio: /dev/snd when present, else refused' '
	if test -d /dev/snd; then
		sb --audio -- test -d /dev/snd
	else
		{ sb --audio -- true 2>err; echo $? >status; } && echo 125 >expect && test_cmp expect status &&
		grep "no sound device" err
	fi
'

test_expect_success 'without switches nothing of the host is shared' '
	XDG_RUNTIME_DIR=$PWD/rt sb -- sh -c "ls -A /run/user/0 | wc -l; ls /dev" >out &&
	head -n1 out | tr -d " " >n && echo 0 >expect && test_cmp expect n &&
	! grep -e "^dri\$" -e "^snd\$" out
'

test_done

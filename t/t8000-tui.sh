#!/bin/sh
test_description='karapace tui driven in tmux: rename, freeze, enter and exit, quit, SIGTERM, a missing store'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi
if ! command -v tmux >/dev/null; then
	test_skip_all "needs tmux"
fi

# One tmux server for the script, on a socket of its own; its panes are 80x24
# and stay after karapace tui exits (the pane's script sleeps), so the
# terminal it left can be read.
TMUX_SOCK="$HOME/tmux.sock"
tm() { tmux -S "$TMUX_SOCK" "$@"; }
N=0

# tui_start DIR [STORE]: runs `karapace tui` on DIR/st (or STORE) in a fresh
# session (named $S; the earlier ones stay until the server is killed: killing
# the last one would end the server under the next new-session),
# as root or, when AS is set, as the test user; DIR/tui.pid gets its pid and
# DIR/tui.status its exit status once it ends.
tui_start() {
	dir=$(cd "$1" && pwd) && store=${2:-$dir/st} &&
	N=$((N + 1)) && S=tui$N &&
	rm -f "$dir/tui.pid" "$dir/tui.status" &&
	who= &&
	if test -n "$AS"; then
		who="setpriv --reuid=$KP_TEST_USER --regid=$KP_TEST_USER --init-groups"
	fi &&
	cat >"$dir/run-tui" <<-EOF &&
	cd "$dir" || exit 1
	$who env HOME="$HOME" PATH="$PATH" KARAPACE_STORE="$store" LC_ALL=C.UTF-8 TZ=UTC TERM=xterm-256color \\
		sh -c 'echo \$\$ >tui.pid; exec karapace tui'
	echo \$? >tui.status
	exec sleep 600
	EOF
	chmod 755 "$dir/run-tui" &&
	# The server outlives this call: it must hold none of the harness's files.
	tm new-session -d -s $S -x 80 -y 24 sh "$dir/run-tui" </dev/null >/dev/null 2>"$dir/tmux.err" 3>&- 4>&- ||
		{ cat "$dir/tmux.err" >&4; return 1; }
}

# wait_screen PATTERN: polls the pane until a line matches (at most 20 s);
# the screen is left in screen.out.
wait_screen() {
	i=0
	while :; do
		tm capture-pane -p -t $S >screen.out 2>/dev/null
		grep -q -- "$1" screen.out && return 0
		i=$((i + 1))
		test $i -lt 200 || { echo "no \"$1\" on the screen:" >&4; cat screen.out >&4; return 1; }
		sleep 0.1
	done
}

# wait_status DIR: waits for the TUI's exit status and prints it.
wait_status() {
	i=0
	while ! test -s "$1/tui.status"; do
		i=$((i + 1))
		test $i -lt 200 || { echo "karapace tui did not exit" >&4; return 1; }
		sleep 0.1
	done
	cat "$1/tui.status"
}

# field DIR ENV KEY: KEY of `karapace --json inspect ENV`, as the same user.
inspect() {
	if test -n "$AS"; then
		as_user env KARAPACE_STORE="$1/st" karapace --json inspect "$2"
	else
		KARAPACE_STORE="$1/st" karapace --json inspect "$2"
	fi
}

# The whole session, as root (AS empty) or as the test user (AS=user).
tui_session() {
	d=$1
	tui_start "$d" &&
	wait_screen "1 of 1 environments" &&
	grep "tuienv .* built " screen.out &&

	# Rename: r, the new name, Enter.
	tm send-keys -t $S r && wait_screen "New name" &&
	tm send-keys -t $S -l renamed && tm send-keys -t $S Enter &&
	wait_screen "rename to renamed: done" &&
	inspect "$d" renamed >json && grep "\"name\":\"renamed\"" json &&

	# Destroy asks first; n keeps it.
	tm send-keys -t $S D && wait_screen "Destroy renamed?" &&
	tm send-keys -t $S n && wait_screen "cancelled" &&
	inspect "$d" renamed >json &&

	# Freeze: f, then y in the dialog.
	tm send-keys -t $S f && wait_screen "Freeze renamed?" &&
	tm send-keys -t $S y &&
	wait_screen "freeze renamed: done" &&
	wait_screen "renamed .* frozen " &&
	inspect "$d" renamed >json && grep "\"state\":\"frozen\"" json &&

	# Enter: the shell gets the terminal, the TUI comes back after exit.
	tm send-keys -t $S e && wait_screen "^/ #" &&
	tm send-keys -t $S -l "echo in-\$((6*7))" && tm send-keys -t $S Enter &&
	wait_screen "^in-42" &&
	inspect "$d" renamed >json && grep "\"state\":\"running\"" json &&
	tm send-keys -t $S -l exit && tm send-keys -t $S Enter &&
	wait_screen "enter $(cut -c1-12 "$d/id"): exited 0" &&
	inspect "$d" renamed >json && grep "\"state\":\"frozen\"" json &&

	# q quits with status 0 and gives the terminal back.
	tm send-keys -t $S q &&
	test "$(wait_status "$d")" = 0 &&
	test "$(tm display-message -p -t $S "#{alternate_on}#{mouse_any_flag}#{cursor_flag}")" = 001
}

test_expect_success 'setup: an environment, as root' '
	mkdir root && fixture_busybox_rootfs root/proj/rootfs && write_manifest root/proj ./rootfs &&
	KARAPACE_STORE="$PWD/root/st" karapace build root/proj --name tuienv >root/id
'

test_expect_success 'root: rename, freeze, enter and exit, quit' '
	AS= tui_session "$PWD/root"
'

test_expect_success 'SIGTERM ends it with 143 and the terminal restored' '
	tui_start root &&
	wait_screen "1 of 1 environments" &&
	kill -TERM "$(cat root/tui.pid)" &&
	test "$(wait_status root)" = 143 &&
	test "$(tm display-message -p -t $S "#{alternate_on}#{mouse_any_flag}#{cursor_flag}")" = 001
'

test_expect_success 'a missing store: it opens and names the problem; q still quits 0' '
	tui_start root "$PWD/root/nowhere" &&
	wait_screen "^error: store: .*nowhere" &&
	tm send-keys -t $S q &&
	test "$(wait_status root)" = 0
'

test_expect_success 'a corrupt record: the others show, the bad one is named' '
	bad=root/st/meta/envs/$(printf "f%.0s" $(seq 64)).json &&
	echo garbage >"$bad" &&
	tui_start root &&
	wait_screen "^error: store: corrupt metadata" &&
	# The message wraps; joined, it names the record.
	tr -d "\n" <screen.out | grep "meta/envs/f\{64\}.json: not JSON" &&
	grep "renamed .* frozen " screen.out &&
	tm send-keys -t $S q &&
	test "$(wait_status root)" = 0 &&
	rm "$bad"
'

test_expect_success 'a terminal that goes away without a SIGHUP ends it' '
	# Its own tmux server, killed outright: the pane hangs up and reads as end
	# of file forever, which once kept karapace-tui spinning after its
	# terminal was gone.
	tmux -S "$HOME/hang.sock" new-session -d -x 80 -y 24 \
		"echo \$\$ >\"$PWD/hang.pid\"; KARAPACE_STORE=\"$PWD/root/st\" exec karapace tui" </dev/null >/dev/null 2>&1 3>&- 4>&- &&
	i=0 && while ! test -s hang.pid; do i=$((i + 1)); test $i -lt 200 || return 1; sleep 0.1; done &&
	pid=$(cat hang.pid) &&
	sleep 1 && test -d /proc/$pid &&
	kill -9 "$(tmux -S "$HOME/hang.sock" display-message -p "#{pid}")" &&
	i=0 &&
	while test -d /proc/$pid && test "$(awk "{print \$3}" /proc/$pid/stat 2>/dev/null)" != Z; do
		i=$((i + 1))
		test $i -lt 200 || { echo "karapace-tui $pid still runs" >&4; ps -o pid,stat,pcpu,args -p $pid >&4; kill -9 $pid; return 1; }
		sleep 0.1
	done
'

test_expect_success 'karapace tui without karapace-tui beside it: one line, exit 127' '
	mkdir lonely && cp "$KP_BUILD_DIR/karapace" lonely/ &&
	test_expect_code 127 lonely/karapace tui 2>err &&
	grep "lonely/karapace-tui is not installed" err
'

test_expect_success ROOTLESS 'rootless: rename, freeze, enter and exit, quit' '
	mkdir user && fixture_busybox_rootfs user/proj/rootfs && write_manifest user/proj ./rootfs &&
	chown -R $KP_TEST_USER user &&
	(cd user && as_user env KARAPACE_STORE="$PWD/st" karapace build proj --name tuienv >id) &&
	AS=user tui_session "$PWD/user"
'

test_expect_success 'cleanup: the tmux server' '
	tm kill-server
'

test_done

#!/bin/sh
test_description='karapace tui driven in tmux: rename, freeze, enter and exit, quit; build from a path and from a preset, exec, commit, restore, gc; SIGTERM, a missing store'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"
. "$TEST_DIRECTORY/lib-images.sh"

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
# Panes are 80x24 unless GEOM says otherwise.
GEOM="-x 80 -y 24"

# Whatever happens to the script (-i stops it at the first failure), no
# tmux server, karapace-tui or image server outlives it.
tui_cleanup() {
	tm kill-server 2>/dev/null
	tmux -S "$HOME/hang.sock" kill-server 2>/dev/null
	test_daemons_stop
}
trap tui_cleanup EXIT

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
		KARAPACE_IMAGE_SERVER="${HTTPD:-http://127.0.0.1:9}" \\
		sh -c 'echo \$\$ >tui.pid; exec karapace tui'
	echo \$? >tui.status
	exec sleep 600
	EOF
	chmod 755 "$dir/run-tui" &&
	# The server outlives this call: it must hold none of the harness's files.
	tm new-session -d -s $S $GEOM sh "$dir/run-tui" </dev/null >/dev/null 2>"$dir/tmux.err" 3>&- 4>&- ||
		{ cat "$dir/tmux.err" >&4; return 1; }
}

# wait_screen PATTERN: polls the pane until a line matches (at most 60 s: a
# build under load);
# the screen is left in screen.out.
wait_screen() {
	i=0
	while :; do
		tm capture-pane -p -t $S >screen.out 2>/dev/null
		grep -q -- "$1" screen.out && return 0
		i=$((i + 1))
		test $i -lt 600 || { echo "no \"$1\" on the screen:" >&4; cat screen.out >&4; return 1; }
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

# kpu DIR ARGS...: `karapace ARGS` on DIR/st, as the session's user.
kpu() {
	kpu_store=$1/st
	shift
	if test -n "$AS"; then
		as_user env KARAPACE_STORE="$kpu_store" karapace "$@"
	else
		KARAPACE_STORE="$kpu_store" karapace "$@"
	fi
}

# The other actions, on an empty store at 100x30, as root (AS empty) or as
# the test user: build from a manifest path, exec a command, commit, restore
# the snapshot, gc an image nobody uses any more, build from a preset (its
# image from the test's image server). Each is checked afterwards with
# `karapace --json` on the store, never from the TUI's screen; the screen
# only says when to look.
tui_actions() {
	d=$1
	GEOM="-x 100 -y 30" && tui_start "$d" && GEOM="-x 80 -y 24" &&
	wait_screen "0 of 0 environments" &&

	# b: a manifest path, relative to where the TUI runs.
	tm send-keys -t $S b && wait_screen "Manifest path" &&
	tm send-keys -t $S -l proj && tm send-keys -t $S Enter &&
	wait_screen "build proj: done" &&
	kpu "$d" --json list >json &&
	id=$(sed -n "s/.*\"env_id\":\"\([0-9a-f]\{64\}\)\".*/\1/p" json) && test -n "$id" &&
	short=$(echo "$id" | cut -c1-12) &&
	grep "\"manifest\":\"$d/proj/karapace.toml\"" json &&

	# x: a command inside; the terminal is lent and Enter takes it back.
	tm send-keys -t $S x && wait_screen "Command to run" &&
	tm send-keys -t $S -l "echo one >/one" && tm send-keys -t $S Enter &&
	wait_screen "exit status 0; press Enter" &&
	tm send-keys -t $S Enter && wait_screen "exec $short: exited 0" &&
	echo one >expect &&
	kpu "$d" exec "$id" -- cat /one >out && test_cmp expect out &&

	# c: commit; the snapshot is recorded.
	tm send-keys -t $S c && wait_screen "commit $short: done" &&
	kpu "$d" --json snapshots "$id" >json &&
	snap=$(sed -n "s/.*\"snapshot\":\"\([0-9a-f]\{64\}\)\".*/\1/p" json) && test -n "$snap" &&

	# Changed after the commit; R in the snapshots view restores it.
	kpu "$d" exec "$id" -- sh -c "rm /one && echo two >/two" &&
	tm send-keys -t $S S && wait_screen "snapshots of $short" &&
	tm send-keys -t $S R && wait_screen "Restore $short to snapshot $(echo "$snap" | cut -c1-12)?" &&
	tm send-keys -t $S y && wait_screen "restore $short: done" &&
	kpu "$d" exec "$id" -- cat /one >out && test_cmp expect out &&
	test_expect_code 1 kpu "$d" exec "$id" -- cat /two &&
	tm send-keys -t $S Escape &&

	# U g: the gc preview, X y: gc; what it would remove is then gone.
	mkdir -p "$d/junk" && echo "junk of $d" >"$d/junk/f" &&
	kpu "$d" image import "$d/junk" junk && kpu "$d" image rm junk &&
	kpu "$d" --json gc --dry-run >json && grep "\"kind\"" json &&
	tm send-keys -t $S U && wait_screen "g: gc preview" &&
	tm send-keys -t $S g && wait_screen "would remove [1-9][0-9]* objects" &&
	tm send-keys -t $S X && wait_screen "Remove everything" &&
	tm send-keys -t $S y && wait_screen "^gc: done" &&
	kpu "$d" --json gc --dry-run >json && ! grep "\"kind\"" json &&
	tm send-keys -t $S Escape &&

	# p: a preset, then the directory its manifest goes to, which names
	# the environment (the offered name is the preset's: erased here).
	tm send-keys -t $S p && wait_screen "Build from a preset" &&
	tm send-keys -t $S Enter && wait_screen "Directory for the minimal manifest" &&
	tm send-keys -t $S BSpace BSpace BSpace BSpace BSpace BSpace BSpace &&
	tm send-keys -t $S -l web && tm send-keys -t $S Enter &&
	wait_screen "build web from preset minimal: done" &&
	kpu "$d" --json inspect web >json &&
	grep "\"manifest\":\"$d/web/karapace.toml\"" json &&
	grep "\"image\":\"debian/bookworm\"" json &&
	grep "\"state\":\"built\"" json &&

	tm send-keys -t $S q &&
	test "$(wait_status "$d")" = 0
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

test_expect_success PYTHON3 'setup: an image server with debian/bookworm (busybox)' '
	fixture_busybox_rootfs srvroot && image_rootfs_tarball srvroot rootfs.tar.xz &&
	image_simplestreams srv rootfs.tar.xz debian bookworm "debian/12" &&
	image_httpd srv &&
	trap tui_cleanup EXIT
'

test_expect_success PYTHON3 'root: build from a path, exec, commit, restore, gc, build from a preset' '
	mkdir acts && fixture_busybox_rootfs acts/proj/rootfs && write_manifest acts/proj ./rootfs &&
	KARAPACE_STORE="$PWD/acts/st" karapace init &&
	AS= tui_actions "$PWD/acts"
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

test_expect_success ROOTLESS,PYTHON3 'rootless: build from a path, exec, commit, restore, gc, build from a preset' '
	mkdir uacts && fixture_busybox_rootfs uacts/proj/rootfs && write_manifest uacts/proj ./rootfs &&
	chown -R $KP_TEST_USER uacts &&
	as_user env KARAPACE_STORE="$PWD/uacts/st" karapace init &&
	AS=user tui_actions "$PWD/uacts"
'

test_expect_success ROOTLESS_SINGLE,PYTHON3 'rootless with a single-id map: the same actions' '
	mkdir sacts && fixture_busybox_rootfs sacts/proj/rootfs && write_manifest sacts/proj ./rootfs &&
	chown -R $KP_TEST_USER_SINGLE sacts &&
	as_single_user env KARAPACE_STORE="$PWD/sacts/st" karapace init &&
	saved_user=$KP_TEST_USER && KP_TEST_USER=$KP_TEST_USER_SINGLE &&
	{ AS=user tui_actions "$PWD/sacts"; ret=$?; KP_TEST_USER=$saved_user; test $ret = 0; }
'

test_expect_success 'cleanup: the tmux server and the image server' '
	tm kill-server &&
	test_daemons_stop
'

test_done

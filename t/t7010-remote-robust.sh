#!/bin/sh
test_description='remotes under stress: a client or a server killed mid-push, two pushes of one tag at once, slow and too many clients, a pulled environment'"'"'s relative mounts, progress bars'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_have_prereq PYTHON3 || test_skip_all 'python3 is needed for the relay (lib-hold.py)'

# Servers and relays started below go with the script, however it ends.
trap 'for p in "$TRASH_DIRECTORY"/*.pid; do test -s "$p" && kill -9 $(cat "$p") 2>/dev/null; done' EXIT

# objects DIR: the object files of a store, sorted.
objects() {
	(cd "$1/objects" && find . -type f | sort)
}

# wait_for FILE [PATTERN]: until FILE exists (and holds PATTERN); at most 60 s.
wait_for() {
	i=0
	while test $i -lt 600; do
		if test -e "$1" && { test -z "$2" || grep -q "$2" "$1"; }; then return 0; fi
		sleep 0.1; i=$((i + 1))
	done
	echo "wait_for: gave up on $1 ${2:+($2)}" >&2
	return 1
}

# serve NAME STORE [ARGS]: karapace-server on 127.0.0.1 (the address in
# NAME.port, port 0 unless NAME.port is there), log NAME.log, pid NAME.pid.
serve() {
	name=$1 st=$2 && shift 2 &&
	listen=127.0.0.1:0 && if test -s $name.port; then listen=$(cat $name.port); fi &&
	: >$name.port.new &&
	{ karapace-server --store $st --listen $listen "$@" >$name.port.new 2>>$name.log 3>&- 4>&- & echo $! >$name.pid; } &&
	wait_for $name.port.new : && mv $name.port.new $name.port
}

# relay NAME UPSTREAM MODE: lib-hold.py in front of UPSTREAM (NAME.port, NAME.pid).
relay() {
	rm -f $1.port &&
	{ python3 "$TEST_DIRECTORY/lib-hold.py" "$PWD/$1.port" $2 $3 3>&- 4>&- & echo $! >$1.pid; } &&
	wait_for $1.port
}

# client DIR [AS]: a client home DIR of its own (store, config, tokens),
# owned by AS's user; prints nothing. Later: at DIR AS karapace ....
client() {
	mkdir -p $1 && cp wtok $1/ && chmod 600 $1/wtok &&
	if test -n "$2"; then chown -R $3 $1; fi
}

# at DIR AS CMD...: CMD as AS in client home DIR.
at() {
	(d=$1 as=$2 && shift 2 && cd $d &&
	 HOME=$PWD XDG_CONFIG_HOME=$PWD/.config KARAPACE_STORE=$PWD/st &&
	 export HOME XDG_CONFIG_HOME KARAPACE_STORE &&
	 if test -n "$as"; then $as "$@"; else exec "$@"; fi)
}

# wait_count FILE PATTERN N: until FILE has N lines matching PATTERN.
wait_count() {
	i=0
	while test $i -lt 600; do
		test "$(grep -c "$2" "$1")" -ge "$3" && return 0
		sleep 0.1; i=$((i + 1))
	done
	echo "wait_count: gave up on $3 of $2 in $1" >&2
	return 1
}

test_expect_success 'setup: a busybox environment pushed as big@v1; a server, relays' '
	fixture_busybox_rootfs p/rootfs &&
	printf "manifest_version = 1\n[base]\nimage = \"./rootfs\"\n" >p/karapace.toml &&
	karapace build p --name big >/dev/null 2>&1 &&
	kp-init srv >/dev/null &&
	karapace-server --store srv token add pusher --write >wtok && chmod 600 wtok &&
	serve srv srv &&
	XDG_CONFIG_HOME=$HOME/.config && export XDG_CONFIG_HOME &&
	karapace remote add origin "http://$(cat srv.port)" --token-file wtok &&
	karapace --json push big big@v1 >v1.json &&
	relay held "$(cat srv.port)" pack=1048576 &&
	relay pair "$(cat srv.port)" update-ref
'

# mine DIR AS USER: in client home DIR, big@v1 pulled as `mine`, 4 MiB of
# its own random bytes added and committed, remotes origin, held and pair.
mine() {
	client $1 "$2" $3 &&
	at $1 "$2" karapace init >/dev/null &&
	for r in origin:srv held:held pair:pair; do
		at $1 "$2" karapace remote add ${r%%:*} "http://$(cat ${r#*:}.port)" --token-file wtok || return 1
	done &&
	at $1 "$2" karapace pull big@v1 --name mine >/dev/null &&
	at $1 "$2" karapace exec mine -- dd if=/dev/urandom of=/big bs=1M count=4 2>/dev/null &&
	at $1 "$2" karapace commit mine >/dev/null
}

# killed_client DIR AS: a push through the relay held after 1 MiB of the
# pack, SIGKILLed there; nothing lands; the rerun sends only what the
# server lacks.
killed_client() {
	d=$1 as=$2 &&
	objects srv >before && rm -f held $d/cli.pid && wc -l <srv.log >mark &&
	{ at $d "$as" sh -c "echo \$\$ >cli.pid && exec \"\$@\"" sh karapace push mine mine@$d --remote held --snapshots >out 2>err & echo $! >job.pid; } &&
	wait_for held && wait_for $d/cli.pid &&
	kill -KILL $(cat $d/cli.pid) &&
	{ wait $(cat job.pid); echo $? >code; } && : >job.pid &&
	echo 137 >expect && test_cmp expect code &&
	# The server read a pack that ends mid-stream: 400, nothing kept.
	wait_for srv.log "POST /v1/pack 400 pusher" &&
	tail -n +$(($(cat mark) + 1)) srv.log >new &&
	grep "POST /v1/pack 400 pusher" new &&
	objects srv >after && test_cmp before after &&
	ls srv/tmp >tmp && test_must_be_empty tmp &&
	test_path_is_missing srv/refs/envs/mine/$d &&
	kp-fsck --store srv &&
	# The rerun: every object it sends is one the server lacked.
	at $d "$as" karapace --json push mine mine@$d --snapshots >rerun.json &&
	objects srv >after2 &&
	new=$(comm -13 before after2 | wc -l) &&
	grep "\"objects\":$new," rerun.json &&
	bytes=$(sed "s/.*\"bytes\":\([0-9]*\).*/\1/" rerun.json) &&
	obj=$(sed "s/.*\"object\":\"\([0-9a-f]*\)\".*/\1/" rerun.json) &&
	full=$(at $d "" kp-pack-objects --store st/ $obj | wc -c) &&
	test "$bytes" -gt 1048576 && test "$bytes" -lt "$full" &&
	kp-fsck --store srv
}

test_expect_success 'a client SIGKILLed mid-pack: nothing lands; the rerun sends only what is missing' '
	mine r "" &&
	killed_client r ""
'

test_expect_success ROOTLESS 'the same as an unprivileged user' '
	mine rl as_user $KP_TEST_USER &&
	killed_client rl as_user
'

test_expect_success ROOTLESS_SINGLE 'the same as an unprivileged user without a subordinate range' '
	mine rs as_single_user $KP_TEST_USER_SINGLE &&
	killed_client rs as_single_user
'

# killed_server DIR AS: the server SIGKILLed while it reads a pack (the relay
# holds the pack after 1 MiB): no ref, no object from the quarantine, fsck
# clean; restarted on the same address, it sweeps the quarantine and serves.
killed_server() {
	d=$1 as=$2 &&
	at $d "$as" karapace exec mine -- dd if=/dev/urandom of=/big2 bs=1M count=4 2>/dev/null &&
	at $d "$as" karapace commit mine >/dev/null &&
	objects srv >before && find srv/refs -type f | sort >refs.before && rm -f held &&
	{ at $d "$as" karapace push mine mine@$d-2 --remote held --snapshots >out 2>err & echo $! >job.pid; } &&
	wait_for held &&
	# The relay has sent 1 MiB; the server may not have read into it yet.
	i=0 && while ! ls -d srv/tmp/kp-* >quarantine 2>/dev/null; do
		i=$((i + 1)) && test $i -lt 600 && sleep 0.1 || return 1
	done &&
	test_line_count = 1 quarantine &&
	kill -KILL $(cat srv.pid) &&
	{ wait $(cat job.pid); echo $? >code; } && : >job.pid &&
	echo 1 >expect && test_cmp expect code &&
	grep "remote http://127.0.0.1:[0-9]*: " err &&
	objects srv >after && test_cmp before after &&
	find srv/refs -type f | sort >refs.after && test_cmp refs.before refs.after &&
	kp-fsck --store srv &&
	serve srv srv &&
	test_path_is_missing $(cat quarantine) &&
	at $d "$as" karapace push mine mine@$d-2 --snapshots >out &&
	grep "^pushed mine@$d-2 (" out &&
	kp-fsck --store srv
}

test_expect_success 'the server SIGKILLed mid-receive: nothing half-published; restarted, it serves' '
	killed_server r "" &&
	client pulled "" &&
	at pulled "" karapace init >/dev/null &&
	at pulled "" karapace remote add origin "http://$(cat srv.port)" --token-file wtok &&
	at pulled "" karapace pull mine@r-2 --name m >/dev/null &&
	at pulled "" karapace exec m -- true &&
	at pulled "" karapace verify-store
'

test_expect_success ROOTLESS 'the same with an unprivileged client' '
	killed_server rl as_user
'

# race A ASA B ASB ROUNDS T: in each round, A and B push their `mine` with its
# snapshots (different environments) to race@TN at once; the relay lets their update-refs go only
# once both are sent, so both read the tag absent. Exactly one wins; the
# other gets the conflict (exit 1, a 409 naming the winner).
race() {
	i=1 &&
	while test $i -le $5; do
		{ at $1 "$2" karapace --json push mine race@$6$i --remote pair --snapshots >a.out 2>a.err & echo $! >a.pid; } &&
		{ at $3 "$4" karapace --json push mine race@$6$i --remote pair --snapshots >b.out 2>b.err & echo $! >b.pid; } &&
		{ wait $(cat a.pid); echo $? >a.code; wait $(cat b.pid); echo $? >b.code; } &&
		: >a.pid && : >b.pid &&
		cat a.code b.code | sort >codes && printf "0\n1\n" >expect && test_cmp expect codes &&
		if test "$(cat a.code)" = 0; then win=a lose=b; else win=b lose=a; fi &&
		id=$(sed "s/.*\"object\":\"\([0-9a-f]*\)\".*/\1/" $win.out) &&
		test_must_be_empty $lose.out &&
		grep "409: conflict: refs/envs/race/$6$i is $id on the server, not absent$" $lose.err &&
		karapace ls-remote >ls && grep "^race@$6$i	$id$" ls &&
		i=$((i + 1)) || return 1
	done &&
	kp-fsck --store srv
}

test_expect_success 'two pushes of one tag at once, 12 rounds: exactly one wins each' '
	mine r2 "" &&
	race r "" r2 "" 12 r
'

test_expect_success ROOTLESS 'the same between root and an unprivileged user' '
	race r "" rl as_user 12 u
'

test_expect_success 'a request declaring a huge body, an endless header line: refused, the server lives' '
	python3 - $(cat srv.port) <<-\EOF &&
	import socket, sys
	host, port = sys.argv[1].split(":")
	s = socket.create_connection((host, int(port)))
	s.sendall(b"GET /v1/refs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n" + b"x" * 2000)
	assert s.recv(100).startswith(b"HTTP/1.1 401 "), "no 401"
	s = socket.create_connection((host, int(port)))
	s.settimeout(60)
	try:
	    s.sendall(b"GET /" + b"a" * 1000000)
	    answer = s.recv(100)
	except (ConnectionResetError, BrokenPipeError):
	    answer = b""
	assert answer == b"", "an answer to an endless line"
	EOF
	karapace ls-remote >ls && grep "^big@v1	" ls &&
	kill -0 $(cat srv.pid)
'

test_expect_success 'a slow client is cut off (408) and frees the only worker' '
	kp-init slow >/dev/null &&
	karapace-server --store slow token add t --write >stok && chmod 600 stok &&
	serve slow slow --threads 1 --timeout 2 --min-rate 100 &&
	cat >trickle.py <<-\EOF &&
	import socket, sys, time
	host, port = sys.argv[1].split(":")
	s = socket.create_connection((host, int(port)))
	s.sendall(b"POST /v1/lacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 5000\r\n\r\n" % sys.argv[2].encode())
	s.settimeout(0.5)
	answer = b""
	for i in range(600):
	    try:
	        s.sendall(b"b")
	        answer += s.recv(1000)
	        if answer:
	            break
	    except socket.timeout:
	        pass
	    except OSError:
	        break
	print(answer.split(b"\r\n")[0].decode())
	EOF
	{ python3 trickle.py $(cat slow.port) $(cat stok) >trickle.out & echo $! >trickle.pid; } &&
	curl -s -o refs -w "%{http_code}\n" -H "Authorization: Bearer $(cat stok)" "http://$(cat slow.port)/v1/refs" >code &&
	echo 200 >expect && test_cmp expect code &&
	wait_for trickle.out "HTTP/1.1 408" &&
	wait_for slow.log "POST /v1/lacks 408 t " &&
	# Idle for longer than --timeout, it still accepts connections.
	sleep 3 &&
	curl -s -o refs -w "%{http_code}\n" -H "Authorization: Bearer $(cat stok)" "http://$(cat slow.port)/v1/refs" >code &&
	test_cmp expect code
'

test_expect_success 'a client dribbling its request head is cut off (408); the server serves on' '
	cat >dribble.py <<-\EOF &&
	import socket, sys
	host, port = sys.argv[1].split(":")
	s = socket.create_connection((host, int(port)))
	s.sendall(b"GET /v1/refs HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	s.settimeout(0.5)
	answer = b""
	# one byte every half second: each read is within --timeout 2, the head
	# never ends; 40 bytes (20 s) unless the server cuts it off first
	for i in range(40):
	    try:
	        s.sendall(b"a")
	        answer += s.recv(1000)
	        if answer:
	            break
	    except socket.timeout:
	        pass
	    except OSError:
	        break
	print(answer.split(b"\r\n")[0].decode() or "no answer after %d bytes" % (i + 1))
	EOF
	python3 dribble.py $(cat slow.port) >dribble.out &&
	echo "HTTP/1.1 408 Request Timeout" >expect &&
	test_cmp expect dribble.out &&
	curl -s -o refs -w "%{http_code}\n" -H "Authorization: Bearer $(cat stok)" "http://$(cat slow.port)/v1/refs" >code &&
	echo 200 >expect && test_cmp expect code
'

test_expect_success 'over --max-requests: 503 with Retry-After; a client waits and retries' '
	kill $(cat slow.pid) && : >slow.pid && rm slow.port &&
	serve slow slow --threads 1 --max-requests 1 --timeout 60 &&
	cat >occupy.py <<-\EOF &&
	import socket, sys, time
	host, port = sys.argv[1].split(":")
	s = socket.create_connection((host, int(port)))
	s.sendall(b"POST /v1/lacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n" % sys.argv[2].encode())
	open("occupied", "w").close()
	time.sleep(600)
	EOF
	{ python3 occupy.py $(cat slow.port) $(cat stok) & echo $! >occupier.pid; } &&
	wait_for occupied &&
	# Until the occupier holds the only worker, a request is served.
	i=0 && while test $i -lt 100; do
		curl -s -D headers -o reply -w "%{http_code}\n" -H "Authorization: Bearer $(cat stok)" "http://$(cat slow.port)/v1/refs" >code &&
		if test "$(cat code)" = 503; then break; fi && sleep 0.1 && i=$((i + 1)) || return 1
	done &&
	echo 503 >expect && test_cmp expect code &&
	grep -i "^Retry-After: 1" headers &&
	grep "^busy: 1 requests in progress; retry after 1 s$" reply &&
	n=$(grep -c "GET /v1/refs 503" slow.log) &&
	m=$(grep -c "GET /v1/refs 200 t " slow.log) &&
	karapace remote add busy "http://$(cat slow.port)" --token-file stok &&
	{ karapace ls-remote --remote busy >busy.out 2>busy.err & echo $! >ls.pid; } &&
	wait_count slow.log "GET /v1/refs 503" $((n + 1)) &&
	kill $(cat occupier.pid) && : >occupier.pid &&
	wait $(cat ls.pid) && : >ls.pid &&
	test_must_be_empty busy.out &&
	# The server logs a request once it has answered it: the retry'"'"'s
	# line may come just after the client is done.
	wait_count slow.log "GET /v1/refs 200 t " $((m + 1))
'

test_expect_success 'a pulled environment'"'"'s relative mount never resolves against the puller'"'"'s directory' '
	mkdir -p q/data && echo host >q/data/f &&
	cp -a p/rootfs q/ &&
	printf "manifest_version = 1\n[base]\nimage = \"./rootfs\"\n[mounts]\nd = \"./data:/d\"\n" >q/karapace.toml &&
	karapace build q --name rel >/dev/null 2>&1 &&
	(cd q && karapace exec rel -- cat /d/f) >out && echo host >expect && test_cmp expect out &&
	karapace push rel rel@v1 >/dev/null &&
	pull_rel() {
		at $1 "$2" karapace pull rel@v1 --name rel >/dev/null &&
		at $1 "$2" karapace trust rel >/dev/null &&
		mkdir -p $1/data && echo puller >$1/data/f && chmod -R a+rX $1/data &&
		test_expect_code 125 at $1 "$2" karapace exec rel -- cat /d/f >out 2>err &&
		test_must_be_empty out &&
		grep "mounts.d data: a relative source needs the manifest.s directory, and a remote environment.s is not here" err &&
		test_expect_code 125 at $1 "$2" karapace exec --trust rel -- cat /d/f 2>err &&
		grep "a relative source needs the manifest" err
	} &&
	pull_rel pulled "" &&
	if test_have_prereq ROOTLESS; then pull_rel rl as_user; fi
'

test_expect_success 'progress on a terminal (bytes, objects, rate); none otherwise; --json the same' '
	karapace exec big -- dd if=/dev/urandom of=/p bs=1M count=2 2>/dev/null &&
	karapace commit big >/dev/null &&
	script -qec "karapace --json push big big@bar --snapshots" /dev/null >tty.out &&
	grep "push .*objects.*B/s" tty.out &&
	grep "\"env_id\":\"" tty.out &&
	at pulled "" karapace --json pull big@bar --name bar >json 2>err &&
	test_must_be_empty err && grep "\"env_id\":\"" json &&
	client p2 "" && at p2 "" karapace init >/dev/null &&
	at p2 "" karapace remote add origin "http://$(cat srv.port)" --token-file wtok &&
	at p2 "" script -qec "karapace pull big@bar --name bar" /dev/null >tty.out &&
	grep "pull .*objects.*B/s" tty.out &&
	grep "pulled big@bar as" tty.out
'

test_expect_success 'SIGTERM: the servers stop cleanly' '
	for s in srv slow; do
		kill -TERM $(cat $s.pid) && wait_for $s.log "karapace-server: stopped" || return 1
	done &&
	kp-fsck --store srv &&
	kill $(cat held.pid) $(cat pair.pid) && : >held.pid && : >pair.pid
'

test_done

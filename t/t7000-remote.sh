#!/bin/sh
test_description='remotes: karapace-server, push and pull between stores and users, and hostile input'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

# The server started below goes with the script, however it ends.
trap 'test -s "$TRASH_DIRECTORY/pid" && kill $(cat "$TRASH_DIRECTORY/pid") 2>/dev/null' EXIT

# objects DIR: the object files of a store, sorted.
objects() {
	(cd "$1/objects" && find . -type f | sort)
}

# http CODE METHOD PATH [TOKEN-FILE] [BODY-FILE]: curl, checking the status.
http() {
	code=$1 method=$2 path=$3 tok=$4 body=$5 &&
	set -- -s --path-as-is -o reply -w "%{http_code}\n" -X "$method" &&
	if test -n "$tok"; then set -- "$@" -H "Authorization: Bearer $(cat "$tok")"; fi &&
	if test -n "$body"; then set -- "$@" --data-binary "@$body"; fi &&
	curl "$@" "http://$(cat port)$path" >status &&
	echo "$code" >expect.status && test_cmp expect.status status
}

test_expect_success 'setup: an environment, a server store with a write and a read token' '
	write_manifest web "$IMAGE" &&
	karapace build web --name web >env_id 2>/dev/null &&
	kp-init srv >/dev/null &&
	karapace-server --store srv token add pusher --write >wtok &&
	karapace-server --store srv token add reader >rtok &&
	chmod 600 wtok rtok &&
	grep -q "^kpt_[0-9a-f]\{64\}$" wtok &&
	! grep -r "$(cat wtok)" srv &&
	karapace-server --store srv token list >tokens &&
	printf "pusher write\nreader read\n" >expect && test_cmp expect tokens
'

test_expect_success 'the server listens on loopback, port 0 picks a port and prints it' '
	{ karapace-server --store srv --listen 127.0.0.1:0 >port 2>log 3>&- 4>&- & echo $! >pid; } &&
	for i in 1 2 3 4 5 6 7 8 9 10; do test -s port && break; sleep 0.2; done &&
	grep -q "^127\.0\.0\.1:[1-9][0-9]*$" port &&
	XDG_CONFIG_HOME=$HOME/.config && export XDG_CONFIG_HOME
'

test_expect_success 'remote add refuses a token file others can read' '
	chmod 644 wtok &&
	test_expect_code 1 karapace remote add origin "http://$(cat port)" --token-file wtok 2>err &&
	grep "wtok: a token file must be readable by its owner only" err &&
	test_path_is_missing .config/karapace/config.toml &&
	chmod 600 wtok &&
	karapace remote add origin "http://$(cat port)" --token-file wtok &&
	karapace remote add ro "http://$(cat port)" --token-file rtok &&
	karapace remote add anon "http://$(cat port)" &&
	karapace remote list >list &&
	printf "anon\thttp://%s\norigin\thttp://%s\nro\thttp://%s\n" $(cat port) $(cat port) $(cat port) >expect &&
	test_cmp expect list
'

test_expect_success 'a tag may not look like a digest or a pin' '
	test_expect_code 1 karapace push web web@sha256 2>err &&
	grep "may not begin with a digest algorithm" err &&
	test_expect_code 1 karapace push web web@blake3x 2>err &&
	test_expect_code 1 karapace pull "web@../x" 2>err &&
	grep "TAG is 1 to 128" err
'

test_expect_success 'push sends the environment; the server store is fsck-clean' '
	karapace push web web@v1 >out &&
	grep "^pushed web@v1 ([1-9][0-9]* objects, [1-9][0-9]* bytes)$" out &&
	kp-fsck --store srv &&
	karapace ls-remote >ls &&
	grep "^web@v1	[0-9a-f]\{64\}$" ls &&
	grep " 200 pusher " log
'

test_expect_success 're-push sends nothing: no pack, no ref update' '
	: >log.mark && wc -l <log >before &&
	karapace push web web@v1 >out &&
	echo "up to date web@v1 (0 objects, 0 bytes)" >expect && test_cmp expect out &&
	tail -n +$(($(cat before) + 1)) log >new &&
	! grep "/v1/pack\|/v1/update-ref" new &&
	test_line_count = 2 new
'

test_expect_success 'pull into another store: same env_id, runs at once, verify-store clean, origin remote' '
	KARAPACE_STORE=$HOME/b karapace init >/dev/null &&
	KARAPACE_STORE=$HOME/b karapace pull web@v1 --remote ro --name w2 >out &&
	grep "^pulled web@v1 as $(cut -c1-12 env_id) ([1-9][0-9]* objects, [1-9][0-9]* bytes)$" out &&
	KARAPACE_STORE=$HOME/b karapace --json inspect w2 >j &&
	grep "\"env_id\":\"$(cat env_id)\"" j && grep "\"origin\":\"remote\"" j &&
	KARAPACE_STORE=$HOME/b karapace exec w2 -- true &&
	KARAPACE_STORE=$HOME/b karapace verify-store &&
	KARAPACE_STORE=$HOME/b karapace pull web@v1 --remote ro >out &&
	grep "^already here: web@v1 as $(cut -c1-12 env_id) (0 objects, 0 bytes)$" out
'

test_expect_success 'no token: 401; a read token on push: 403; nothing changes' '
	test_expect_code 1 karapace ls-remote --remote anon 2>err &&
	grep "401: a token is needed" err &&
	test_expect_code 1 karapace push web web@v2 --remote ro 2>err &&
	grep "403: token reader may read, not write" err &&
	karapace ls-remote >ls && ! grep v2 ls
'

test_expect_success 'update-ref is compare-and-swap: a stale old value is a 409 conflict' '
	id=$(cut -f2 ls) &&
	echo "refs/envs/web/v1 - $id" >body &&
	http 409 POST /v1/update-ref wtok body && grep "^conflict: refs/envs/web/v1 is $id on the server, not absent" reply &&
	printf "%064d" 0 >zero &&
	echo "refs/envs/web/v1 $(cat zero) $id" >body &&
	http 409 POST /v1/update-ref wtok body &&
	echo "refs/envs/web/v3 - $(cat zero)" >body &&
	http 400 POST /v1/update-ref wtok body && grep "is not on the server" reply
'

test_expect_success 'ref names outside the ref grammar are refused' '
	id=$(cut -f2 ls) &&
	for r in "refs/envs/../x" "refs//x" "/refs/x" "refs/x/.hidden" "refs/x.lock" "etc/passwd" "refs/a@{b"; do
		echo "$r - $id" >body &&
		http 400 POST /v1/update-ref wtok body || return 1
	done &&
	printf "refs/a\001b - %s\n" $id >body && http 400 POST /v1/update-ref wtok body &&
	find srv/refs -type f | sort >refs && echo srv/refs/envs/web/v1 >expect && test_cmp expect refs
'

test_expect_success 'traversal, unknown versions and oversize bodies are refused' '
	head -c 9000000 /dev/zero >big &&
	http 413 POST /v1/lacks rtok big && grep "over the server.s limit of 8388608 bytes" reply &&
	http 400 GET /v1/../../etc/passwd rtok && grep "no traversal" reply &&
	http 400 GET /v1/%2e%2e/refs rtok &&
	http 400 GET /v1/refs%2f..%2f.. rtok &&
	http 400 GET //v1/refs rtok &&
	http 404 GET /v2/refs rtok && grep "unknown protocol version" reply &&
	http 405 GET /v1/pack wtok
'

test_expect_success 'a truncated pack and a lying object are refused; the server store stays clean' '
	mkdir -p fresh && echo fresh >fresh/f && kp-init p >/dev/null &&
	layer=$(kp-write-layer --store p fresh | tail -1) &&
	kp-pack-objects --store p $layer >pack &&
	objects srv >before &&
	head -c $(($(wc -c <pack) - 5)) pack >cut &&
	http 400 POST /v1/pack wtok cut && grep "bad pack: truncated" reply &&
	blob=$(kp-rev-parse --store p $layer:f) &&
	chmod u+w p/objects/$(echo $blob | cut -c1-2)/*.blob &&
	echo FRESH >p/objects/$(echo $blob | cut -c1-2)/$(echo $blob | cut -c3-).blob &&
	kp-pack-objects --store p $blob >lying &&
	http 400 POST /v1/pack wtok lying && grep "its bytes hash to" reply &&
	http 401 POST /v1/pack "" pack &&
	objects srv >after && test_cmp before after &&
	kp-fsck --store srv && ls srv/tmp >tmp && test_must_be_empty tmp
'

test_expect_success 'the server kept serving; kp-fetch-pack and kp-unpack-objects agree' '
	kp-init f >/dev/null &&
	kp-fetch-pack --store f --token-file rtok "http://$(cat port)" refs/envs/web/v1 >out &&
	kp-fsck --store f &&
	kp-pack-objects --store srv refs/envs/web/v1 | kp-unpack-objects --store p >out &&
	read n new <out && test "$n" -gt 0 && test "$n" = "$new"
'

# rootless AS USER DIR: pull into a store of the user, run it, push it back
# under another tag.
rootless() {
	(as=$1 h=$3 &&
	 mkdir -p $h && cp rtok wtok $h/ &&
	 chown -R $2 $h && cd $h && HOME=$PWD XDG_CONFIG_HOME=$PWD/.config KARAPACE_STORE=$PWD/st &&
	 export HOME XDG_CONFIG_HOME KARAPACE_STORE &&
	 $as karapace init >/dev/null &&
	 $as karapace remote add origin "http://$(cat ../port)" --token-file wtok &&
	 $as karapace pull web@v1 --name mine >out &&
	 grep "^pulled web@v1 as $(cut -c1-12 ../env_id)" out &&
	 $as karapace exec mine -- true &&
	 $as karapace verify-store &&
	 $as karapace push mine mine@$2 >out && grep "^pushed mine@$2 (" out)
}

test_expect_success ROOTLESS 'as an unprivileged user: pull, run, push' '
	rootless as_user $KP_TEST_USER rl
'

test_expect_success ROOTLESS_SINGLE 'as an unprivileged user without a subordinate range: the same' '
	rootless as_single_user $KP_TEST_USER_SINGLE rs
'

test_expect_success 'SIGTERM: the server stops cleanly' '
	kill -TERM $(cat pid) &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do kill -0 $(cat pid) 2>/dev/null || break; sleep 0.2; done &&
	! kill -0 $(cat pid) 2>/dev/null &&
	grep "karapace-server: stopped" log &&
	kp-fsck --store srv
'

test_done

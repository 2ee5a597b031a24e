#!/bin/sh
test_description='karapace quick: a manifest kept in the store, built once, found again without resolving; presets, mounts of the current directory, bad input; as root and rootless'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_busybox_sandbox

# json_field FIELD <FILE: one string or literal field of a one-line JSON object.
json_field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}

# store_state: every path of the store, and every file's content hash.
store_state() {
	(cd "$KARAPACE_STORE" && find . | sort && find . -type f | sort | xargs cat | b3sum)
}

test_expect_success 'setup: a busybox image in the store as bb' '
	fixture_busybox_rootfs rootfs &&
	karapace image import ./rootfs bb >/dev/null
'

test_expect_success 'the first quick writes its manifest into the store, builds, and runs CMD' '
	mkdir here && (cd here && karapace quick bb -- sh -c "echo hi; echo kept >/note") >out 2>err &&
	echo hi >expect && test_cmp expect out &&
	grep "^karapace: built " err &&
	test -z "$(ls -A here)" &&
	ls store/quick >keys && test_line_count = 1 keys &&
	key=$(cat keys) &&
	test "$(b3sum --no-names store/quick/$key/karapace.toml)" = "$key" &&
	grep "^image = \"bb\"$" store/quick/$key/karapace.toml &&
	test_path_is_file store/quick/$key/karapace.lock &&
	karapace list >list && grep -c built list >n && echo 1 >one && test_cmp one n &&
	awk "NR == 2 {print \$4}" list >id &&
	echo "$(cat id)" >expect && test_cmp expect store/quick/$key/env &&
	karapace --json inspect $(cat id) >json &&
	grep "\"manifest\":\"$HOME/store/quick/$key/karapace.toml\"" json &&
	grep "\"origin\":\"local\"" json
'

test_expect_success 'a second quick with the same arguments reuses it: same env_id, no new layer, no build' '
	find store/objects -name "*.layer" | sort >layers.before &&
	karapace quick bb -- cat /note >out 2>err &&
	echo kept >expect && test_cmp expect out &&
	test_must_be_empty err &&
	find store/objects -name "*.layer" | sort >layers.after &&
	test_cmp layers.before layers.after &&
	karapace --json quick bb >json &&
	json_field env_id <json >id2 && test_cmp id id2 &&
	json_field reused <json >r && echo true >expect && test_cmp expect r &&
	karapace list >list && grep -c built list >n && test_cmp one n
'

test_expect_success 'the reuse path resolves nothing: it runs with the lock gone' '
	key=$(cat keys) &&
	mv store/quick/$key/karapace.lock lock.saved &&
	test_when_finished "mv lock.saved store/quick/$key/karapace.lock" &&
	karapace quick bb -- true 2>err &&
	test_must_be_empty err &&
	test_path_is_missing store/quick/$key/karapace.lock
'

test_expect_success 'quick passes exit statuses through' '
	test_expect_code 7 karapace quick bb -- sh -c "exit 7" &&
	test_expect_code 127 karapace quick bb -- no-such-program
'

test_expect_success '--preset minimal is the default; --template and -t mean the same' '
	for p in "--preset minimal" "--template minimal" "-t minimal"; do
		karapace --json quick bb $p >json &&
		json_field env_id <json >idp && test_cmp id idp || return 1
	done &&
	ls store/quick >keys2 && test_cmp keys keys2
'

test_expect_success 'different arguments make a different environment' '
	karapace --json quick bb -m /tmp:/hosttmp:ro --name other >json &&
	json_field env_id <json >id3 &&
	test "$(cat id)" != "$(cat id3)" &&
	json_field reused <json >r && echo false >expect && test_cmp expect r &&
	karapace list >list && grep -c built list >n && echo 2 >expect && test_cmp expect n &&
	grep " other " list &&
	ls store/quick >keys3 && test_line_count = 2 keys3
'

test_expect_success 'a . mount is the directory quick is run from, wherever that is' '
	mkdir p1 p2 && echo one >p1/f && echo two >p2/f &&
	(cd p1 && karapace quick bb -m .:/work -- cat /work/f) >out &&
	echo one >expect && test_cmp expect out &&
	(cd p2 && karapace quick bb -m .:/work -- sh -c "cat /work/f; echo back >/work/g") >out 2>err &&
	echo two >expect && test_cmp expect out &&
	test_must_be_empty err &&
	echo back >expect && test_cmp expect p2/g &&
	(cd p1 && karapace --json quick bb -m .:/work) >j1 &&
	(cd p2 && karapace --json quick bb -m .:/work) >j2 &&
	json_field env_id <j1 >e1 && json_field env_id <j2 >e2 && test_cmp e1 e2
'

test_expect_success 'exec of that environment does not take the store for .: the policy refuses it' '
	test_expect_code 125 karapace exec $(cat e1) -- true 2>err &&
	grep "mounts.quick1" err
'

test_expect_success 'the dev-rust alias is rust-dev: the same manifest, refused alike on an image without a package manager' '
	store_state >before &&
	test_expect_code 1 karapace quick bb --preset dev-rust -- true 2>err1 &&
	test_expect_code 1 karapace quick bb --template rust-dev -- true 2>err2 &&
	test_cmp err1 err2 &&
	test_line_count = 1 err1 &&
	grep "image \"bb\": no package manager Karapace knows.*cannot install build-essential" err1 &&
	store_state >after && test_cmp before after
'

test_expect_success 'bad input: one line, its exit status, the store unchanged' '
	store_state >before &&
	test_expect_code 64 karapace quick bb --preset nope 2>err &&
	test_line_count = 1 err && grep "unknown preset \"nope\"; expected one of minimal, dev" err &&
	test_expect_code 2 karapace quick bb -p "bad name" 2>err &&
	test_line_count = 1 err && grep "system.packages.*\"bad name\"" err &&
	test_expect_code 2 karapace quick bb -m nocolon 2>err &&
	test_line_count = 1 err && grep "mounts.quick1" err &&
	test_expect_code 1 karapace quick no-such-image -- true 2>err &&
	test_line_count = 1 err && grep "no image named \"no-such-image\"" err &&
	test_expect_code 64 karapace --json quick bb -- true 2>err &&
	grep "runs nothing" err &&
	store_state >after && test_cmp before after
'

test_expect_success 'a destroyed quick environment is built again by the next quick' '
	karapace destroy $(cat id) >/dev/null &&
	karapace quick bb -- true 2>err &&
	grep "^karapace: built " err &&
	karapace --json quick bb >json && json_field env_id <json >id4 && test_cmp id id4
'

test_expect_success 'quick --help and the completions know it' '
	karapace quick --help >help &&
	grep -- "--preset NAME" help &&
	karapace completions bash >c.bash && grep -w quick c.bash
'

test_expect_success SUBUID 'rootless with a subordinate range: build, reuse, a . mount' '
	mkdir rl && fixture_busybox_rootfs rl/rootfs && mkdir rl/w && echo mine >rl/w/f &&
	chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace quick ./rootfs -- sh -c "id -u; echo x >/x" >out 2>err &&
	 echo 0 >expect && test_cmp expect out && grep "^karapace: built " err &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace quick ./rootfs -- cat /x >out 2>err &&
	 echo x >expect && test_cmp expect out && test_must_be_empty err &&
	 ls st/quick >k && test_line_count = 1 k &&
	 (cd w && as_user env KARAPACE_STORE="$PWD/../st" karapace quick ../rootfs -m .:/w -- cat /w/f) >out &&
	 echo mine >expect && test_cmp expect out &&
	 as_user env KARAPACE_STORE="$PWD/st" karapace list >list && grep -c built list >n &&
	 echo 2 >expect && test_cmp expect n)
'

test_expect_success ROOTLESS_SINGLE 'rootless with a single-id map: build and reuse' '
	mkdir rs && fixture_busybox_rootfs rs/rootfs && chown -R $KP_TEST_USER_SINGLE rs &&
	(cd rs &&
	 as_single_user env KARAPACE_STORE="$PWD/st" karapace --json quick ./rootfs >j1 &&
	 as_single_user env KARAPACE_STORE="$PWD/st" karapace quick ./rootfs -- cat /proc/self/uid_map >map &&
	 read inside outside count <map && test "$inside $outside $count" = "0 0 1" &&
	 as_single_user env KARAPACE_STORE="$PWD/st" karapace --json quick ./rootfs >j2 &&
	 json_field env_id <j1 >e1 && json_field env_id <j2 >e2 && test_cmp e1 e2 &&
	 json_field reused <j2 >r && echo true >expect && test_cmp expect r)
'

test_done

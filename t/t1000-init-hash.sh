#!/bin/sh
test_description='kp-init and kp-hash-object'
. ./lib.sh

test_expect_success 'kp-init creates a store with a version file' '
	kp-init store >out &&
	echo "Initialized empty Karapace store in store" >expect &&
	test_cmp expect out &&
	echo "karapace-store 1" >expect &&
	test_cmp expect store/version &&
	for d in objects refs meta tmp cache locks; do test_path_is_dir store/$d || return 1; done
'

test_expect_success 'kp-init on an existing store keeps it' '
	echo data >f && kp-hash-object -w --store store f >id &&
	kp-init store >out &&
	echo "Reinitialized existing Karapace store in store" >expect &&
	test_cmp expect out &&
	kp-cat-object --store store -e "$(cat id)"
'

test_expect_success 'store location: --store, then KARAPACE_STORE, then XDG_DATA_HOME, then HOME' '
	kp-init >out &&
	test_path_is_file "$HOME/.local/share/karapace/version" &&
	XDG_DATA_HOME="$HOME/xdg" kp-init &&
	test_path_is_file xdg/karapace/version &&
	KARAPACE_STORE="$HOME/envstore" XDG_DATA_HOME="$HOME/xdg2" kp-init &&
	test_path_is_file envstore/version && test_path_is_missing xdg2 &&
	KARAPACE_STORE="$HOME/envstore" kp-init --store flagstore &&
	test_path_is_file flagstore/version
'

test_expect_success 'blob ids equal b3sum' '
	printf "hello\n" >a && printf "" >empty && head -c 3000000 /dev/urandom >big &&
	kp-hash-object a empty big >actual &&
	b3sum --no-names a empty big >expect &&
	test_cmp expect actual
'

test_expect_success '--stdin and --stdin-paths' '
	kp-hash-object --stdin <a >actual &&
	b3sum --no-names a >expect && test_cmp expect actual &&
	printf "a\nbig\n" | kp-hash-object --stdin-paths >actual &&
	b3sum --no-names a big >expect && test_cmp expect actual
'

test_expect_success 'hashing needs no store; -w writes the blob' '
	id=$(kp-hash-object a) &&
	test_must_fail kp-cat-object --store store -e $id &&
	kp-hash-object -w --store store a big >ids &&
	for id in $(cat ids); do kp-cat-object --store store blob $id >out || return 1; done &&
	test_cmp big out &&
	echo blob >expect && kp-cat-object --store store -t $id >actual && test_cmp expect actual &&
	wc -c <big | tr -d " " >expect && kp-cat-object --store store -s $id >actual && test_cmp expect actual
'

test_expect_success 'hash-object -w --stdin stores standard input' '
	id=$(printf piped | kp-hash-object -w --stdin --store store) &&
	printf piped >expect &&
	kp-cat-object --store store -p $id >actual &&
	test_cmp expect actual
'

test_expect_success 'bad input: missing file, directory, no arguments, conflicting options' '
	test_expect_code 1 kp-hash-object nothere 2>err &&
	grep "nothere" err &&
	test_expect_code 1 kp-hash-object store 2>err &&
	grep "not a regular file" err &&
	test_expect_code 64 kp-hash-object 2>err &&
	grep "usage: kp-hash-object" err &&
	test_expect_code 64 kp-hash-object --stdin --stdin-paths </dev/null &&
	test_expect_code 64 kp-hash-object --bogus
'

test_expect_success 'every kp command has --help' '
	for c in kp-init kp-hash-object kp-cat-object kp-write-layer kp-ls-layer \
		kp-checkout-layer kp-diff-layer kp-rev-parse kp-update-ref kp-show-ref \
		kp-fsck kp-prune; do
		$c --help >out || return 1
		grep "^usage: $c" out || return 1
	done
'

test_expect_success 'a store of another format version is refused with exit 3' '
	kp-init other && chmod u+w other/version &&
	echo "karapace-store 2" >other/version &&
	test_expect_code 3 kp-fsck --store other 2>err &&
	grep "not supported" err &&
	test_expect_code 3 kp-show-ref --store nonexistent 2>err &&
	grep "not a Karapace store" err
'

test_done

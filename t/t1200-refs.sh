#!/bin/sh
test_description='kp-rev-parse, kp-update-ref, kp-show-ref, kp-cat-object'
. ./lib.sh

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_expect_success 'setup two layers' '
	kp-init >/dev/null &&
	mkdir -p a/sub && echo one >a/sub/f && echo top >a/top &&
	mkdir -p b && echo two >b/f &&
	kp-write-layer a >A && kp-write-layer b >B
'

test_expect_success 'rev-parse: full id, prefix, ^{tree}, paths' '
	A=$(cat A) &&
	test "$(kp-rev-parse $A)" = $A &&
	test "$(kp-rev-parse $(echo $A | cut -c1-10))" = $A &&
	kp-rev-parse --kind $A >out && echo "$A layer" >expect && test_cmp expect out &&
	t=$(kp-rev-parse "$A^{tree}") &&
	test "$(kp-cat-object -t $t)" = tree &&
	test "$(kp-rev-parse $A:sub/f)" = "$(kp-hash-object a/sub/f)" &&
	test "$(kp-rev-parse --kind $A:sub | cut -d" " -f2)" = tree &&
	test "$(kp-rev-parse --short $A)" = "$(echo $A | cut -c1-12)" &&
	test "$(kp-rev-parse --short=6 $A)" = "$(echo $A | cut -c1-6)"
'

test_expect_success 'rev-parse: unknown and ambiguous revisions' '
	test_expect_code 1 kp-rev-parse nosuchname 2>err && grep "unknown revision" err &&
	test_expect_code 1 kp-rev-parse $(cat A):nope 2>err && grep "not found" err &&
	test_expect_code 1 kp-rev-parse 0000000000000000000000000000000000000000000000000000000000000000 &&
	test_expect_code 64 kp-rev-parse --short=2 $(cat A) &&
	mkdir blobs && for i in $(seq 1 1500); do echo $i >blobs/$i; done &&
	kp-hash-object -w blobs/* >ids &&
	p=$(cut -c1-4 ids | sort | uniq -d | head -n 1) &&
	test -n "$p" &&
	test_expect_code 1 kp-rev-parse $p 2>err && grep "ambiguous" err
'

test_expect_success 'update-ref creates, and refs resolve by short name' '
	kp-update-ref refs/tags/v1 $(cat A) &&
	test "$(kp-rev-parse v1)" = "$(cat A)" &&
	test "$(kp-rev-parse refs/tags/v1)" = "$(cat A)" &&
	echo "$(cat A)" >expect && test_cmp expect store/refs/tags/v1
'

test_expect_success 'update-ref compare-and-swap' '
	test_expect_code 1 kp-update-ref refs/tags/v1 $(cat B) $(cat B) 2>err &&
	grep "refs/tags/v1 is at $(cat A), expected at $(cat B)" err &&
	test_expect_code 1 kp-update-ref refs/tags/v1 $(cat B) "" &&
	kp-update-ref refs/tags/v1 $(cat B) $(cat A) &&
	test "$(kp-rev-parse v1)" = "$(cat B)" &&
	kp-update-ref refs/tags/new $(cat A) "" &&
	test "$(kp-rev-parse new)" = "$(cat A)"
'

test_expect_success 'concurrent updates with the same old value: exactly one wins' '
	kp-update-ref refs/race $(cat A) &&
	for i in 1 2 3 4 5 6 7 8; do
		(kp-update-ref refs/race $(cat B) $(cat A) 2>/dev/null && echo won >>winners) &
	done &&
	wait &&
	test_line_count = 1 winners &&
	test "$(kp-rev-parse refs/race)" = "$(cat B)"
'

test_expect_success 'a held lock is refused; a lock file left by a crash is taken over' '
	flock --no-fork store/refs/tags/v1.lock sleep 30 & pid=$! &&
	while ! test -e store/refs/tags/v1.lock; do sleep 0.05; done && sleep 0.2 &&
	test_expect_code 1 kp-update-ref refs/tags/v1 $(cat B) 2>err &&
	grep "refs/tags/v1 is being updated by another process" err &&
	kill $pid && wait $pid 2>/dev/null;
	echo 99999 >store/refs/tags/v1.lock &&
	kp-update-ref refs/tags/v1 $(cat A) &&
	test "$(kp-rev-parse v1)" = "$(cat A)" &&
	test_path_is_missing store/refs/tags/v1.lock
'

test_expect_success 'show-ref lists and filters; --verify' '
	kp-show-ref >out &&
	cat >expect <<-EOF &&
	$(cat B) refs/race
	$(cat A) refs/tags/new
	$(cat A) refs/tags/v1
	EOF
	test_cmp expect out &&
	kp-show-ref v1 >out && test_line_count = 1 out &&
	kp-show-ref --verify refs/tags/v1 >out && test_line_count = 1 out &&
	test_expect_code 1 kp-show-ref --verify v1 &&
	test_expect_code 1 kp-show-ref nothing
'

test_expect_success 'update-ref refuses bad names and missing objects; -d deletes' '
	test_expect_code 1 kp-update-ref refs/../x $(cat A) 2>err && grep "invalid ref name" err &&
	test_expect_code 1 kp-update-ref tags/x $(cat A) 2>err && grep "must start with refs/" err &&
	test_expect_code 1 kp-update-ref "refs/a b" $(cat A) &&
	test_expect_code 1 kp-update-ref refs/x.lock $(cat A) &&
	test_expect_code 1 kp-update-ref refs/x 0123456789012345678901234567890123456789012345678901234567890123 &&
	test_expect_code 1 kp-update-ref -d refs/tags/new $(cat B) &&
	kp-update-ref -d refs/tags/new $(cat A) &&
	test_path_is_missing store/refs/tags/new
'

test_expect_success 'cat-object: -t, -s, -e, -p and KIND' '
	A=$(cat A) &&
	kp-cat-object -p $A >layer.json && grep "\"kind\": \"base\"" layer.json &&
	kp-cat-object layer $A >raw && head -c 11 raw >magic && printf "kp-layer 1\n" >expect && test_cmp expect magic &&
	test "$(kp-cat-object -s $A)" = "$(wc -c <raw | tr -d " ")" &&
	kp-cat-object -p $A: >tree && grep "	sub$" tree && grep "	top$" tree &&
	kp-cat-object -p $A:top >content && test_cmp a/top content &&
	test_expect_code 1 kp-cat-object -e ffffffff &&
	test_expect_code 1 kp-cat-object tree $A 2>err && grep "is a layer, not a tree" err &&
	test_expect_code 64 kp-cat-object -t -s $A &&
	test_expect_code 64 kp-cat-object bogus $A
'

test_done

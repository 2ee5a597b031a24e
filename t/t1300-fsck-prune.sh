#!/bin/sh
test_description='kp-fsck finds damage; kp-prune removes what nothing reaches'
. ./lib.sh

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

obj() { find store/objects -name "$(echo $1 | cut -c3-).$2"; }

test_expect_success 'setup' '
	kp-init >/dev/null &&
	mkdir -p keep/d && echo kept >keep/d/f && echo other >keep/g &&
	mkdir -p drop && echo dropped >drop/only-here &&
	K=$(kp-write-layer keep) && echo $K >K &&
	D=$(kp-write-layer drop) && echo $D >D &&
	kp-update-ref refs/tags/keep $K
'

test_expect_success 'a sound store passes fsck' '
	kp-fsck >out 2>err &&
	test_line_count = 0 out &&
	grep "0 problem" err
'

test_expect_success 'every single flipped byte in any object is found' '
	for f in $(find store/objects -type f); do
		cp -p "$f" saved &&
		size=$(stat -c %s "$f") &&
		for pos in 0 $((size / 2)) $((size - 1)); do
			chmod u+w "$f" &&
			python3 -c "import sys
p, i = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, \"rb\").read()); b[i] ^= 1; open(p, \"wb\").write(b)" "$f" $pos &&
			test_expect_code 1 kp-fsck >out 2>/dev/null &&
			grep "^bad .*$(basename "$f" | cut -d. -f1)" out &&
			cp -p saved "$f" || return 1
		done
	done &&
	kp-fsck
'

test_expect_success 'a truncated tree and a missing object are reported' '
	t=$(kp-rev-parse $(cat K):d) && f=$(obj $t tree) && cp -p $f saved &&
	chmod u+w $f && head -c 20 saved >$f &&
	test_expect_code 1 kp-fsck >out 2>/dev/null &&
	grep "^bad tree $t" out &&
	cp -p saved $f &&
	b=$(kp-hash-object keep/d/f) && mv $(obj $b blob) saved-blob &&
	test_expect_code 1 kp-fsck >out 2>/dev/null &&
	grep "^missing blob $b, named by tree $t" out &&
	mv saved-blob "$(dirname $f | sed "s|/..$||")/$(echo $b | cut -c1-2)/$(echo $b | cut -c3-).blob" &&
	kp-fsck
'

test_expect_success 'reading a corrupt object fails with exit 3 and names it' '
	b=$(kp-hash-object keep/g) && f=$(obj $b blob) && cp -p $f saved &&
	t=$(kp-rev-parse $(cat K)^{tree}) && tf=$(obj $t tree) && cp -p $tf saved-tree &&
	chmod u+w $tf && printf "garbage" >>$tf &&
	test_expect_code 3 kp-ls-layer $(cat K) 2>err &&
	grep "corrupt tree $t" err &&
	cp -p saved-tree $tf && kp-fsck
'

test_expect_success 'a broken ref and bad metadata are reported' '
	echo 1111111111111111111111111111111111111111111111111111111111111111 >store/refs/broken &&
	mkdir -p store/meta/envs && echo "{\"b3\":\"00\",\"data\":{}}" >store/meta/envs/x.json &&
	test_expect_code 1 kp-fsck >out 2>/dev/null &&
	grep "^broken ref refs/broken" out &&
	grep "corrupt metadata .*x.json: checksum mismatch" out &&
	rm store/refs/broken store/meta/envs/x.json
'

test_expect_success 'prune --dry-run lists exactly what prune removes' '
	kp-prune --dry-run >dry 2>err &&
	grep "would remove" err &&
	test_line_count = 3 dry &&
	grep "$(cat D) layer" dry &&
	grep "$(kp-hash-object drop/only-here) blob" dry &&
	kp-prune >real 2>err &&
	test_cmp dry real &&
	kp-prune --dry-run >again && test_line_count = 0 again
'

test_expect_success 'after prune, what refs reach is intact' '
	kp-fsck &&
	kp-checkout-layer keep keep-out &&
	diff -r keep keep-out &&
	test_must_fail kp-cat-object -e $(cat D)
'

test_expect_success 'prune keeps objects shared with reachable ones, and honours --expire' '
	mkdir -p share && echo kept >share/same && echo new >share/new &&
	S=$(kp-write-layer share) &&
	kp-prune --expire 3600 >out && test_line_count = 0 out &&
	kp-prune >out &&
	test_line_count = 3 out &&
	kp-cat-object -e $(kp-hash-object keep/d/f)
'

test_expect_success 'prune cleans temporary files left by a crash' '
	echo partial >store/tmp/kp-crashed &&
	kp-prune >/dev/null &&
	test_path_is_missing store/tmp/kp-crashed
'

# Prune waits for writers: without the lock it would remove the blobs written so
# far, and the tree written after them would name missing objects. Once the
# write is done its layer is unreachable, so prune may remove all of it, never
# part of it: fsck must pass whatever the interleaving.
test_expect_success 'prune during write-layer never leaves a partial layer' '
	mkdir -p many && for i in $(seq 1 400); do echo $i >many/f$i; done &&
	for round in 1 2 3 4 5; do
		echo $round >many/round &&
		(kp-write-layer many >L$round) & w=$! &&
		kp-prune >/dev/null 2>&1 &&
		wait $w &&
		kp-fsck || return 1
	done
'

test_expect_success 'prune --expire keeps a layer just written for its ref' '
	echo 6 >many/round &&
	(kp-write-layer many >L6) & w=$! &&
	kp-prune --expire 3600 >/dev/null 2>&1 &&
	wait $w &&
	kp-update-ref refs/tags/many $(cat L6) &&
	kp-fsck
'

test_expect_success USERNS 'a read-only store: writes fail with exit 3, nothing changes' '
	cp -a store before && mkdir ro &&
	unshare --user --map-root-user --mount sh -c "
		mount --bind store ro && mount -o remount,ro,bind ro &&
		echo fresh >fresh &&
		kp-hash-object -w --store ro fresh; echo \$? >code1
		kp-update-ref --store ro refs/tags/x $(cat K); echo \$? >code2
		kp-fsck --store ro; echo \$? >code3
	" 2>err &&
	echo 3 >expect && test_cmp expect code1 && test_cmp expect code2 &&
	echo 0 >expect && test_cmp expect code3 &&
	grep "Read-only file system" err &&
	diff -r before store
'

test_expect_success USERNS 'a full disk: the write fails with exit 3, the store stays sound' '
	unshare --user --map-root-user --mount sh -c "
		mkdir -p small && mount -t tmpfs -o size=1m none small &&
		kp-init small/s >/dev/null &&
		mkdir -p fits && echo small >fits/a && l=\$(kp-write-layer --store small/s fits) &&
		kp-update-ref --store small/s refs/tags/fits \$l &&
		mkdir -p huge && head -c 3000000 /dev/zero >huge/big &&
		kp-write-layer --store small/s huge; echo \$? >code &&
		kp-fsck --store small/s && echo fsck-ok >fsck &&
		kp-checkout-layer --store small/s fits small-out && cat small-out/a >content
	" 2>err &&
	echo 3 >expect && test_cmp expect code &&
	grep "No space left" err &&
	echo fsck-ok >expect && test_cmp expect fsck &&
	echo small >expect && test_cmp expect content
'

test_done

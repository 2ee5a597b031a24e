#!/bin/sh
test_description='gc and verify-store: what environments and snapshots reach stays, the dry run is the run, corruption is named'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# layers ENV: the ids of ENV's layers and snapshots, one per line.
layers() {
	karapace --json inspect "$1" >inspect.json &&
	sed "s/.*\"layers\":\[\([^]]*\)\].*/\1/" inspect.json | tr -d "\"" | tr "," "\n" &&
	karapace --json snapshots "$1" >snaps.json &&
	sed "s/\"snapshot\":\"\([0-9a-f]*\)\"/\n\1\n/g" snaps.json | grep "^[0-9a-f]\{64\}\$" || true
}

test_expect_success 'setup: kept, snapshotted, archived environments and garbage' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs &&
	karapace build proj --name kept >/dev/null &&
	karapace exec kept -- sh -c "echo one >/one" &&
	karapace commit kept >/dev/null &&
	karapace exec kept -- sh -c "echo two >/two" &&
	karapace commit kept >/dev/null &&
	cp -a proj arch && rm arch/karapace.lock && echo archived >arch/rootfs/marker &&
	karapace build arch --name arch >/dev/null &&
	karapace archive arch &&
	cp -a proj gone && rm gone/karapace.lock && echo gone >gone/rootfs/marker &&
	karapace build gone --name gone >/dev/null &&
	karapace exec gone -- sh -c "echo g >/g" && karapace commit gone >/dev/null &&
	karapace destroy gone &&
	echo loose >loose && kp-hash-object -w loose >/dev/null
'

test_expect_success 'gc --dry-run lists exactly what gc removes' '
	karapace gc --dry-run >dry 2>dry.err &&
	grep "would remove" dry.err &&
	test -s dry &&
	grep " layer\$" dry && grep " tree\$" dry && grep " blob\$" dry &&
	karapace gc >real 2>real.err &&
	test_cmp dry real &&
	karapace gc --dry-run >again &&
	test ! -s again &&
	karapace verify-store
'

test_expect_success 'what environments and snapshots reach is kept; they still run' '
	for env in kept arch; do
		for l in $(layers $env); do
			kp-cat-object -e $l || return 1
		done || return 1
	done &&
	karapace exec kept -- cat /two >out && echo two >expect && test_cmp expect out &&
	karapace snapshots kept >list && test_line_count = 3 list &&
	first=$(sed -n 2p list | cut -d" " -f1) &&
	karapace restore kept $first &&
	karapace exec kept -- sh -c "cat /one; test ! -e /two" >out &&
	echo one >expect && test_cmp expect out
'

test_expect_success 'a running environment is protected' '
	cp -a proj run && rm run/karapace.lock && echo run >run/rootfs/marker &&
	karapace build run --name runner >/dev/null &&
	karapace exec runner -- sleep 30 &
	pid=$! &&
	i=0 &&
	while karapace list >list && ! grep " running " list >/dev/null; do
		sleep 0.05; i=$((i + 1)); test $i -lt 200 || return 1
	done &&
	karapace gc >out &&
	test ! -s out &&
	karapace stop runner && wait $pid;
	karapace verify-store
'

test_expect_success 'Ctrl-C stops gc before the next removal' '
	for i in 1 2 3 4 5; do echo $i >g$i; done &&
	kp-hash-object -w g1 g2 g3 g4 g5 >/dev/null &&
	karapace gc --dry-run >before &&
	test_line_count = 5 before &&
	# A writer holds the gc lock, so gc waits in it with SIGINT blocked.
	test_when_finished "touch release" &&
	( flock -s 9 && touch held && while test ! -f release; do sleep 0.05; done ) 9>>store/locks/gc &
	holder=$! &&
	i=0 &&
	until test -f held; do sleep 0.05; i=$((i + 1)); test $i -lt 200 || return 1; done &&
	{ karapace gc >removed 2>err; echo $? >code; } &
	gc=$! &&
	i=0 &&
	until pid=$(pgrep -P $gc -x karapace) &&
	      blk=$(sed -n "s/^SigBlk:[[:space:]]*//p" /proc/$pid/status) &&
	      test $((0x$blk & 2)) -ne 0; do
		sleep 0.05; i=$((i + 1)); test $i -lt 200 || return 1
	done &&
	kill -INT $pid &&
	touch release && wait $holder && wait $gc &&
	echo 130 >expect && test_cmp expect code &&
	grep "interrupted" err &&
	karapace gc --dry-run >after &&
	test_cmp before after &&
	karapace verify-store &&
	karapace gc >removed && test_cmp before removed
'

test_expect_success 'verify-store names a flipped byte, a missing snapshot and a missing layer' '
	cp -a store broken &&
	echo one >one && blob=$(kp-hash-object one) &&
	obj=broken/objects/$(echo $blob | cut -c1-2)/$(echo $blob | cut -c3-).blob &&
	test -f $obj &&
	chmod u+w $obj && printf "onf\n" >$obj &&
	snap=$(layers kept | tail -n 1) &&
	rm -f broken/objects/$(echo $snap | cut -c1-2)/$(echo $snap | cut -c3-).layer &&
	test_expect_code 1 karapace --store broken verify-store >problems &&
	grep "^bad blob $blob" problems &&
	grep "environment kept ([0-9a-f]*): snapshot $snap is not in the store" problems &&
	test_expect_code 1 karapace --store broken --json verify-store >json &&
	grep "\"ok\":false" json &&
	karapace verify-store
'

test_done

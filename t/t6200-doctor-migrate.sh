#!/bin/sh
test_description='doctor reports ok/warn/fail with fixes and changes nothing; migrate reports the format'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'

test_expect_success 'doctor without a store: one line per check, creates nothing' '
	karapace doctor >out &&
	grep -c "^\(ok\|warn\|fail\)  " out >n && echo 7 >expect && test_cmp expect n &&
	grep "^warn  store: no store at $KARAPACE_STORE" out &&
	grep "fix: .karapace init." out &&
	test_path_is_missing "$KARAPACE_STORE"
'

test_expect_success SANDBOX 'doctor sees user namespaces and overlayfs where they work' '
	karapace doctor >out &&
	grep "^ok    user namespaces" out &&
	grep "^ok    overlay" out
'

test_expect_success ROOT 'doctor names the range root s environments run in' '
	start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1) &&
	if test -z "$start"; then
		karapace doctor --fix >out &&
		grep "^fixed subordinate ids: karapace:" out &&
		start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1)
	fi &&
	karapace doctor >out &&
	grep "^ok    subordinate ids: root.s environments run as $start+65536" out
'

test_expect_success 'doctor --json' '
	karapace --json doctor >json &&
	grep "\"name\":\"cgroup delegation\"" json &&
	grep "\"name\":\"subordinate ids\"" json
'

test_expect_success SANDBOX 'a sound store is ok, and doctor leaves it as it was' '
	fixture_busybox_rootfs proj/rootfs && write_manifest proj ./rootfs &&
	karapace build proj --name d >id &&
	find store | sort >before &&
	karapace doctor >out &&
	grep "^ok    store: " out &&
	find store | sort >after &&
	test_cmp before after
'

test_expect_success SANDBOX 'a store missing a layer fails with the fix' '
	cp -a store broken &&
	karapace --json inspect d >j &&
	l=$(sed "s/.*\"layers\":\[\"\([0-9a-f]*\)\".*/\1/" j) &&
	rm broken/objects/$(echo $l | cut -c1-2)/$(echo $l | cut -c3-).layer &&
	test_expect_code 1 karapace --store broken doctor >out &&
	grep "^fail  store: environment d misses 1 layer" out &&
	grep "fix: run .karapace verify-store." out
'

test_expect_success 'migrate: format 1 is up to date' '
	karapace init >/dev/null &&
	karapace migrate >out &&
	echo "$KARAPACE_STORE: store format 1, up to date" >expect &&
	test_cmp expect out &&
	karapace --json migrate >json &&
	grep "\"found\":1" json && grep "\"upgraded\":\[\]" json
'

test_expect_success 'migrate refuses a newer format and leaves it alone' '
	mkdir newer && echo "karapace-store 2" >newer/version &&
	cp newer/version expect &&
	test_expect_code 3 karapace --store newer migrate 2>err &&
	grep "not supported" err &&
	test_cmp expect newer/version &&
	test_expect_code 3 karapace --store nothing-here migrate 2>err &&
	grep "not a Karapace store" err
'

test_done

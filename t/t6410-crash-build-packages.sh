#!/bin/sh
test_description='crash safety: builds SIGKILLed while apt installs inside leave a sound store; the next build sweeps their scratch and succeeds'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

test_expect_success 'setup: an environment that must survive' '
	write_manifest keep "$IMAGE" hello &&
	karapace build keep --name keep >/dev/null 2>&1 &&
	karapace exec keep -- hello >out &&
	grep "Hello, world" out
'

# An install takes well under a second here; these delays land before, in and
# after it (the image is imported already).
test_expect_success 'SIGKILLed package builds' '
	write_manifest p "$IMAGE" jq &&
	for d in 0.02 0.05 0.1 0.15 0.2 0.3 0.4 0.5 0.7; do
		rm -f p/karapace.lock &&
		{ timeout -s KILL $d karapace build p >/dev/null 2>&1; echo $? >>codes; } &&
		karapace verify-store >problems 2>&1 || { cat problems >&4; return 1; }
		karapace exec keep -- hello >/dev/null || return 1
	done &&
	grep -c "^137\$" codes >killed &&
	test "$(cat killed)" -gt 2
'

test_expect_success 'the next build removes the leftovers and installs' '
	rm -f p/karapace.lock &&
	ls store/tmp >before &&
	karapace -v build p >id 2>err &&
	{ test_must_be_empty before || grep "removed .* leftover(s) of interrupted commands" err; } &&
	echo "{\"a\": 1}" | karapace exec $(cat id) -- jq -c .a >out &&
	echo 1 >expect && test_cmp expect out &&
	ls store/tmp >left && test_must_be_empty left &&
	for e in store/envs/*; do
		test -f store/meta/envs/${e##*/}.json || { echo "$e has no record" >&4; return 1; }
	done &&
	karapace verify-store
'

test_expect_success 'gc then leaves only what the environments use' '
	karapace gc >/dev/null &&
	karapace gc --dry-run >left && test_must_be_empty left &&
	karapace exec keep -- hello >/dev/null &&
	karapace exec $(cat id) -- jq --version
'

test_done

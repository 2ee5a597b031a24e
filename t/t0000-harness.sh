#!/bin/sh
test_description='the test harness itself: TAP output, failures, prerequisites, isolation'
. ./lib.sh

# run_sub NAME BODY: runs a small test script built from BODY with this library
# and keeps its TAP output in NAME.out and its exit code in NAME.code.
run_sub() {
	cat >"$TEST_DIRECTORY/t9999-sub-$1.sh" <<-EOF2
	#!/bin/sh
	test_description='sub'
	. ./lib.sh
	$2
	test_done
	EOF2
	(cd "$TEST_DIRECTORY" && KP_TEST_SUB=1 sh "t9999-sub-$1.sh") >"$1.out" 2>"$1.err"
	echo $? >"$1.code"
	rm -f "$TEST_DIRECTORY/t9999-sub-$1.sh"
	rm -rf "$TEST_DIRECTORY/trash directory.t9999-sub-$1" "$TEST_DIRECTORY/test-results/t9999-sub-$1.counts"
}

test_expect_success 'a passing test prints ok and the plan' '
	run_sub pass "test_expect_success \"works\" \"true\"" &&
	printf "ok 1 - works\n1..1\n" >expect &&
	test_cmp expect pass.out &&
	echo 0 >expect && test_cmp expect pass.code
'

test_expect_success 'a failing test prints not ok and the script fails' '
	run_sub fail "test_expect_success \"breaks\" \"false\"" &&
	head -n 1 fail.out >actual &&
	echo "not ok 1 - breaks" >expect &&
	test_cmp expect actual &&
	echo 1 >expect && test_cmp expect fail.code
'

test_expect_success 'test_must_fail accepts a clean failure' '
	test_must_fail sh -c "exit 1" &&
	test_must_fail sh -c "exit 3"
'

test_expect_success 'test_must_fail rejects success, a panic (101) and a signal' '
	run_sub mf "
		test_expect_success \"success\" \"test_must_fail true\"
		test_expect_success \"panic\" \"test_must_fail sh -c \\\"exit 101\\\"\"
		test_expect_success \"signal\" \"test_must_fail sh -c \\\"kill -9 \\\\\\\$\\\\\\\$\\\"\"
	" &&
	grep -c "^not ok" mf.out >count &&
	echo 3 >expect && test_cmp expect count
'

test_expect_success 'test_expect_code wants the exact code' '
	test_expect_code 3 sh -c "exit 3" &&
	! test_expect_code 2 sh -c "exit 3"
'

test_expect_success 'test_cmp notices a difference' '
	echo a >one && echo b >two &&
	! test_cmp one two 2>/dev/null &&
	test_cmp one one
'

test_expect_success 'test_must_be_empty wants an existing, empty file' '
	: >empty && echo x >full &&
	test_must_be_empty empty &&
	! test_must_be_empty full 4>/dev/null &&
	! test_must_be_empty missing 4>/dev/null
'

test_expect_success 'HOME is the trash directory and the environment is pinned' '
	test "$HOME" = "$TRASH_DIRECTORY" &&
	test "$(pwd)" = "$TRASH_DIRECTORY" &&
	test "$LC_ALL" = C && test "$TZ" = UTC &&
	test -z "$KARAPACE_STORE"
'

test_lazy_prereq ALWAYS 'true'
test_lazy_prereq NEVER 'false'

test_expect_success ALWAYS 'a satisfied lazy prerequisite runs the test' '
	test_have_prereq ALWAYS
'

test_expect_success 'an unsatisfied prerequisite skips, and ! negates' '
	run_sub prereq "
		test_lazy_prereq NEVER false
		test_expect_success NEVER \"needs never\" \"false\"
		test_expect_success !NEVER \"needs not never\" \"true\"
	" &&
	printf "ok 1 # skip needs never (missing NEVER)\nok 2 - needs not never\n1..2\n" >expect &&
	test_cmp expect prereq.out
'

test_expect_success 'test_when_finished runs after the body, even on failure' '
	run_sub finished "
		test_expect_success \"cleanup\" \"test_when_finished \\\"echo cleaned >\\\$TEST_DIRECTORY/cleaned-marker\\\" && false\"
	" &&
	test_path_is_file "$TEST_DIRECTORY/cleaned-marker" &&
	rm -f "$TEST_DIRECTORY/cleaned-marker"
'

test_expect_success 'each script gets a fresh trash directory' '
	run_sub fresh "test_expect_success \"empty\" \"test -z \\\"\\\$(ls -A | grep -v ^prereq-)\\\"\"" &&
	grep "^ok 1" fresh.out
'

test_done

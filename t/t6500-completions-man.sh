#!/bin/sh
test_description='completions and man pages come from the command table: every verb, valid syntax'
. ./lib.sh

karapace help >help.out 2>&1
verbs=$(sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' help.out)

test_expect_success 'the command table lists the verbs' '
	test -n "$verbs" &&
	for v in build exec commit restore gc completions man-pages; do
		echo "$verbs" | grep -x "$v" || return 1
	done
'

test_expect_success 'bash completion parses and completes every verb' '
	karapace completions bash >c.bash &&
	bash -n c.bash &&
	for v in $verbs; do
		bash -c ". ./c.bash && COMP_WORDS=(karapace ${v%?}) && COMP_CWORD=1 && _karapace && printf \"%s\\n\" \"\${COMPREPLY[@]}\"" >got &&
		grep -x "$v" got || { echo "bash does not complete $v" >&4; return 1; }
	done
'

test_expect_success 'zsh and fish completions name every verb' '
	karapace completions zsh >c.zsh &&
	karapace completions fish >c.fish &&
	if command -v zsh >/dev/null; then zsh -n c.zsh; fi &&
	for v in $verbs; do
		grep -q "$v" c.zsh && grep -q -- "-a $v " c.fish || { echo "missing $v" >&4; return 1; }
	done
'

test_expect_success 'an unknown shell is a usage error (64)' '
	test_expect_code 64 karapace completions tcsh 2>err &&
	grep "unknown shell \"tcsh\"" err
'

test_expect_success 'man-pages writes one page per verb and an overview' '
	karapace man-pages man &&
	test_path_is_file man/karapace.1 &&
	for v in $verbs; do
		test_path_is_file man/karapace-$v.1 &&
		grep -q "^\.TH KARAPACE" man/karapace-$v.1 || return 1
	done &&
	grep "karapace\\\\-commit \\\\- Save an environment" man/karapace-commit.1
'

test_expect_success 'man pages write every - as \- (options, names; roff reads a bare - as a hyphen)' '
	grep -n "\(^\|[^\\]\)-" man/*.1 >bare || :
	test_must_be_empty bare &&
	grep "^  \\\\-\\\\-store PATH " man/karapace.1 &&
	grep "^\.TH KARAPACE\\\\-MAN\\\\-PAGES " man/karapace-man-pages.1
'

test_done

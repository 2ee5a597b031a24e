#!/bin/sh
test_description='concurrent execs of one environment share one overlay of its writable layer (never two
overlays over one upper directory); frozen environments keep a scratch upper each; as root and rootless'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

# shared_check AS DIR: in DIR's store (environment "e"), a long exec and a
# second one started while it runs see the same overlay (one device number),
# a file the second creates is at once visible to the first (which looked it
# up before, so a second overlay would answer from its stale dentry), and
# after both the share directory holds no registration.
shared_check() {
	(as=$1 && cd "$2" && export KARAPACE_STORE="$PWD/st" &&
	 $as karapace build proj --name e >/dev/null 2>&1 &&
	 { $as karapace exec e -- sh -c "stat -c %d /; test -e /made || echo absent; echo started >/tmp/started
		i=0; while ! test -e /made && test \$i -lt 100; do sleep 0.1; i=\$((i+1)); done
		cat /made 2>/dev/null || echo stale" >first & } &&
	 i=0 && while ! grep -q absent first 2>/dev/null && test $i -lt 100; do sleep 0.1; i=$((i+1)); done &&
	 $as karapace exec e -- sh -c "stat -c %d /; echo from-second >/made" >second &&
	 wait &&
	 head -n1 first >dev1 && head -n1 second >dev2 && test_cmp dev1 dev2 &&
	 tail -n1 first >seen && echo from-second >expect && test_cmp expect seen &&
	 id=$($as karapace --json inspect e | sed "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/") &&
	 ls "st/envs/$id/share" >regs && echo lock >expect && test_cmp expect regs)
}

test_expect_success 'root: two execs at once share one overlay' '
	mkdir r && write_manifest r/proj "$IMAGE" && shared_check "" r
'

test_expect_success 'ten execs at once, ten rounds: every one succeeds and every write lands' '
	(cd r && export KARAPACE_STORE="$PWD/st" &&
	 for round in 1 2 3 4 5 6 7 8 9 10; do
		for i in 0 1 2 3 4 5 6 7 8 9; do
			{ karapace exec e -- sh -c "echo $round >/w$i"; echo $? >status$i; } &
		done
		wait
		cat status0 status1 status2 status3 status4 status5 status6 status7 status8 status9 >statuses &&
		printf "0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n" >expect && test_cmp expect statuses || return 1
	 done &&
	 karapace exec e -- sh -c "cat /w0 /w1 /w2 /w3 /w4 /w5 /w6 /w7 /w8 /w9" >all &&
	 printf "10\n10\n10\n10\n10\n10\n10\n10\n10\n10\n" >expect && test_cmp expect all)
'

test_expect_success 'a frozen environment still gives each exec a scratch upper of its own' '
	(cd r && export KARAPACE_STORE="$PWD/st" &&
	 karapace freeze e &&
	 { karapace exec e -- sh -c "echo mine >/scratch; sleep 1; cat /scratch" >a & } &&
	 karapace exec e -- sh -c "cat /scratch 2>/dev/null || echo none" >b &&
	 wait && echo mine >expect && test_cmp expect a && echo none >expect && test_cmp expect b)
'

test_expect_success ROOTLESS 'rootless with a subordinate range: two execs at once share one overlay' '
	test_have_prereq SUBUID || { say "no subordinate range"; return 0; }
	mkdir u && tar -C "$IMAGE" --numeric-owner -cf u/image.tar . &&
	write_manifest u/proj ../image.tar && chown -R "$KP_TEST_USER" u &&
	shared_check as_user u
'

test_expect_success ROOTLESS_SINGLE 'rootless without a range: two execs at once share one overlay' '
	mkdir s && tar -C "$IMAGE" --numeric-owner -cf s/image.tar . &&
	write_manifest s/proj ../image.tar && chown -R "$KP_TEST_USER_SINGLE" s &&
	shared_check as_single_user s
'

test_done

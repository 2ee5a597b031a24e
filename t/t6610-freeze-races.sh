#!/bin/sh
test_description='freeze against starting execs: once a freeze is done, no exec writes into the environment'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

# rounds.sh N: N times, builds environment x from proj, starts two loops of
# execs that each write a new file at the root, freezes x while they run
# (retrying while an exec holds it), lists x's writable layer right after
# the freeze and again once the execs ended, and destroys x. Every file an
# exec wrote after the freeze is a line of violations; exec and freeze
# failures other than "running" go to errors.
cat >rounds.sh <<\END
r=0
while test $r -lt $1; do
	karapace build proj --name x >/dev/null 2>build-err || { cat build-err >>errors; exit 1; }
	upper=$KARAPACE_STORE/envs/$(karapace --json inspect x | sed "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/")/upper
	rm -f stop
	for loop in 1 2; do
		{ n=0; while ! test -e stop; do
			karapace exec x -- sh -c "echo >/w-$r-$loop-$n" 2>>errors || echo "exec failed: $?" >>errors
			n=$((n + 1))
		done; } &
	done
	until karapace freeze x >/dev/null 2>freeze-err; do
		grep -q "running" freeze-err || { cat freeze-err >>errors; break; }
	done
	ls "$upper" >frozen
	: >stop
	wait
	ls "$upper" >ended
	comm -13 frozen ended >>violations
	karapace destroy x >/dev/null 2>>errors || echo "destroy failed" >>errors
	r=$((r + 1))
done
END

test_expect_success 'setup' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs
'

test_expect_success 'no exec writes into an environment after its freeze' '
	KARAPACE_STORE="$PWD/store" && export KARAPACE_STORE &&
	: >errors && : >violations &&
	sh rounds.sh 20 &&
	test_must_be_empty violations &&
	test_must_be_empty errors
'

test_expect_success ROOTLESS 'rootless: no exec writes into an environment after its freeze' '
	mkdir rl && fixture_busybox_rootfs rl/proj/rootfs && write_manifest rl/proj ./rootfs &&
	cp rounds.sh rl/ && chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 KARAPACE_STORE="$PWD/st" && export KARAPACE_STORE &&
	 as_user sh -c ": >errors && : >violations && sh rounds.sh 10" &&
	 test_must_be_empty violations &&
	 test_must_be_empty errors)
'

test_done

#!/bin/sh
test_description='kp-sandbox over a Debian minbase tree: dynamic binaries, users, package tools'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_have_prereq USERNS || test_skip_all "user namespaces are not available"
test_have_prereq DEBOOTSTRAP || test_skip_all "needs root and debootstrap for the Debian minbase tree"

test_expect_success 'setup: the cached minbase tree as the lower layer' '
	fixture_debian_minbase >base && mkdir up wk
'

ov() { kp-sandbox --lower "$(cat "$HOME/base")" --upper "$HOME/up" --work "$HOME/wk" "$@"; }

test_expect_success 'bash and coreutils run; the shell sees its hostname and PID' '
	ov --hostname deb -- bash -c "echo \$BASH_VERSION; hostname; echo \$\$; id -un" >out &&
	sed -n 2,4p out >rest && printf "deb\n2\nroot\n" >expect && test_cmp expect rest
'

test_expect_success 'root inside may own files as system users, and the layer is untouched' '
	ov -- sh -c "touch /srv/f && chown _apt:nogroup /srv/f && stat -c %U:%G /srv/f" >out &&
	echo _apt:nogroup >expect && test_cmp expect out &&
	test_path_is_file up/srv/f && test_path_is_missing "$(cat base)/srv/f"
'

test_expect_success 'dpkg reads its database; apt-get is usable without network' '
	ov -- dpkg-query -W -f "\${Status}\n" dpkg >out && echo "install ok installed" >expect && test_cmp expect out &&
	ov -- apt-get --version >out && grep "^apt " out
'

test_expect_success 'a read-only minbase root works for an unprivileged user too' '
	test_have_prereq ROOTLESS || { say "no unprivileged user"; return 0; }
	as_user kp-sandbox --rootfs "$(cat base)" -- bash -c "echo ok; ls /usr/bin/apt-get" >out &&
	printf "ok\n/usr/bin/apt-get\n" >expect && test_cmp expect out
'

test_done

#!/bin/sh
test_description='export: the drift or the whole filesystem, as a directory or a deterministic tar'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_expect_success 'setup: an environment with drift' '
	fixture_busybox_rootfs proj/rootfs &&
	mkdir -p proj/rootfs/srv/olddir proj/rootfs/run &&
	echo g >proj/rootfs/srv/gone && echo x >proj/rootfs/srv/olddir/x &&
	write_manifest proj ./rootfs &&
	karapace build proj --name x >/dev/null &&
	karapace exec x -- sh -c "
		echo new >/srv/added && rm /srv/gone &&
		rm -rf /srv/olddir && mkdir /srv/olddir && echo z >/srv/olddir/z"
'

test_expect_success 'the drift as a tar: whiteouts and opaque markers, OCI style' '
	karapace export x drift.tar >out &&
	grep "exported the drift of x to drift.tar" out &&
	tar tf drift.tar >list &&
	cat >expect <<-\EOF &&
	./
	srv/
	srv/added
	srv/.wh.gone
	srv/olddir/
	srv/olddir/.wh..wh..opq
	srv/olddir/z
	EOF
	test_cmp expect list
'

test_expect_success 'a tar is deterministic: same content, same bytes, whatever the times' '
	karapace exec x -- touch /srv/added &&
	sleep 1 &&
	karapace export x again.tar &&
	cmp drift.tar again.tar &&
	tar tvf drift.tar >verbose &&
	! grep -v " 1970-01-01 00:00 " verbose
'

test_expect_success 'the drift as a directory keeps overlay whiteouts and opaque directories' '
	karapace export x drift &&
	test -f drift/srv/added &&
	{ test -c drift/srv/gone || test -f drift/srv/gone; } &&
	getfattr --absolute-names -n user.overlay.opaque --only-values drift/srv/olddir >opq &&
	printf y >expect && test_cmp expect opq &&
	test_path_is_missing drift/srv/olddir/x &&
	test_path_is_missing drift/bin
'

test_expect_success 'the full filesystem as a tar is what the environment shows' '
	karapace export --full x full.tar &&
	tar tf full.tar | sed -e "s|/\$||" -e "s|^\./\$||" -e "s|^|/|" | sed "s|^/\.\$|/|" | sort >tarlist &&
	karapace exec x -- find / -xdev >found &&
	sort found >envlist &&
	test_cmp envlist tarlist &&
	mkdir full && tar xf full.tar -C full &&
	echo new >expect && test_cmp expect full/srv/added &&
	test_path_is_missing full/srv/gone &&
	test_path_is_missing full/srv/olddir/x &&
	cmp proj/rootfs/bin/busybox full/bin/busybox &&
	karapace export --full x full2.tar && cmp full.tar full2.tar
'

test_expect_success 'the full filesystem as a directory' '
	karapace --json export --full x fulldir >json &&
	grep "\"format\":\"dir\"" json && grep "\"full\":true" json &&
	echo z >expect && test_cmp expect fulldir/srv/olddir/z &&
	test_path_is_missing fulldir/srv/gone &&
	test -x fulldir/bin/busybox
'

test_expect_success 'a directory that is not empty is refused' '
	mkdir busy && touch busy/f &&
	test_must_fail karapace export x busy 2>err &&
	grep "not empty" err
'

test_done

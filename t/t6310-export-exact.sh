#!/bin/sh
test_description='export is exact: every name and symlink target byte for byte, in every form'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

# What the environment writes below /srv/odd: names that are not UTF-8 or
# hold a newline or a backslash, names of 100 and 200 bytes, a path of more
# than 400, and symlink targets a tar writer likes to "clean": `//`, a
# trailing `/`, `.` and `..` components, bytes that are not UTF-8, and
# targets of 100, 300 and 4000 bytes.
cat >mkodd.sh <<\EOF
set -e
rep() { printf "%0${1}d" 0 | tr 0 "$2"; }
mkdir -p /srv/odd && cd /srv/odd
echo data >"$(printf 'caf\351')"
mkdir "$(printf '\377\376')"
echo x >"$(printf '\377\376')/$(printf 'in\nner\n')"
echo y >'back\slash'
echo z >"$(rep 200 l)"
mkdir "$(rep 200 d)"
ln -s "$(rep 300 t)//x/./../" "$(rep 200 d)/$(rep 250 s)"
ln -s "$(rep 100 h)" "$(rep 100 n)"
ln -s 'a//b' l1
ln -s 'dir/' l2
ln -s './x/../y/.' l3
ln -s '..' l4
ln -s '.' l5
ln -s '/abs//x/' l6
ln -s "$(printf '\377/x\351/')" l7
ln -s "$(rep 2000 q)//$(rep 1997 r)/" l8
mkfifo "$(printf 'fifo\361')"
EOF

# entries DIR: one line per entry below DIR, in path order: its path and link
# target as hex bytes (exactly what the directory holds), type, mode and, for
# a file, its content's checksum.
entries() {
	(cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | xargs -0 sh -c '
		for p; do
			printf "%s %s %s" "$(printf %s "$p" | od -v -An -tx1 | tr -d " \n")" \
				"$(if test -h "$p"; then readlink "$p"; else echo; fi | od -v -An -tx1 | tr -d " \n")" \
				"$(stat -c "%F %a" "$p")"
			if test -f "$p" && ! test -h "$p"; then printf " %s" "$(cksum <"$p")"; fi
			echo
		done' sh)
}

# roundtrip WHO ST: builds an environment in store ST as WHO (`root` or a
# command prefix such as as_user), writes the odd names into it, exports it
# in all four forms and compares each with its writable layer.
roundtrip() {
	who=$1 st=$2
	run() { if test "$who" = root; then "$@"; else $who "$@"; fi; }
	kp() { run env KARAPACE_STORE="$PWD/$st" "$@"; }
	kp karapace build proj --name odd >id &&
	kp karapace exec odd -- sh -c "$(cat mkodd.sh)" &&
	upper=$st/envs/$(cat id)/upper &&
	entries "$upper/srv/odd" >"$st.expect" &&
	test_line_count = 17 "$st.expect" &&
	kp karapace export odd "$st-drift.tar" &&
	kp karapace export --full odd "$st-full.tar" &&
	kp karapace export odd "$st-drift" &&
	kp karapace export --full odd "$st-full" &&
	for form in drift full; do
		run mkdir "$st-$form-x" &&
		run tar -xpf "$st-$form.tar" -C "$st-$form-x" 2>"$st-$form.err" &&
		test_must_be_empty "$st-$form.err" &&
		entries "$st-$form-x/srv/odd" >"$st-$form-tar.actual" &&
		test_cmp "$st.expect" "$st-$form-tar.actual" &&
		entries "$st-$form/srv/odd" >"$st-$form-dir.actual" &&
		test_cmp "$st.expect" "$st-$form-dir.actual" || return 1
	done
}

test_expect_success 'setup' '
	fixture_busybox_rootfs proj/rootfs && write_manifest proj ./rootfs &&
	for d in rl rs; do
		mkdir $d && fixture_busybox_rootfs $d/proj/rootfs && write_manifest $d/proj ./rootfs &&
		cp mkodd.sh $d/ || return 1
	done
'

test_expect_success 'as root: tar and directory, drift and full, name for name and byte for byte' '
	roundtrip root st &&
	# The store under them keeps the names too: the layer writer, kp-ls-layer
	# and a checkout.
	upper=st/envs/$(cat id)/upper &&
	layer=$(KARAPACE_STORE="$PWD/st" kp-write-layer "$upper/srv/odd") &&
	KARAPACE_STORE="$PWD/st" kp-ls-layer -r -z $layer | sed -z "s/^[^	]*	//" | LC_ALL=C sort -z >listed &&
	(cd "$upper/srv/odd" && find . -mindepth 1 -printf "%P\\0") | LC_ALL=C sort -z >found &&
	cmp found listed &&
	KARAPACE_STORE="$PWD/st" kp-checkout-layer --copy $layer co &&
	entries co >co.actual && test_cmp st.expect co.actual
'

test_expect_success 'long names and targets are PAX records, short ones plain ustar fields; same bytes twice' '
	tar -tvf st-drift.tar >list &&
	grep -a "srv/odd/l1 -> a//b\$" list &&
	grep -a "srv/odd/l3 -> \./x/\.\./y/\.\$" list &&
	grep -q -a "@PaxHeader" st-drift.tar &&
	tar --format=posix -tf st-drift.tar >/dev/null &&
	KARAPACE_STORE="$PWD/st" karapace export odd again.tar &&
	cmp st-drift.tar again.tar
'

test_expect_success XATTR 'xattr names that are not UTF-8 go out exactly; one holding = is left out, with a warning' '
	f="st/envs/$(cat id)/upper/srv/odd/caf$(printf "\\351")" &&
	setfattr -n "$(printf "user.k\\351")" -v "$(printf "v\\nal")" "$f" &&
	setfattr -n user.a=b -v x "$f" &&
	KARAPACE_STORE="$PWD/st" karapace export odd xattrs.tar 2>err &&
	grep "srv/odd/caf.*: xattr \"user.a=b\" not exported" err &&
	mkdir xattrs && tar --xattrs --xattrs-include="*" -xf xattrs.tar -C xattrs &&
	getfattr -d -m "^user\\.k" -e hex "$f" | sed 1d >expect &&
	getfattr -d -m - -e hex "xattrs/srv/odd/caf$(printf "\\351")" | sed 1d >actual &&
	test_cmp expect actual
'

test_expect_success SUBUID 'rootless (subordinate range): the same, as an unprivileged user' '
	chown -R "$KP_TEST_USER" rl &&
	(cd rl && roundtrip as_user st) &&
	test_cmp st.expect rl/st.expect
'

test_expect_success ROOTLESS_SINGLE 'rootless (single id): the same, as a user without a range' '
	chown -R "$KP_TEST_USER_SINGLE" rs &&
	(cd rs && roundtrip as_single_user st) &&
	test_cmp st.expect rs/st.expect
'

test_expect_success 'a blob cut short or missing stops the export with a clear error; an upper file cut short is exported as it is now' '
	blob=$(find st/objects -name "*.blob" -size +200k | head -n 1) &&
	test -n "$blob" &&
	size=$(stat -c %s "$blob") &&
	truncate -s $((size / 2)) "$blob" &&
	test_expect_code 3 env KARAPACE_STORE="$PWD/st" karapace export --full odd cut.tar 2>err &&
	grep "corrupt blob .*: $((size / 2)) bytes where the tree says $size" err &&
	test_path_is_missing cut.tar &&
	! ls .karapace-export-* 2>/dev/null &&
	test_expect_code 3 env KARAPACE_STORE="$PWD/st" karapace export --full odd cutdir 2>err &&
	grep "corrupt blob .*: $((size / 2)) bytes where the tree says $size" err &&
	rm "$blob" &&
	test_expect_code 3 env KARAPACE_STORE="$PWD/st" karapace export --full odd gone.tar 2>err &&
	grep "blob .* is not in the store" err &&
	test_path_is_missing gone.tar &&
	! grep -i panick err &&
	upper=st/envs/$(cat id)/upper &&
	truncate -s 1 "$upper/srv/odd/back\\slash" &&
	KARAPACE_STORE="$PWD/st" karapace export odd now.tar &&
	mkdir now && tar -xf now.tar -C now &&
	printf y >expect && test_cmp expect "now/srv/odd/back\\slash"
'

test_done

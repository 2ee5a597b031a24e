#!/bin/sh
test_description='hostile and broken archives: refused or handled safely, nothing half-imported'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_have_prereq PYTHON3 || test_skip_all "needs python3 to craft archives"

# mktar OUT SPEC...: writes a tar whose members SPEC are TYPE:NAME[:ARG]:
# f (file, ARG = content), d (dir), l (symlink to ARG), h (hard link to ARG),
# c / b (char / block device, ARG = MAJOR,MINOR), p (fifo), s (setuid file).
mktar() {
	python3 - "$@" <<-'PY'
	import io, sys, tarfile
	out, specs = sys.argv[1], sys.argv[2:]
	with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
	    for spec in specs:
	        kind, name, *arg = spec.split(":", 2)
	        arg = arg[0] if arg else ""
	        i = tarfile.TarInfo(name)
	        i.uid = i.gid = 0
	        i.mode = 0o644
	        data = None
	        if kind in "fs":
	            data = arg.encode()
	            i.size = len(data)
	            if kind == "s":
	                i.mode = 0o4755
	        elif kind == "d":
	            i.type, i.mode = tarfile.DIRTYPE, 0o755
	        elif kind == "l":
	            i.type, i.linkname = tarfile.SYMTYPE, arg
	        elif kind == "h":
	            i.type, i.linkname = tarfile.LNKTYPE, arg
	        elif kind in "cb":
	            i.type = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
	            i.devmajor, i.devminor = map(int, arg.split(","))
	        elif kind == "p":
	            i.type = tarfile.FIFOTYPE
	        t.addfile(i, io.BytesIO(data) if data is not None else None)
	PY
}

refused() {
	test_expect_code 1 karapace image import "./$1" "$1" 2>err &&
	grep "$2" err &&
	test_must_fail kp-rev-parse "refs/images/$1" &&
	test_path_is_missing "store/meta/images/$1.json"
}

test_expect_success 'setup' '
	karapace init >/dev/null
'

test_expect_success '.. in a member path refuses the archive; nothing is written outside' '
	mkdir deep && mktar deep/dotdot.tar "f:../../escaped:x" &&
	(cd deep && test_expect_code 1 karapace image import ./dotdot.tar dotdot 2>../err) &&
	grep "member ../../escaped: path contains '"'..'"'" err &&
	test_path_is_missing escaped && test_path_is_missing ../escaped &&
	test_must_fail kp-rev-parse refs/images/dotdot
'

test_expect_success 'absolute member paths are made relative, with a warning' '
	mktar abs.tar "d:/etc" "f:/etc/hostname:box" &&
	karapace image import ./abs.tar abs 2>err >out &&
	grep "removed the leading '"'/'"' from 2 member names" err &&
	kp-rev-parse abs:etc/hostname >id && test "$(kp-cat-object -p $(cat id))" = box &&
	karapace --json image list >list.json && grep "\"absolute_members\":2" list.json
'

test_expect_success 'a path through an earlier symlink member is refused' '
	mktar escape.tar "l:link:/etc" "f:link/passwd:owned" &&
	refused escape.tar "member link/passwd: goes through the symlink link" &&
	mktar escape2.tar "d:a" "l:a/up:../.." "f:a/up/x:owned" &&
	refused escape2.tar "goes through the symlink a/up"
'

test_expect_success 'symlinks pointing anywhere are kept as written (never followed)' '
	mktar links.tar "l:abs:/etc/shadow" "l:rel:../../../x" &&
	karapace image import ./links.tar links &&
	kp-ls-layer -l links >ls &&
	grep "	abs -> /etc/shadow$" ls && grep "	rel -> ../../../x$" ls
'

test_expect_success 'device nodes, fifos and setuid bits are recorded as metadata' '
	mktar dev.tar "d:dev" "c:dev/null:1,3" "b:dev/sda:8,0" "p:dev/fifo" "s:su:x" &&
	karapace image import ./dev.tar dev &&
	kp-ls-layer -l dev dev >ls &&
	grep "^020644 chardev - 0:0 *1,3	null$" ls &&
	grep "^060644 blockdev - 0:0 *8,0	sda$" ls &&
	grep "^010644 fifo - 0:0 .*	fifo$" ls &&
	kp-ls-layer -l dev >ls && grep "^104755 file .*	su$" ls
'

test_expect_success 'whiteouts in archives become whiteout entries' '
	mktar wh.tar "d:etc" "f:etc/.wh.gone:" "c:etc/also-gone:0,0" "f:etc/.wh..wh..opq:" &&
	karapace image import ./wh.tar wh &&
	kp-ls-layer -l wh etc >ls &&
	grep "^020000 whiteout .*	gone$" ls && grep "^020000 whiteout .*	also-gone$" ls &&
	kp-cat-object -p $(kp-rev-parse wh:etc) >tree && head -n 1 tree >first &&
	echo "# opaque" >expect && test_cmp expect first
'

test_expect_success 'hard links: to an earlier member share its blob; to a missing one are refused' '
	mktar hl.tar "f:a:same" "h:b:a" &&
	karapace image import ./hl.tar hl &&
	test "$(kp-rev-parse hl:a)" = "$(kp-rev-parse hl:b)" &&
	mktar hlmiss.tar "h:b:nowhere" &&
	refused hlmiss.tar "member b is a hard link to nowhere, which is not earlier in the archive"
'

test_expect_success 'truncated archives are refused' '
	mktar full.tar "f:big:$(head -c 30000 /dev/zero | tr "\0" x)" "f:after:y" &&
	xz -k full.tar &&
	head -c $(($(wc -c <full.tar.xz) / 2)) full.tar.xz >cut.tar.xz &&
	refused cut.tar.xz "truncated or corrupt" &&
	head -c 20000 full.tar >cut.tar &&
	refused cut.tar "truncated or corrupt: unexpected end of file" &&
	head -c 30720 full.tar >cut2.tar &&
	refused cut2.tar "no end-of-archive block" &&
	head -c 31744 full.tar >atblock.tar &&
	refused atblock.tar "no end-of-archive block"
'

test_expect_success 'an archive too large for the configured limits is refused' '
	mkdir -p .config/karapace &&
	printf "[images]\nmax_unpacked_bytes = 10000\n" >.config/karapace/config.toml &&
	refused full.tar "more than 10000 bytes of file content; raise \[images\] max_unpacked_bytes" &&
	printf "[images]\nmax_entries = 1\n" >.config/karapace/config.toml &&
	refused full.tar "more than 1 archive members" &&
	rm .config/karapace/config.toml
'

test_expect_success 'after all refusals: no temporary files, store consistent' '
	find store/tmp -mindepth 1 >left && test_line_count = 0 left &&
	kp-fsck &&
	kp-prune >/dev/null && kp-fsck
'

test_done

#!/bin/sh
test_description='kp-write-layer, kp-ls-layer, kp-checkout-layer, kp-diff-layer'
. ./lib.sh

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# describe DIR: every path with its type, mode, size, link target and content
# hash, as find sees it: what a checkout must reproduce.
describe() {
	(cd "$1" && find . -mindepth 1 -printf "%p %y %m %s %l\n" | sort) >"$2.meta" &&
	(cd "$1" && find . -type f -exec b3sum {} + | sort) >"$2.content" &&
	cat "$2.meta" "$2.content" >"$2"
}

test_expect_success 'setup a tree with every kind of entry' '
	kp-init &&
	mkdir -p src/dir/sub src/empty-dir src/exec &&
	echo hello >src/file &&
	printf "" >src/empty &&
	echo script >src/exec/run && chmod 755 src/exec/run &&
	echo secret >src/dir/private && chmod 600 src/dir/private &&
	echo deep >src/dir/sub/deep &&
	ln -s file src/link &&
	ln -s ../../nowhere src/dir/dangling &&
	ln src/file src/dir/hardlink &&
	mkfifo src/fifo &&
	chmod 750 src/dir/sub &&
	printf "with space" >"src/a name" &&
	layer=$(kp-write-layer src) &&
	echo $layer >layer
'

test_expect_success 'the layer lists every entry with modes and targets' '
	kp-ls-layer -r -l $(cat layer) >ls &&
	grep "^100755 file .*	exec/run$" ls &&
	grep "^100600 file .*	dir/private$" ls &&
	grep "^040750 dir .*	dir/sub$" ls &&
	grep "^120777 symlink - .*	link -> file$" ls &&
	grep "^010644 fifo - " ls &&
	grep "	a name$" ls &&
	test_line_count = 14 ls
'

test_expect_success 'hardlinked files share one blob' '
	kp-ls-layer -r $(cat layer) >ls &&
	grep "	file$" ls | cut -d" " -f3 | cut -f1 >a &&
	grep "	dir/hardlink$" ls | cut -d" " -f3 | cut -f1 >b &&
	test_cmp a b
'

test_expect_success 'checkout reproduces content, modes and symlinks exactly' '
	kp-checkout-layer $(cat layer) out &&
	describe src expect &&
	describe out actual &&
	test_cmp expect actual
'

test_expect_success 'checkout hardlinks from the store: no file data is added' '
	id=$(kp-hash-object src/dir/sub/deep) &&
	obj=$(find store/objects -name "${id#??}.blob") &&
	test "$(stat -c %i "$obj")" = "$(stat -c %i out/dir/sub/deep)" &&
	test "$(stat -c %h "$obj")" -ge 2
'

test_expect_success 'checkout --copy makes independent files' '
	kp-checkout-layer --copy $(cat layer) copied &&
	describe copied actual &&
	test_cmp expect actual &&
	test "$(stat -c %h copied/dir/sub/deep)" = 1
'

test_expect_success 'writing the checkout gives the same layer id' '
	test "$(kp-write-layer out)" = "$(cat layer)"
'

test_expect_success 'the same tree always has the same id (order of creation, times)' '
	mkdir -p other/dir/sub other/exec other/empty-dir &&
	printf "with space" >"other/a name" &&
	echo deep >other/dir/sub/deep && chmod 750 other/dir/sub &&
	ln -s ../../nowhere other/dir/dangling &&
	echo secret >other/dir/private && chmod 600 other/dir/private &&
	echo hello >other/dir/hardlink && cp -p other/dir/hardlink other/file &&
	printf "" >other/empty &&
	echo script >other/exec/run && chmod 755 other/exec/run &&
	ln -s file other/link && mkfifo other/fifo &&
	touch -d "2001-01-01" other/file other/dir &&
	test "$(kp-write-layer other)" = "$(cat layer)"
'

test_expect_success 'a different mode, owner or content gives a different id' '
	cp -a src m1 && chmod 700 m1/file &&
	cp -a src m2 && echo changed >m2/dir/sub/deep &&
	a=$(kp-write-layer m1) && b=$(kp-write-layer m2) &&
	test "$a" != "$(cat layer)" && test "$b" != "$(cat layer)" && test "$a" != "$b"
'

test_expect_success ROOT 'ownership is recorded and restored' '
	cp -a src own && chown -R 1234:5678 own/dir &&
	l=$(kp-write-layer own) &&
	kp-ls-layer -l $l dir >ls &&
	grep " 1234:5678 " ls &&
	kp-checkout-layer $l own-out &&
	test "$(stat -c %u:%g own-out/dir/private)" = 1234:5678 &&
	test "$(stat -c %a own-out/dir/private)" = 600
'

test_expect_success 'same content with two modes: both right, no copy of the blob object' '
	mkdir modes && echo same >modes/a && echo same >modes/b &&
	chmod 644 modes/a && chmod 755 modes/b &&
	l=$(kp-write-layer modes) &&
	kp-checkout-layer $l modes-out &&
	test "$(stat -c %a modes-out/a)" = 644 &&
	test "$(stat -c %a modes-out/b)" = 755
'

test_expect_success 'overlay whiteouts and opaque directories become overlay facts' '
	mkdir -p upper/etc upper/opq upper/fuse upper/fuseopq &&
	echo kept >upper/opq/kept && echo k >upper/fuseopq/k &&
	mknod upper/etc/gone c 0 0 &&
	setfattr -n user.overlay.opaque -v y upper/opq &&
	: >upper/fuse/.wh.removed &&
	: >upper/fuseopq/.wh..wh..opq &&
	l=$(kp-write-layer upper) &&
	kp-ls-layer -r $l >ls &&
	grep "^020000 whiteout -	etc/gone$" ls &&
	grep "^020000 whiteout -	fuse/removed$" ls &&
	! grep "wh\\." ls &&
	t=$(kp-rev-parse $l:opq) && kp-cat-object -p $t >opq &&
	head -n 1 opq >first && echo "# opaque" >expect && test_cmp expect first &&
	t=$(kp-rev-parse $l:fuseopq) && kp-cat-object -p $t >fuseopq &&
	grep "^# opaque" fuseopq && ! grep "wh" fuseopq &&
	! kp-cat-object -p $(kp-rev-parse $l:etc) | grep -q opaque
'

test_expect_success 'a checkout of whiteouts and opaque dirs writes overlay format, and round-trips' '
	l=$(kp-write-layer upper) &&
	kp-checkout-layer $l upper-out &&
	test "$(stat -c %F:%t:%T upper-out/etc/gone)" = "character special file:0:0" &&
	getfattr --only-values -n user.overlay.opaque upper-out/opq >v && echo y >expect &&
	printf y >expect && test_cmp expect v &&
	test "$(kp-write-layer upper-out)" = "$l"
'

test_expect_success XATTR 'user xattrs are kept and restored' '
	mkdir x && echo v >x/f && setfattr -n user.color -v blue x/f &&
	l=$(kp-write-layer x) &&
	mkdir y && echo v >y/f && test "$(kp-write-layer y)" != "$l" &&
	kp-checkout-layer $l x-out &&
	getfattr --only-values -n user.color x-out/f >v &&
	printf blue >expect && test_cmp expect v
'

test_expect_success 'sockets are left out with a warning' '
	mkdir sock && echo f >sock/f &&
	python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind(\"sock/s\")" &&
	kp-write-layer sock >id 2>err &&
	grep "sock/s: socket: not stored" err &&
	kp-ls-layer $(cat id) >ls && test_line_count = 1 ls
'

test_expect_success ROOT 'device nodes are recorded and recreated with privilege' '
	mkdir dev && mknod dev/null c 1 3 && chmod 666 dev/null &&
	l=$(kp-write-layer dev) &&
	kp-ls-layer -l $l >ls && grep "^020666 chardev - 0:0 *1,3	null$" ls &&
	kp-checkout-layer $l dev-out &&
	test "$(stat -c %t:%T dev-out/null)" = "1:3"
'

test_expect_success 'diff-layer shows added, deleted, modified and type changes' '
	cp -a src d2 &&
	echo more >d2/new && rm d2/empty && echo changed >d2/file &&
	rm d2/link && mkdir d2/link && echo in >d2/link/inner &&
	chmod 700 d2/exec &&
	a=$(cat layer) && b=$(kp-write-layer d2) &&
	kp-diff-layer $a $b >actual &&
	cat >expect <<-\EOF &&
	M	dir/hardlink
	D	empty
	M	exec
	M	file
	T	link
	A	link/inner
	A	new
	EOF
	test_cmp expect actual &&
	kp-diff-layer $a $a >none && test_line_count = 0 none &&
	test_expect_code 1 kp-diff-layer --exit-code $a $b >/dev/null
'

test_expect_success 'odd names are quoted, or raw with -z' '
	mkdir odd && echo x >"odd/new
line" &&
	l=$(kp-write-layer odd) &&
	kp-ls-layer $l >ls && grep "	\"new\\\\nline\"$" ls &&
	kp-ls-layer -z $l | tr "\0" "\n" >raw && grep "^line$" raw
'

test_expect_success 'layers record kind, parents and provenance' '
	base=$(cat layer) &&
	top=$(kp-write-layer --kind snapshot --parent $base --provenance source=test --provenance tool=t1100 d2) &&
	kp-cat-object -p $top >json &&
	grep "\"kind\": \"snapshot\"" json &&
	grep "\"$base\"" json &&
	grep "\"source\": \"test\"" json &&
	test_expect_code 64 kp-write-layer --kind bogus d2 &&
	test_must_fail kp-write-layer --parent 0000 d2
'

test_expect_success 'ten trees differing by one file store one copy plus metadata' '
	kp-init --store s10 >/dev/null &&
	mkdir ten && head -c 4000000 /dev/urandom >ten/big &&
	for i in 0 1 2 3 4 5 6 7 8 9; do
		echo $i >ten/small && kp-write-layer --store s10 ten >/dev/null || return 1
	done &&
	used=$(du -sb s10/objects | cut -f1) &&
	test "$used" -lt 4200000
'

test_expect_success 'bad input: missing dir, a file, non-empty destination' '
	test_expect_code 1 kp-write-layer nothere 2>err && grep nothere err &&
	test_expect_code 1 kp-write-layer src/file 2>err && grep "not a directory" err &&
	test_expect_code 1 kp-checkout-layer $(cat layer) src 2>err && grep "not empty" err &&
	test_expect_code 1 kp-checkout-layer ffff0000 new 2>err && grep "unknown revision" err &&
	test_expect_code 64 kp-checkout-layer $(cat layer)
'

test_expect_success ROOTLESS 'rootless: write and checkout as an unprivileged user' '
	mkdir rl && chown $KP_TEST_USER rl &&
	(cd rl &&
	 as_user kp-init --store st >/dev/null &&
	 as_user sh -c "mkdir t && echo u >t/f && chmod 640 t/f && ln -s f t/l && mkdir t/d && mknod t/d/w c 0 0 2>/dev/null; true" &&
	 l=$(as_user kp-write-layer --store st t) &&
	 as_user kp-checkout-layer --store st $l co &&
	 test "$(stat -c %a co/f)" = 640 &&
	 test "$(readlink co/l)" = f &&
	 test "$(as_user kp-write-layer --store st co)" = "$l")
'

# Linux lets anyone create the 0/0 whiteout device since 5.8; older kernels get an
# xwhiteout file instead. Either must read back as the same whiteout.
test_expect_success ROOTLESS 'rootless: a whiteout checks out in overlay format and round-trips' '
	(cd rl &&
	 as_user sh -c "mkdir -p wsrc/d && echo a >wsrc/d/a && mknod wsrc/d/gone c 0 0" &&
	 l=$(as_user kp-write-layer --store st wsrc) &&
	 as_user kp-ls-layer --store st -r $l >ls &&
	 grep "^020000 whiteout -	d/gone$" ls &&
	 as_user kp-checkout-layer --store st $l wco &&
	 { test "$(stat -c %t:%T wco/d/gone)" = 0:0 ||
	   getfattr -n user.overlay.whiteout wco/d/gone; } &&
	 test "$(as_user kp-write-layer --store st wco)" = "$l")
'

test_lazy_prereq STRACE 'command -v strace'

# many DIR N: N one-line files in DIR, in directories of 1,000.
many() {
	mkdir "$1" && (cd "$1" && i=0 && while [ "$i" -lt "$2" ]; do
		d=d$((i / 1000)) && mkdir -p $d && echo "file $i" >$d/f$i && i=$((i + 1)) || exit 1
	done)
}

# calls_per_file RUN N: a first write of N small files as RUN (nothing, or
# as_user) into a new store makes fewer than 11 system calls per file (the
# count is the kernel's, whatever the load: the file's fstatat, openat,
# read, flistxattr and close, and its blob's fstatat, openat, write,
# renameat and close; fcntl is left out, what a debug build adds to each
# close), gives the same layer again, and leaves nothing in tmp/.
calls_per_file() {
	$1 kp-init --store cs >/dev/null &&
	$1 strace -f -c -e trace=!fcntl -o calls kp-write-layer --store cs many >id &&
	total=$(awk "\$NF == \"total\" {print \$(NF-2)}" calls) &&
	echo "$total system calls for $2 files" &&
	test "$total" -lt $((11 * $2)) &&
	test "$($1 kp-write-layer --store cs many)" = "$(cat id)" &&
	test "$(ls cs/tmp | wc -l)" = 0 &&
	$1 kp-fsck --store cs
}

test_expect_success STRACE 'a first write makes fewer than 11 system calls per file' '
	many many 2000 &&
	calls_per_file "" 2000
'

test_expect_success STRACE,ROOTLESS 'rootless: fewer than 11 system calls per file' '
	(cd rl && many many 2000 && chown -R $KP_TEST_USER . &&
	 calls_per_file as_user 2000)
'

test_expect_success 'a blob cut short by a crash is written again whole' '
	kp-init --store cut >/dev/null &&
	mkdir short && echo "some content" >short/f &&
	l=$(kp-write-layer --store cut short) &&
	blob=$(kp-hash-object short/f) &&
	obj=cut/objects/$(echo $blob | cut -c1-2)/$(echo $blob | cut -c3-).blob &&
	chmod u+w $obj && printf some >$obj &&
	test_must_fail kp-fsck --store cut &&
	test "$(kp-write-layer --store cut short)" = "$l" &&
	test_cmp short/f $obj &&
	kp-fsck --store cut &&
	test "$(ls cut/tmp | wc -l)" = 0
'

test_done

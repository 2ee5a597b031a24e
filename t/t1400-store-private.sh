#!/bin/sh
test_description='the store belongs to its owner: 0700 directories whatever the umask, 0600 lock files, no symlink followed, doctor --fix'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'

# exposed STORE: the store's own directories that are not 0700 and its lock
# files (locks/*, envs/*/lock, run markers) that are not 0600; environment
# content (envs/*/upper, cache/checkouts/*, what writers keep in tmp/) keeps
# the modes the environment needs and is left out.
# (envs/*/work/*/work is overlayfs's own work directory: the kernel makes it, mode 0.)
exposed() {
	find "$1" \( -path "$1/envs/*/upper" -o -path "$1/cache/checkouts/*" -o -path "$1/tmp/*" \
		-o -path "$1/envs/*/work/*/work" \) -prune -o \
		\( -type d ! -perm 700 -print \) -o \
		\( -type f \( -path "$1/locks/*" -o -path "$1/envs/*/lock" -o -path "$1/envs/*/run/*" \
			-o -path "$1/envs/*/share/*" \) ! -perm 600 -print \)
}

# in_dir DIR RUN CMD...: CMD in DIR as RUN ("" for the caller, as_user).
in_dir() {
	(dir=$1 run=$2 && shift 2 && cd "$dir" && $run "$@")
}

# Each scenario runs in its own directory: r/ as the caller (root), u/ as the
# unprivileged test user.
setup_dir() {
	mkdir -p "$1" && if test -n "$2"; then chown "$KP_TEST_USER" "$1"; fi
}

test_init_modes() {
	setup_dir $1 "$2" &&
	in_dir $1 "$2" sh -c "umask 022 && kp-init --store s022 >/dev/null && umask 000 && karapace --store s000 init >/dev/null" &&
	test "$(stat -c %a $1/s022)" = 700 && test "$(stat -c %a $1/s000)" = 700 &&
	exposed $1/s022 >$1/out && exposed $1/s000 >>$1/out &&
	test_must_be_empty $1/out
}

test_expect_success 'init under umask 022 and 000: every store directory is 0700' '
	test_init_modes r ""
'

test_expect_success ROOTLESS 'rootless: init under umask 022 and 000: every store directory is 0700' '
	test_init_modes u as_user
'

# build_env DIR RUN: a busybox environment `box` in DIR/store, built, run,
# committed and gc-ed under umask 000.
build_env() {
	setup_dir $1 "$2" &&
	fixture_busybox_rootfs $1/proj/rootfs && write_manifest $1/proj ./rootfs &&
	if test -n "$2"; then chown -R "$KP_TEST_USER" $1/proj; fi &&
	in_dir $1 "$2" sh -c "umask 000 && export KARAPACE_STORE=\$PWD/store &&
		karapace build proj --name box >id &&
		karapace exec box -- sh -c \"echo hi >/f\" &&
		karapace commit box >/dev/null && karapace gc >/dev/null"
}

test_build_modes() {
	build_env $1 "$2" &&
	exposed $1/store >$1/out &&
	test_must_be_empty $1/out &&
	test "$(stat -c %a $1/store/envs/$(cat $1/id)/upper)" = 755
}

test_expect_success SANDBOX 'build, exec, commit and gc under umask 000: store directories 0700, lock files 0600' '
	test_build_modes r ""
'

test_expect_success SANDBOX,ROOTLESS 'rootless: build, exec, commit and gc under umask 000: store directories 0700, lock files 0600' '
	test_build_modes u as_user
'

# locks_closed DIR OTHER: OTHER (a command prefix) can open none of the lock
# files of DIR/store, even with every directory above them opened up.
locks_closed() {
	test_when_finished "chmod 700 $1/store $1/store/locks $1/store/envs $1/store/envs/*" &&
	chmod 755 $1/store $1/store/locks $1/store/envs $1/store/envs/* &&
	test -f $1/store/locks/gc && test -f $1/store/envs/$(cat $1/id)/lock &&
	for f in $1/store/locks/* $1/store/envs/*/lock; do
		test_must_fail $3 sh -c "exec 9<$f" 2>err &&
		grep "Permission denied" err || return 1
	done
}

test_expect_success SANDBOX,ROOTLESS 'another user cannot open the lock files of root'"'"'s store' '
	locks_closed r "" as_user
'

test_lazy_prereq ROOTLESS_BOTH 'test_have_prereq ROOTLESS && test_have_prereq ROOTLESS_SINGLE'

test_expect_success SANDBOX,ROOTLESS_BOTH 'another user cannot open the lock files of a rootless store' '
	locks_closed u as_user as_single_user
'

# outside DIR: a directory outside the store holding a canary file.
outside() {
	mkdir -p $1/outside && echo canary >$1/outside/canary && chmod 644 $1/outside/canary &&
	if test -n "$2"; then chown -R "$KP_TEST_USER" $1/outside; fi
}

# untouched DIR: the outside directory still holds only its canary, as it was.
untouched() {
	echo canary >expect && test_cmp expect $1/outside/canary &&
	test "$(stat -c %a $1/outside/canary)" = 644 &&
	ls $1/outside >ls && echo canary >expect && test_cmp expect ls
}

# planted DIR RUN PATH CMD...: with a symlink to DIR/outside planted at
# DIR/store/PATH, CMD fails with exit 3 naming PATH as a symlink, and nothing
# outside is written or removed.
planted() {
	dir=$1 run=$2 at=$3 &&
	shift 3 &&
	outside $dir "$run" &&
	mv $dir/store/$at $dir/saved &&
	ln -s "$PWD/$dir/outside" $dir/store/$at &&
	{ in_dir $dir "$run" env KARAPACE_STORE="$PWD/$dir/store" "$@" 2>err; echo $? >code; } &&
	rm $dir/store/$at && mv $dir/saved $dir/store/$at &&
	echo 3 >expect && test_cmp expect code &&
	grep "store/$at: a symlink where the store expects a directory" err &&
	untouched $dir
}

test_planted() {
	id=$(cat $1/id) &&
	planted $1 "$2" tmp karapace gc &&
	in_dir $1 "$2" env KARAPACE_STORE="$PWD/$1/store" karapace exec box -- sh -c "echo new >/g" &&
	planted $1 "$2" tmp karapace commit box &&
	planted $1 "$2" envs/$id/work karapace exec box -- true &&
	planted $1 "$2" envs/$id/upper karapace diff box &&
	planted $1 "$2" envs/$id/upper karapace commit box &&
	planted $1 "$2" envs/$id/run karapace exec box -- true &&
	layer=$(ls $1/store/cache/checkouts | head -n 1) && test -n "$layer" &&
	planted $1 "$2" cache/checkouts/$layer karapace exec box -- true &&
	planted $1 "$2" cache/checkouts karapace exec box -- true &&
	in_dir $1 "$2" env KARAPACE_STORE="$PWD/$1/store" karapace exec box -- cat /f >out &&
	echo hi >expect && test_cmp expect out
}

test_expect_success SANDBOX 'a symlink planted at a store path is refused, never followed' '
	test_planted r ""
'

test_expect_success SANDBOX,ROOTLESS 'rootless: a symlink planted at a store path is refused, never followed' '
	test_planted u as_user
'

test_doctor_fix() {
	setup_dir $1 "$2" &&
	in_dir $1 "$2" sh -c "kp-init --store d >/dev/null && chmod 755 d d/objects && touch d/locks/gc && chmod 666 d/locks/gc" &&
	in_dir $1 "$2" karapace --store d doctor >out;
	grep "^warn  store permissions: 3 path(s) open to other users" out &&
	grep "d is 0755" out && grep "d/locks/gc is 0666" out &&
	in_dir $1 "$2" karapace --store d doctor --fix >out;
	grep "^fixed store permissions: d: 3 path(s) made private" out &&
	grep "^ok    store permissions" out &&
	test "$(stat -c %a $1/d $1/d/objects $1/d/locks/gc)" = "700
700
600" &&
	exposed $1/d >out && test_must_be_empty out &&
	ln -s /tmp $1/d/cache/checkouts &&
	in_dir $1 "$2" karapace --store d doctor >out;
	grep "^fail  store permissions: symlinks .*d/cache/checkouts is a symlink" out
}

test_expect_success 'doctor reports a store open to others; doctor --fix makes it private' '
	test_doctor_fix r ""
'

test_expect_success ROOTLESS 'rootless: doctor reports a store open to others; doctor --fix makes it private' '
	test_doctor_fix u as_user
'

test_expect_success 'doctor --fix with nothing to fix changes nothing; a bad option is a usage error' '
	kp-init --store clean >/dev/null &&
	karapace --store clean doctor --fix >out;
	! grep "^fixed" out && grep "^ok    store permissions" out &&
	test_expect_code 64 karapace --store clean doctor --fox
'

test_done

#!/bin/sh
test_description='list reads its summary while the records are unchanged, and the records as soon as one is written'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_lazy_prereq BUSYBOX 'command -v busybox'
test_lazy_prereq STRACE 'command -v strace'
if ! test_have_prereq BUSYBOX; then
	test_skip_all "needs busybox-static"
fi

N=30

# scenario DIR: in DIR, as $run (empty, or as_user), a store of $N
# environments recorded by the plumbing `karapace pull` uses (no sandbox),
# one named; then list from the records and from the summary, with records
# written behind it, edited in place and the summary damaged.
scenario() {
	d=$1 &&
	mkdir "$d" && fixture_busybox_rootfs "$d/rootfs" &&
	{ test -z "$run" || chown -R "$KP_TEST_USER" "$d"; } &&
	(cd "$d" &&
	 export KARAPACE_STORE="$PWD/st" &&
	 $run karapace init >/dev/null &&
	 base=$($run karapace image import "$PWD/rootfs" bb | awk "{print \$2}") && test -n "$base" &&
	 i=0 && while test $i -lt $N; do
		$run mkdir -p "m$i" &&
		printf "manifest_version = 1\n[base]\nimage = \"bb\"\n[mounts]\nm = \"/tmp:/mnt/$i:ro\"\n" >"m$i/karapace.toml" &&
		$run kp-resolve --image-digest "$base" "m$i" >/dev/null &&
		$run kp-record-env "m$i/karapace.lock" "$base" >>ids || exit 1
		i=$((i + 1))
	 done &&
	 first=$(head -n 1 ids) &&
	 $run karapace rename "$first" web &&

	 # From the records, then (the store left alone for the two seconds
	 # that make a listing safe to save) the summary is written and read.
	 $run karapace list >from-records &&
	 $run karapace --json list >from-records.json &&
	 test "$(grep -c " built " from-records)" = $N &&
	 sleep 3 &&
	 $run karapace list >saved &&
	 test_path_is_file st/cache/envs-list &&
	 test_cmp from-records saved &&
	 $run karapace list >from-summary &&
	 $run karapace --json list >from-summary.json &&
	 test_cmp from-records from-summary &&
	 test_cmp from-records.json from-summary.json &&
	 { ! test_have_prereq STRACE ||
	   { $run strace -f -e trace=openat,openat2 -o opens karapace list >traced &&
	     test_cmp from-records traced &&
	     echo "$(wc -l <opens) opens for $N environments" &&
	     test "$(wc -l <opens)" -lt $N; }; } &&
	 $run karapace doctor >doc || true &&
	 grep "^ok    list summary: agrees with the environment records" doc &&

	 # A record written behind the summary (what a crash between a
	 # record write and the next list leaves) is seen at once.
	 $run karapace rename web app &&
	 $run karapace list >after-rename &&
	 grep " app " after-rename && ! grep " web " after-rename &&
	 test "$(grep -c " built " after-rename)" = $N &&

	 # A damaged summary is never believed: the records are read.
	 sleep 3 && $run karapace list >/dev/null &&
	 head -c 300 st/cache/envs-list >cut && cat cut >st/cache/envs-list &&
	 $run karapace list >after-cut &&
	 test_cmp after-rename after-cut &&

	 # A record edited in place moves no directory time: the summary
	 # stands until doctor --fix removes it.
	 rec=st/meta/envs/$first.json &&
	 cp "$rec" app-record &&
	 $run karapace rename app db &&
	 sleep 3 && $run karapace list >/dev/null &&
	 cat app-record >"$rec" &&
	 $run karapace list >stale &&
	 grep " db " stale &&
	 $run karapace doctor >doc || true &&
	 grep "^warn  list summary: .*envs-list differs from the environment records" doc &&
	 $run karapace doctor --fix >doc || true &&
	 grep "^fixed list summary" doc &&
	 test_path_is_missing st/cache/envs-list &&
	 $run karapace list >fixed &&
	 grep " app " fixed && ! grep " db " fixed)
}

test_expect_success 'as the store owner (root)' '
	run= scenario root
'

test_expect_success ROOTLESS 'as an unprivileged user' '
	run=as_user scenario user
'

test_done

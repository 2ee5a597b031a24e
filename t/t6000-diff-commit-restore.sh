#!/bin/sh
test_description='drift: diff, commit, snapshots and restore, exactly, deletions and replaced directories included'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

# fixture DIR: a busybox root with files to modify, delete and replace.
fixture() {
	fixture_busybox_rootfs "$1/rootfs" &&
	mkdir -p "$1/rootfs/srv/keep" "$1/rootfs/srv/olddir" "$1/rootfs/run" &&
	echo a >"$1/rootfs/srv/keep/a" &&
	echo g >"$1/rootfs/srv/gone" &&
	echo x >"$1/rootfs/srv/olddir/x" &&
	echo y >"$1/rootfs/srv/olddir/y" &&
	echo same >"$1/rootfs/srv/same" &&
	echo m >"$1/rootfs/srv/modeonly" &&
	write_manifest "$1" ./rootfs
}

# change ENV: adds, modifies, deletes and replaces, and copies a file up
# without changing it.
change() {
	karapace exec "$1" -- sh -c '
		echo new >/srv/added &&
		echo changed >>/srv/keep/a &&
		rm /srv/gone &&
		rm -rf /srv/olddir && mkdir /srv/olddir && echo fresh >/srv/olddir/z &&
		chmod 600 /srv/modeonly &&
		: >>/srv/same &&
		ln -s keep/a /srv/link
	'
}

# tree ENV: every path of the environment's root with type, mode, owner, and
# file contents' checksums.
tree() {
	karapace exec "$1" -- sh -c '
		find / -xdev | sort | while read -r p; do stat -c "%n %F %a %u:%g" "$p"; done &&
		find / -xdev -type f | sort | xargs md5sum
	'
}

test_expect_success 'setup: an environment over a busybox image' '
	fixture proj &&
	karapace build proj --name x >id
'

test_expect_success 'diff of a fresh environment is empty' '
	karapace diff x >out &&
	test ! -s out
'

test_expect_success 'diff shows added, modified, deleted and replaced paths' '
	change x &&
	karapace diff x >out &&
	cat >expect <<-\EOF &&
	A /srv/added
	D /srv/gone
	M /srv/keep/a
	A /srv/link
	M /srv/modeonly
	R /srv/olddir
	A /srv/olddir/z
	EOF
	test_cmp expect out
'

test_expect_success 'diff --json' '
	karapace --json diff x >json &&
	grep "{\"path\":\"/srv/gone\",\"status\":\"deleted\",\"type\":\"file\"}" json &&
	grep "{\"path\":\"/srv/olddir\",\"status\":\"replaced\",\"type\":\"dir\"}" json &&
	grep "{\"path\":\"/srv/link\",\"status\":\"added\",\"type\":\"symlink\"}" json
'

test_expect_success 'commit makes a snapshot; committing again adds none' '
	tree x >tree.committed &&
	karapace diff x >diff.committed &&
	karapace --json commit x >c1 &&
	grep "\"new\":true" c1 &&
	snap=$(sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" c1) &&
	echo $snap >snap &&
	kp-cat-object -t $snap >type && echo layer >expect && test_cmp expect type &&
	karapace --json commit x >c2 &&
	grep "\"new\":false" c2 && grep "$snap" c2 &&
	karapace snapshots x >list &&
	test_line_count = 2 list &&
	grep "^$(echo $snap | cut -c1-12)  .* $snap\$" list
'

test_expect_success 'size added counts only content the layers do not hold' '
	# new + a/changed + fresh: /srv/same and /srv/modeonly are in the base.
	karapace --json snapshots x >json &&
	grep "\"size_added\":20," json
'

test_expect_success 'restore brings back the committed tree exactly' '
	karapace exec x -- sh -c "
		echo more >/srv/more && rm /srv/keep/a && echo again >>/srv/added &&
		rm -rf /srv/olddir && echo back >/srv/gone && rm /bin/ls && chmod 700 /srv
	" &&
	tree x >tree.changed &&
	! test_cmp tree.committed tree.changed &&
	stat -c %i store/envs/$(cat id)/upper/srv/same >ino.before &&
	karapace restore x $(cut -c1-8 snap) >out &&
	grep "restored x to snapshot $(cat snap)" out &&
	tree x >tree.restored &&
	test_cmp tree.committed tree.restored &&
	# What the writable layer already had exactly is linked, not copied.
	stat -c %i store/envs/$(cat id)/upper/srv/same >ino.after &&
	test_cmp ino.before ino.after &&
	karapace diff x >diff.restored &&
	test_cmp diff.committed diff.restored &&
	ls store/envs/$(cat id) >left && ! grep upper.new left
'

test_expect_success 'a second snapshot, then back to the first and forth again' '
	karapace exec x -- sh -c "echo two >/srv/two && rm /srv/same" &&
	tree x >tree.two &&
	karapace --json commit x >c3 &&
	snap2=$(sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" c3) &&
	karapace restore x $(cat snap) &&
	tree x >out && test_cmp tree.committed out &&
	karapace restore x $snap2 &&
	tree x >out && test_cmp tree.two out
'

test_expect_success 'restore refuses unknown and ambiguous snapshots, and running environments' '
	test_expect_code 1 karapace restore x 0000 2>err &&
	grep "no snapshot \"0000\"" err &&
	test_expect_code 64 karapace restore x &&
	karapace exec x -- sleep 30 &
	pid=$! &&
	i=0 &&
	while karapace list >list && ! grep " running " list >/dev/null; do
		sleep 0.05; i=$((i + 1)); test $i -lt 200 || return 1
	done &&
	test_expect_code 1 karapace restore x $(cat snap) 2>err &&
	grep "is running" err &&
	karapace stop x && wait $pid;
	true
'

test_expect_success 'snapshots are gc roots' '
	kp-prune >/dev/null && kp-fsck &&
	karapace restore x $(cat snap) &&
	tree x >out && test_cmp tree.committed out
'

test_expect_success 'a leftover of an interrupted restore is removed on the next use' '
	mkdir -p store/envs/$(cat id)/upper.new/junk &&
	karapace diff x >out &&
	test_cmp diff.committed out &&
	test_path_is_missing store/envs/$(cat id)/upper.new
'

test_expect_success 'the hash cache never hides a change: content rewritten in place with size and mtime kept' '
	karapace exec x -- sh -c "echo aaaa >/cached && touch -d @1000000000 /cached" &&
	sleep 3 &&
	karapace --json commit x >c1 &&
	grep "^kp-hashes 1\$" store/envs/$(cat id)/hashes &&
	test $(wc -l <store/envs/$(cat id)/hashes) -gt 1 &&
	karapace exec x -- sh -c "echo bbbb >/cached && touch -d @1000000000 /cached" &&
	karapace --json commit x >c2 &&
	grep "\"new\":true" c2 &&
	for c in c1 c2; do
		sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" $c >$c.id || return 1
	done &&
	karapace restore x $(cat c1.id) && karapace exec x -- cat /cached >out &&
	echo aaaa >expect && test_cmp expect out &&
	karapace restore x $(cat c2.id) && karapace exec x -- cat /cached >out &&
	echo bbbb >expect && test_cmp expect out &&
	karapace restore x $(cat snap)
'

test_expect_success 'frozen environments cannot be restored' '
	karapace freeze x &&
	test_expect_code 1 karapace restore x $(cat snap) 2>err &&
	grep "frozen" err
'

test_expect_success ROOTLESS 'rootless: diff, commit and restore as an unprivileged user' '
	mkdir rl && fixture rl/proj && chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 export KARAPACE_STORE="$PWD/st" &&
	 as_user karapace build proj --name mine >id &&
	 as_user karapace exec mine -- sh -c "
		echo new >/srv/added && rm /srv/gone &&
		rm -rf /srv/olddir && mkdir /srv/olddir && echo fresh >/srv/olddir/z" &&
	 as_user karapace diff mine >out &&
	 cat >expect <<-\EOF &&
	A /srv/added
	D /srv/gone
	R /srv/olddir
	A /srv/olddir/z
	EOF
	 test_cmp expect out &&
	 as_user karapace --json commit mine >c &&
	 snap=$(sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" c) &&
	 as_user karapace exec mine -- sh -c "ls / >/dev/null; find /srv | sort" >before &&
	 as_user karapace exec mine -- sh -c "rm -rf /srv/olddir /srv/added; echo back >/srv/gone" &&
	 as_user karapace restore mine $snap &&
	 as_user karapace exec mine -- sh -c "ls / >/dev/null; find /srv | sort" >after &&
	 test_cmp before after &&
	 as_user karapace diff mine >out2 &&
	 test_cmp expect out2)
'

test_expect_success SUBUID 'rootless with a subordinate range: what other users own inside, in private directories, is diffed, committed, restored, exported and destroyed' '
	mkdir rs && fixture rs/proj && chown -R $KP_TEST_USER rs &&
	(cd rs &&
	 export KARAPACE_STORE="$PWD/st" &&
	 as_user karapace build proj --name sub >id &&
	 as_user karapace exec sub -- sh -c "mkdir -m 700 /private && echo secret >/private/f && chown -R 1000:1000 /private" &&
	 start=$(grep "^$KP_TEST_USER:" /etc/subuid | head -n1 | cut -d: -f2) &&
	 test "$(stat -c %u st/envs/$(cat id)/upper/private)" = $((start + 999)) &&
	 as_user karapace diff sub >out &&
	 grep "^A /private/f\$" out &&
	 as_user karapace --json commit sub >c &&
	 snap=$(sed "s/.*\"snapshot\":\"\([0-9a-f]*\)\".*/\1/" c) &&
	 as_user karapace exec sub -- rm -rf /private &&
	 as_user karapace restore sub $snap &&
	 as_user karapace exec sub -- sh -c "ls -ln /private; cat /private/f" >out &&
	 grep " 1000 *1000 " out && grep "^secret\$" out &&
	 as_user karapace export sub drift.tar &&
	 tar tvf drift.tar >list && grep "1000/1000 .* private/f\$" list &&
	 as_user karapace destroy sub &&
	 test_path_is_missing st/envs/$(cat id))
'

test_expect_success SUBUID 'killing a mapped command kills its re-run too' '
	(cd rs &&
	 export KARAPACE_STORE="$PWD/st" &&
	 name=kill$$ &&
	 as_user karapace build proj --name $name >/dev/null &&
	 as_user karapace exec $name -- dd if=/dev/urandom of=/big bs=1M count=256 2>/dev/null &&
	 as_user karapace snapshots $name >before &&
	 { timeout -s KILL 0.1 setpriv --reuid="$KP_TEST_USER" --regid="$KP_TEST_USER" --init-groups \
		env HOME="$HOME" PATH="$PATH" karapace commit $name; echo $? >code; } &&
	 echo 137 >expect && test_cmp expect code &&
	 sleep 1 &&
	 ! pgrep -u "$KP_TEST_USER" -f "karapace commit $name" &&
	 as_user karapace snapshots $name >after &&
	 test_cmp before after &&
	 as_user karapace verify-store >/dev/null &&
	 as_user karapace destroy $name >/dev/null)
'

test_expect_success SUBUID 'when newuidmap refuses the range, mapped commands run as the user alone, with a warning' '
	mkdir -p rs/fakebin &&
	printf "#!/bin/sh\necho refused >&2\nexit 1\n" >rs/fakebin/newuidmap &&
	cp rs/fakebin/newuidmap rs/fakebin/newgidmap &&
	chmod +x rs/fakebin/* &&
	(cd rs &&
	 export KARAPACE_STORE="$PWD/st" &&
	 as_user karapace build proj --name alone >/dev/null &&
	 as_user karapace exec alone -- sh -c "echo mine >/mine" &&
	 PATH="$PWD/fakebin:$PATH" as_user karapace diff alone >out 2>err &&
	 grep "^A /mine\$" out &&
	 grep "cannot run mapped.*refused" err &&
	 as_user karapace destroy alone >/dev/null)
'

test_done

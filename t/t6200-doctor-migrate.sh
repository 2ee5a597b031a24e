#!/bin/sh
test_description='doctor reports ok/warn/fail with fixes and changes nothing; migrate reports the format'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'

test_expect_success 'doctor without a store: one line per check, creates nothing' '
	karapace doctor >out &&
	grep -c "^\(ok\|warn\|fail\)  " out >n && echo 9 >expect && test_cmp expect n &&
	grep "^warn  store: no store at $KARAPACE_STORE" out &&
	grep "fix: .karapace init." out &&
	test_path_is_missing "$KARAPACE_STORE"
'

test_expect_success SANDBOX 'doctor sees user namespaces and overlayfs where they work' '
	karapace doctor >out &&
	grep "^ok    user namespaces" out &&
	grep "^ok    overlay" out
'

test_expect_success SANDBOX 'doctor says which OCI runtimes work, and why the others do not' '
	mkdir -p fakert && printf "#!/bin/sh\nexit 1\n" >fakert/crun && chmod +x fakert/crun &&
	PATH="$PWD/fakert:$PATH" karapace doctor >out;
	grep "oci runtimes: " out >line &&
	grep "crun: fails here (" line &&
	if command -v youki >/dev/null; then :; else grep "youki: not installed" line; fi &&
	if grep "runc: works" line
	then grep "^ok    oci runtimes: auto picks runc;" line
	else grep "^warn  oci runtimes: none works" line && grep -A1 "oci runtimes" out | grep "fix: install runc"
	fi
'

test_expect_success ROOT 'doctor names the range root s environments run in' '
	start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1) &&
	if test -z "$start"; then
		karapace doctor --fix >out &&
		grep "^fixed subordinate ids: karapace:" out &&
		start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1)
	fi &&
	karapace doctor >out &&
	grep "^ok    subordinate ids: root.s environments run as $start+65536" out
'

test_expect_success 'doctor --json' '
	karapace --json doctor >json &&
	grep "\"name\":\"cgroup delegation\"" json &&
	grep "\"name\":\"subordinate ids\"" json
'

test_expect_success SANDBOX 'a sound store is ok, and doctor leaves it as it was' '
	fixture_busybox_rootfs proj/rootfs && write_manifest proj ./rootfs &&
	karapace build proj --name d >id &&
	find store | sort >before &&
	karapace doctor >out &&
	grep "^ok    store: " out &&
	find store | sort >after &&
	test_cmp before after
'

test_expect_success SANDBOX 'a store missing a layer fails with the fix' '
	cp -a store broken &&
	karapace --json inspect d >j &&
	l=$(sed "s/.*\"layers\":\[\"\([0-9a-f]*\)\".*/\1/" j) &&
	rm broken/objects/$(echo $l | cut -c1-2)/$(echo $l | cut -c3-).layer &&
	test_expect_code 1 karapace --store broken doctor >out &&
	f=objects/$(echo $l | cut -c1-2)/$(echo $l | cut -c3-).layer &&
	grep "^fail  store: .*environment d, base layer: layer $l (broken/$f) is missing" out &&
	grep "fix: .*karapace verify-store." out
'

# damage STORE: (a path without spaces) truncates one blob of STORE to 1 byte and deletes another;
# writes their ids, paths and sizes to truncated and deleted ("ID PATH SIZE").
cat >damage.sh <<\END
set -e
find "$1/objects" -name "*.blob" -size +2c | sort | head -n 2 >blobs
test $(wc -l <blobs) = 2
n=0
for f in $(cat blobs); do
	id=$(basename $(dirname $f))$(basename $f .blob)
	if test $n = 0; then
		echo "$id $f $(wc -c <$f)" >truncated && truncate -s 1 $f
	else
		echo "$id $f $(wc -c <$f)" >deleted && rm $f
	fi
	n=$((n + 1))
done
END

# names_damage: doctor's output (out) names the truncated and the deleted
# blob by id and path, with the fix, and the store is as it was (state).
names_damage() {
	read id path size <truncated &&
	grep "^fail  store: .*environment [a-z]*, base layer: blob $id (.*$path) has 1 bytes where its tree says $size" out &&
	read id path size <deleted &&
	grep "^fail  store: .*environment [a-z]*, base layer: blob $id (.*$path) is missing" out &&
	grep "fix: .karapace image import .*/proj/rootfs.* rootfs. stores the image.s files again" out
}

# state STORE: every path with its size and content hash.
state() {
	(cd "$1" && find . -printf "%p %s %y\n" | sort && find . -type f -exec md5sum {} + | sort)
}

test_expect_success SANDBOX 'a truncated and a deleted object are named by id and path, and nothing changes' '
	rm -rf broken && cp -a store broken &&
	sh damage.sh broken &&
	state broken >before &&
	test_expect_code 1 karapace --store broken doctor >out &&
	names_damage &&
	state broken >after &&
	test_cmp before after &&
	karapace --store broken image import "$PWD/proj/rootfs" rootfs >/dev/null &&
	karapace --store broken doctor >out &&
	grep "^ok    store: " out &&
	karapace --store broken verify-store
'

test_expect_success SANDBOX,ROOTLESS 'rootless: a truncated and a deleted object are named, nothing changes' '
	mkdir rl && fixture_busybox_rootfs rl/proj/rootfs && write_manifest rl/proj ./rootfs &&
	chown -R $KP_TEST_USER rl &&
	(cd rl &&
	 KARAPACE_STORE="$PWD/st" && export KARAPACE_STORE &&
	 as_user karapace build proj --name mine >/dev/null &&
	 as_user sh ../damage.sh st &&
	 state st >before &&
	 test_expect_code 1 as_user karapace doctor >out &&
	 names_damage &&
	 state st >after &&
	 test_cmp before after &&
	 as_user karapace image import "$PWD/proj/rootfs" rootfs >/dev/null &&
	 as_user karapace doctor >out &&
	 grep "^ok    store: " out)
'

test_expect_success 'migrate: format 1 is up to date' '
	karapace init >/dev/null &&
	karapace migrate >out &&
	echo "$KARAPACE_STORE: store format 1, up to date" >expect &&
	test_cmp expect out &&
	karapace --json migrate >json &&
	grep "\"found\":1" json && grep "\"upgraded\":\[\]" json
'

test_expect_success 'migrate refuses a newer format and leaves it alone' '
	mkdir newer && echo "karapace-store 2" >newer/version &&
	cp newer/version expect &&
	test_expect_code 3 karapace --store newer migrate 2>err &&
	grep "not supported" err &&
	test_cmp expect newer/version &&
	test_expect_code 3 karapace --store nothing-here migrate 2>err &&
	grep "not a Karapace store" err
'

test_done

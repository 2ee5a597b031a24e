#!/bin/sh
test_description='same lock, same bytes: dependency layers across stores, users, id maps and --locked; package managers work inside after a single-id-map build'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

# Every build below uses the same manifest text (the image as a tarball one
# directory up), in its own copy of the project, so every lock is the same lock.
test_expect_success 'setup: the image as a tarball and one project per builder' '
	mkdir w && tar -C "$IMAGE" --numeric-owner -cf w/image.tar . &&
	chmod 755 w && chmod 644 w/image.tar &&
	for who in root user single; do
		mkdir w/$who && write_manifest w/$who/proj ../../image.tar jq || return 1
	done &&
	chown -R $KP_TEST_USER w/user 2>/dev/null; chown -R $KP_TEST_USER_SINGLE w/single 2>/dev/null; true
'

# build AS WHO STORE [--locked]: builds w/WHO/proj into w/WHO/STORE as AS
# (run, as_user or as_single_user) and prints nothing; the env_id goes to
# w/WHO/STORE.id and the dependency layer id to w/WHO/STORE.dep.
run() { "$@"; }
build() {
	(as=$1 who=$2 st=$3 && shift 3 && cd w/$who &&
	 export KARAPACE_STORE="$PWD/$st" &&
	 $as karapace build "$@" proj >$st.id 2>$st.err &&
	 $as karapace --json inspect $(cat $st.id) >$st.json &&
	 python3 -c "import json; l = json.load(open(\"$st.json\"))[\"layers\"]; assert len(l) == 2, l; print(l[1])" >$st.dep &&
	 $as kp-ls-layer -r -l $(cat $st.dep) >$st.ls)
}

# left_behind LISTING: the entries of a layer listing a run leaves behind.
left_behind() {
	grep -E "^1[0-9]+ (file|symlink) .*	(var/log/|var/cache/(apt|ldconfig)/|var/lib/apt/lists/.|var/lib/dpkg/[^/]*-old$)" "$1"
}

test_expect_success 'root: an unlocked and a --locked build in two fresh stores write the same dependency layer' '
	build run root st1 &&
	grep "built .* (3 package(s) installed)" w/root/st1.err &&
	build run root st2 --locked &&
	test_cmp w/root/st1.id w/root/st2.id &&
	test_cmp w/root/st1.dep w/root/st2.dep &&
	test_cmp w/root/st1.ls w/root/st2.ls
'

test_expect_success 'the --locked install keeps apt'"'"'s auto/manual marks as the unlocked one records them' '
	(cd w/root &&
	 KARAPACE_STORE=$PWD/st2 karapace exec $(cat st2.id) -- apt-mark showauto >auto &&
	 printf "libjq1\nlibonig5\n" >expect && test_cmp expect auto &&
	 KARAPACE_STORE=$PWD/st2 karapace exec $(cat st2.id) -- apt-mark showmanual >manual &&
	 grep -x jq manual)
'

test_expect_success 'the dependency layer holds no logs, caches, mirror indexes or dpkg backups' '
	left_behind w/root/st1.ls >found ;
	test_must_be_empty found &&
	grep "	var/lib/dpkg/status$" w/root/st1.ls &&
	grep "	var/cache/debconf/templates.dat$" w/root/st1.ls &&
	grep "	var/lib/apt/extended_states$" w/root/st1.ls &&
	grep " 0:0 .*	usr/bin/jq$" w/root/st1.ls
'

test_expect_success 'the layer records the id map it was built with' '
	(cd w/root && KARAPACE_STORE=$PWD/st1 kp-cat-object -p $(cat st1.dep) >obj) &&
	grep "id_map.*range" w/root/obj
'

test_expect_success SUBUID 'a user with a subordinate range writes the same layer as root, with and without --locked' '
	build as_user user st1 &&
	test_cmp w/root/st1.id w/user/st1.id &&
	test_cmp w/root/proj/karapace.lock w/user/proj/karapace.lock &&
	build as_user user st2 --locked &&
	test_cmp w/root/st1.dep w/user/st1.dep &&
	test_cmp w/root/st1.dep w/user/st2.dep
'

test_expect_success ROOTLESS_SINGLE 'a single-id-map build: the same lock and env_id, a layer that differs only as documented' '
	build as_single_user single st1 &&
	test_cmp w/root/st1.id w/single/st1.id &&
	build as_single_user single st2 --locked &&
	test_cmp w/single/st1.dep w/single/st2.dep &&
	! test_cmp w/root/st1.dep w/single/st1.dep &&
	left_behind w/single/st1.ls >found ;
	test_must_be_empty found &&
	# Entry by entry, without tree ids: the apt setting is added, and the
	# directories apt would have given to _apt stay root'"'"'s (the
	# directories on the way to the new file are in the layer too).
	for who in root single; do
		sed "s/ [0-9a-f]\{64\} / /" w/$who/st1.ls >w/$who/plain || return 1
	done &&
	diff w/root/plain w/single/plain | grep "^[<>]" | sort >d &&
	apt_uid=$(grep "^_apt:" "$IMAGE/etc/passwd" | cut -d: -f3) &&
	cat >expect <<-EOF &&
	< 040700 dir $apt_uid:0          -	var/cache/apt/archives/partial
	< 040700 dir $apt_uid:0          -	var/lib/apt/lists/partial
	< 040755 dir $apt_uid:0          -	var/lib/apt/lists/auxfiles
	> 040700 dir 0:0          -	var/cache/apt/archives/partial
	> 040700 dir 0:0          -	var/lib/apt/lists/partial
	> 040755 dir 0:0          -	var/lib/apt/lists/auxfiles
	> 040755 dir 0:0          -	etc/apt
	> 040755 dir 0:0          -	etc/apt/apt.conf.d
	> 100644 file 0:0        174	etc/apt/apt.conf.d/00karapace-single-id-map
	EOF
	sort expect >expect.sorted && test_cmp expect.sorted d
'

test_expect_success ROOTLESS_SINGLE 'after a single-id-map build, apt-get works inside: update and install from the environment'"'"'s own repository' '
	(cd w/single && export KARAPACE_STORE="$PWD/st1" &&
	 as_single_user karapace exec $(cat st1.id) -- apt-get update >out 2>&1 &&
	 as_single_user karapace exec $(cat st1.id) -- apt-get install -y hello >out 2>&1 &&
	 as_single_user karapace exec $(cat st1.id) -- hello >out &&
	 grep "Hello, world" out &&
	 as_single_user karapace exec $(cat st1.id) -- apt-config dump APT::Sandbox::User >cfg &&
	 grep "\"root\"" cfg)
'

test_expect_success 'verify: every check of a fresh build passes; --rebuild installs the lock again and gets the same layer' '
	(cd w/root && export KARAPACE_STORE="$PWD/st2" &&
	 karapace verify $(cat st2.id) >out &&
	 for c in lock base dependency normalised id_map; do
		grep "^ok $c: " out || return 1
	 done &&
	 grep "^ok id_map: built with a subordinate range" out &&
	 ! grep "^FAIL" out &&
	 karapace --json verify --rebuild $(cat st2.id) >j 2>err &&
	 python3 -c "
import json; v = json.load(open(\"j\"))
assert v[\"ok\"] is True and v[\"id_map\"] == \"range\", v
r = v[\"rebuild\"]
assert r[\"same\"] and r[\"layer\"] == r[\"recorded\"] == \"$(cat st2.dep)\" and r[\"differences\"] == [], r
")
'

test_expect_success 'verify names what is wrong: a dependency layer with a log left in it fails normalised and --rebuild' '
	(cd w/root && export KARAPACE_STORE="$PWD/st3" &&
	 base=$(python3 -c "import json; print(json.load(open(\"st1.json\"))[\"layers\"][0])") &&
	 karapace image import ../image.tar >digest && grep "$base" digest &&
	 kp-checkout-layer --store st1 $(cat st1.dep) dep &&
	 echo "Start-Date: 2026-01-01" >dep/var/log/apt/history.log &&
	 kp-write-layer --kind dependency --parent $base --provenance manager=apt \
		--provenance installed=jq --provenance id_map=range dep >bad &&
	 kp-record-env proj/karapace.lock $base $(cat bad) >id &&
	 test_cmp st1.id id &&
	 karapace build proj 2>err && grep "already built" err &&
	 test_expect_code 1 karapace verify $(cat id) >out &&
	 grep "^FAIL normalised: left behind by the install: var/log/apt/history.log$" out &&
	 grep "^ok lock: " out &&
	 test_expect_code 1 karapace verify --rebuild $(cat id) >out 2>err &&
	 grep "^FAIL rebuild: a fresh install of the lock wrote $(cat st1.dep), not $(cat bad) (1 path(s) differ)" out &&
	 grep "^  D var/log/apt/history.log$" out &&
	 test_expect_code 1 karapace verify no-such-env 2>err &&
	 grep "no-such-env" err)
'

test_expect_success SUBUID 'verify --rebuild as the user with a subordinate range: the same layer' '
	(cd w/user && export KARAPACE_STORE="$PWD/st2" &&
	 as_user karapace verify --rebuild $(cat st2.id) >out 2>err &&
	 grep "^ok rebuild: a fresh install of the lock wrote $(cat st2.dep) again" out)
'

test_expect_success ROOTLESS_SINGLE 'verify of a single-id-map build names the difference; --rebuild as that user gives the same layer' '
	(cd w/single && export KARAPACE_STORE="$PWD/st2" &&
	 as_single_user karapace verify --rebuild $(cat st2.id) >out 2>err &&
	 grep "^ok id_map: built with a single-id map: differs from a range build of this lock by apt.s 00karapace-single-id-map setting" out &&
	 grep "^ok rebuild: a fresh install of the lock wrote $(cat st2.dep) again" out)
'

test_done

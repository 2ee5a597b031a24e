#!/bin/sh
test_description='the name index: lookups by name read one entry; an index that disagrees with the records loses nothing'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX; then
	test_skip_all "needs user namespaces and busybox-static"
fi

# scenario DIR: in DIR, as $run (empty, as_user or as_single_user),
# two environments web and db, then an index deleted, pointing to the wrong
# environment, with a stale entry and with an entry missing.
scenario() {
	d=$1 &&
	mkdir "$d" && fixture_busybox_rootfs "$d/p1/rootfs" && write_manifest "$d/p1" ./rootfs &&
	cp -a "$d/p1" "$d/p2" && printf "[mounts]\nm = \"/tmp:/mnt/x:ro\"\n" >>"$d/p2/karapace.toml" &&
	{ test -z "$run" || chown -R "$KP_TEST_USER" "$d"; } &&
	(cd "$d" &&
	 export KARAPACE_STORE="$PWD/st" &&
	 $run karapace build p1 --name web >web.id &&
	 $run karapace build p2 --name db >db.id &&
	 test_path_is_file st/meta/names/web.json &&

	 rm -r st/meta/names &&
	 $run karapace inspect --json web >out 2>err &&
	 grep "\"env_id\":\"$(cat web.id)\"" out &&
	 test_path_is_file st/meta/names/db.json &&

	 cp st/meta/names/db.json st/meta/names/web.json &&
	 $run karapace --json inspect web >out 2>err &&
	 grep "\"env_id\":\"$(cat web.id)\"" out &&
	 grep "name index gives \"web\" to environment" err &&
	 $run karapace doctor >doc || true &&
	 grep "warn  name index: .*web.json: names environment" doc &&

	 cp st/meta/names/db.json st/meta/names/ghost.json &&
	 { $run karapace inspect ghost 2>err; test $? = 1; } &&
	 grep "no environment \"ghost\"" err &&

	 rm st/meta/names/db.json &&
	 $run karapace --json inspect db >out 2>err &&
	 grep "\"env_id\":\"$(cat db.id)\"" out &&
	 grep "name index has no entry for \"db\"" err &&

	 $run karapace doctor --fix >doc || true &&
	 grep "fixed name index" doc &&
	 grep "ok    name index" doc &&
	 test_path_is_missing st/meta/names/ghost.json &&
	 $run karapace --json inspect web >out 2>err &&
	 grep "\"env_id\":\"$(cat web.id)\"" out && test_must_be_empty err &&
	 $run karapace --json inspect db >out 2>err &&
	 grep "\"env_id\":\"$(cat db.id)\"" out && test_must_be_empty err &&
	 $run karapace list >list &&
	 test "$(grep -c -e " web " -e " db " list)" = 2 &&

	 $run karapace rename db app &&
	 test_path_is_missing st/meta/names/db.json &&
	 $run karapace inspect app >/dev/null 2>err && test_must_be_empty err &&
	 { $run karapace rename web app 2>err; test $? = 1; } &&
	 grep "name \"app\" is taken" err &&
	 $run karapace destroy app &&
	 test_path_is_missing st/meta/names/app.json)
}

test_expect_success 'as the store owner (root)' '
	run= scenario root
'

test_expect_success ROOTLESS 'as an unprivileged user' '
	run=as_user scenario user
'

test_expect_success ROOTLESS_SINGLE 'as an unprivileged user without a subordinate range' '
	run=as_single_user KP_TEST_USER=$KP_TEST_USER_SINGLE scenario single
'

test_done

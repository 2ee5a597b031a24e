#!/bin/sh
test_description='karapace build and exec: a Debian image, packages from a local apt repository'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

test_expect_success 'build installs the packages and prints the env_id' '
	write_manifest proj "$IMAGE" jq &&
	karapace build proj --name demo >id 2>err &&
	test_line_count = 1 id &&
	grep -E "^[0-9a-f]{64}$" id &&
	grep "built demo (3 package(s) installed)" err
'

test_expect_success 'the lock records the whole installed closure with exact versions' '
	grep "env_id = \"$(cat id)\"" proj/karapace.lock &&
	for p in jq libjq1 libonig5; do
		v=$(dpkg-deb -f "$(fixture_apt_repo)"/${p}_*.deb Version) &&
		grep -A1 "^name = \"$p\"" proj/karapace.lock >entry &&
		grep "version = \"$v\"" entry || return 1
	done &&
	kp-resolve --check proj >/dev/null
'

test_expect_success 'exec runs the installed program and passes its output through' '
	echo "{\"a\": [1, 2]}" | karapace exec demo -- jq -c ".a" >out &&
	echo "[1,2]" >expect &&
	test_cmp expect out
'

test_expect_success 'exec passes exit statuses through: N, 128+signal, 127, 126' '
	test_expect_code 7 karapace exec demo -- sh -c "exit 7" &&
	test_expect_code 143 karapace exec demo -- sh -c "kill -TERM \$\$" &&
	test_expect_code 127 karapace exec demo -- no-such-program &&
	test_expect_code 126 karapace exec demo -- /etc/hostname
'

test_expect_success 'ENV is a name, the full id, the short id or a unique prefix' '
	id=$(cat id) &&
	for e in demo $id $(echo $id | cut -c1-12) $(echo $id | cut -c1-6); do
		karapace exec $e -- true || return 1
	done &&
	test_expect_code 1 karapace exec nosuch -- true 2>err &&
	grep "no environment \"nosuch\"" err
'

test_expect_success 'writes inside land in the writable layer and persist' '
	karapace exec demo -- sh -c "echo kept >/root/note" &&
	karapace exec demo -- cat /root/note >out &&
	echo kept >expect && test_cmp expect out &&
	test_path_is_file store/envs/$(cat id)/upper/root/note
'

test_expect_success 'a second build of the unchanged manifest is a no-op that keeps everything' '
	karapace build proj >id2 2>err &&
	test_cmp id id2 &&
	grep "already built" err &&
	karapace exec demo -- cat /root/note >out && test_cmp expect out &&
	karapace list >list && grep " demo " list
'

test_expect_success '--locked on a fresh store gives the same env_id and versions' '
	cp proj/karapace.lock lock.before &&
	KARAPACE_STORE="$HOME/fresh" karapace build --locked proj >id3 &&
	test_cmp id id3 &&
	test_cmp lock.before proj/karapace.lock &&
	KARAPACE_STORE="$HOME/fresh" karapace exec $(cat id3) -- dpkg-query -W -f "\${Version}" jq >v &&
	grep -A1 "^name = \"jq\"" proj/karapace.lock | grep "version = \"$(cat v)\""
'

test_expect_success '--locked refuses a missing lock and a drifted manifest' '
	write_manifest other "$IMAGE" jq &&
	test_expect_code 1 karapace build --locked other 2>err &&
	grep "needs a karapace.lock" err &&
	cp -r proj drift && write_manifest drift "$IMAGE" jq hello &&
	test_must_fail karapace build --locked drift 2>err &&
	grep "system.packages" err
'

test_expect_success 'a changed manifest builds a new environment and a new lock' '
	write_manifest proj2 "$IMAGE" jq hello &&
	karapace build proj2 >id4 &&
	! test_cmp id id4 &&
	grep "name = \"hello\"" proj2/karapace.lock &&
	karapace exec $(cat id4) -- hello >out && grep "Hello, world" out
'

test_expect_success 'what the base has installed is asked once per base, and a damaged answer is asked again' '
	ls "$KARAPACE_STORE/cache/installed/v1" >cached &&
	test_line_count = 1 cached &&
	f="$KARAPACE_STORE/cache/installed/v1/$(cat cached)" &&
	grep -E "^[0-9a-f]{64}-[0-9a-f]{16}$" cached &&
	grep "	bash	" "$f" &&
	# bash is in the base: were this trusted, the next lock would list it.
	grep -v "	bash	" "$f" >damaged && cp damaged "$f" &&
	write_manifest proj3 "$IMAGE" hello libonig5 &&
	karapace build proj3 >id6 &&
	grep "^name = " proj3/karapace.lock | sort >names &&
	printf "name = \"%s\"\n" hello libonig5 >expect && test_cmp expect names &&
	grep "	bash	" "$f"
'

test_expect_success '--offline installs from a local source with no network inside' '
	write_manifest off "$IMAGE" hello &&
	karapace build --offline off >id5 &&
	karapace exec $(cat id5) -- hello >out && grep "Hello, world" out
'

test_expect_success '--require-pinned-image refuses an unpinned image' '
	test_expect_code 1 karapace build --require-pinned-image proj 2>err &&
	grep "not pinned" err
'

test_expect_success 'a manifest error exits 2 and names the file and key' '
	mkdir bad && printf "manifest_version = 1\n[base]\nimage = \"\"\n" >bad/karapace.toml &&
	test_expect_code 2 karapace build bad 2>err &&
	grep "bad/karapace.toml" err && grep "base.image" err
'

test_expect_success 'environments on one base share one checkout of it: no copy of the base' '
	ls store/cache/checkouts >before &&
	du -sb store >size.before &&
	for i in 1 2 3; do
		mkdir -p n$i && write_manifest n$i "$IMAGE" &&
		echo "[mounts]" >>n$i/karapace.toml &&
		mkdir -p "$HOME/mnt$i" &&
		echo "m$i = \"~/mnt$i:/mnt/$i:ro\"" >>n$i/karapace.toml &&
		karapace build n$i >>ids &&
		karapace exec $(tail -n 1 ids) -- true || return 1
	done &&
	sort -u ids >u && test_line_count = 3 u &&
	ls store/cache/checkouts >after &&
	test_cmp before after &&
	du -sb store >size.after &&
	test $(( $(cut -f1 size.after) - $(cut -f1 size.before) )) -lt 1000000
'

test_expect_success 'build and list speak JSON' '
	karapace --json build proj >out &&
	grep "\"reused\":true" out && grep "\"env_id\":\"$(cat id)\"" out &&
	karapace list --json >out &&
	grep "\"name\":\"demo\"" out &&
	karapace --json inspect demo >out &&
	grep "\"state\":\"built\"" out
'

# rootless_build AS DIR N: as the user that command AS runs commands as,
# builds DIR/proj (jq over the image tarball) into DIR/st, runs jq inside, and
# lists the dependency layer into DIR/ls.
rootless_build() {
	(as=$1 n=$3 && cd "$2" &&
	 export KARAPACE_STORE="$PWD/st" &&
	 $as karapace build proj --name mine >id 2>err &&
	 grep "built mine (3 package(s) installed)" err &&
	 echo "{\"x\": $n}" | $as karapace exec mine -- jq .x >out &&
	 echo $n >expect && test_cmp expect out &&
	 $as karapace --json inspect mine >j &&
	 dep=$(python3 -c "import json,sys; print(json.load(open(\"j\"))[\"layers\"][1])") &&
	 $as kp-ls-layer -r -l $dep >ls &&
	 grep " 0:0 .*	usr/bin/jq$" ls)
}

test_expect_success ROOTLESS_SINGLE 'rootless without a subordinate range: packages install with a single-id map (apt stays root inside)' '
	mkdir rl && tar -C "$IMAGE" --numeric-owner -cf rl/image.tar . &&
	write_manifest rl/proj ../image.tar jq &&
	chown -R $KP_TEST_USER_SINGLE rl &&
	rootless_build as_single_user rl 5 &&
	grep " 0:0 .*	var/lib/apt/lists/partial$" rl/ls
'

test_expect_success SUBUID 'rootless with a subordinate range: apt drops to its own user, and the layer records it' '
	mkdir rs && tar -C "$IMAGE" --numeric-owner -cf rs/image.tar . &&
	write_manifest rs/proj ../image.tar jq &&
	chown -R $KP_TEST_USER rs &&
	rootless_build as_user rs 6 &&
	apt_uid=$(grep "^_apt:" "$IMAGE/etc/passwd" | cut -d: -f3) &&
	grep " $apt_uid:[0-9]* .*	var/lib/apt/lists/partial$" rs/ls &&
	ls rs/st/tmp >left && test_must_be_empty left &&
	(cd rs && export KARAPACE_STORE="$PWD/st" &&
	 as_user karapace destroy mine >/dev/null &&
	 as_user karapace gc >/dev/null &&
	 as_user karapace verify-store >/dev/null)
'

test_expect_success 'exec runs under the seccomp filter; --seccomp off and [sandbox] seccomp lift it, a manifest cannot' '
	karapace exec demo -- grep "^Seccomp:" /proc/self/status >out &&
	printf "Seccomp:\t2\n" >expect && test_cmp expect out &&
	karapace exec --seccomp off demo -- grep "^Seccomp:" /proc/self/status >out &&
	printf "Seccomp:\t0\n" >expect && test_cmp expect out &&
	mkdir -p .config/karapace && test_when_finished "rm -f .config/karapace/config.toml" &&
	printf "[sandbox]\nseccomp = \"off\"\n" >.config/karapace/config.toml &&
	karapace exec demo -- grep "^Seccomp:" /proc/self/status >out && test_cmp expect out &&
	karapace exec --seccomp default demo -- grep "^Seccomp:" /proc/self/status >out &&
	printf "Seccomp:\t2\n" >expect && test_cmp expect out &&
	printf "[sandbox]\nseccomp = \"strict\"\n" >.config/karapace/config.toml &&
	test_must_fail karapace exec demo -- true 2>err && grep "sandbox.seccomp" err &&
	test_expect_code 64 karapace exec --seccomp maybe demo -- true
'

test_expect_success 'kp-prune keeps every layer an environment uses' '
	kp-prune >pruned &&
	kp-fsck &&
	karapace exec demo -- jq --version
'

test_expect_success 'gc drops the cached installed set of a base once it removes the base' '
	test_line_count = 1 cached &&
	karapace list | awk "{print \$NF}" | grep -E "^[0-9a-f]{64}$" >envs &&
	for e in $(cat envs); do karapace destroy $e >/dev/null || return 1; done &&
	karapace gc >/dev/null &&
	ls "$KARAPACE_STORE/cache/installed/v1" >left &&
	test_cmp cached left &&
	karapace image rm debian-image &&
	karapace gc >/dev/null &&
	ls "$KARAPACE_STORE/cache/installed/v1" >left &&
	test_must_be_empty left &&
	kp-fsck
'

test_done

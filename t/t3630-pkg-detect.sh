#!/bin/sh
test_description='an image without a package manager Karapace knows, or with a broken one: one line naming what was found, nothing made'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"
. "$TEST_DIRECTORY/lib-env.sh"

if ! test_have_prereq BUSYBOX || ! test_have_prereq USERNS; then
	test_skip_all "needs busybox-static and user namespaces"
fi
KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

KNOWN="/usr/bin/apt-get, /usr/bin/dnf5, /usr/bin/dnf, /usr/bin/zypper, /usr/bin/pacman"

# Four busybox images: none (no manager; an os-release), apk (Alpine's
# manager, not driven), dnf-link (dnf a symlink to a missing dnf-3), dnf-py
# (dnf a script whose interpreter is missing).
test_expect_success 'setup: the images' '
	fixture_busybox_rootfs none &&
	printf "NAME=Kp\nPRETTY_NAME=\"Kp Busybox 1\"\n" >none/etc/os-release &&
	cp -a none apk && mkdir -p apk/sbin && ln -s /bin/busybox apk/sbin/apk &&
	cp -a none dnf-link && mkdir -p dnf-link/usr/bin && ln -s dnf-3 dnf-link/usr/bin/dnf &&
	cp -a none dnf-py && mkdir -p dnf-py/usr/bin &&
	printf "#!/usr/bin/python3\nimport dnf\n" >dnf-py/usr/bin/dnf && chmod 755 dnf-py/usr/bin/dnf &&
	for i in none apk dnf-link dnf-py; do
		image_rootfs_tarball $i $i.tar.xz || return 1
	done
'

# detected AS IMAGE MESSAGE: as AS, in its store, a build of IMAGE installing jq
# exits 1 with the one line "karapace: error: image "IMAGE": MESSAGE; cannot
# install jq", makes no lock and no environment; the first try may only add
# the base's shared checkout under cache/, a second changes nothing.
detected() {
	as=$1 image=$2 msg=$3 &&
	write_manifest "m-$image" "$image" jq &&
	$as karapace image import "./$image.tar.xz" "$image" >/dev/null &&
	echo "karapace: error: image \"$image\": $msg; cannot install jq" >expect &&
	for try in 1 2; do
		store_state "$KARAPACE_STORE" >state.before &&
		test_expect_code 1 $as karapace build "m-$image" >out 2>err &&
		test_must_be_empty out &&
		test_cmp expect err &&
		test_path_is_missing "m-$image/karapace.lock" &&
		$as karapace --json list >envs && echo "{\"environments\":[]}" >none.json && test_cmp none.json envs &&
		store_state "$KARAPACE_STORE" >state.after &&
		if test $try = 1; then
			comm -13 state.before state.after | grep -v " cache/checkouts" >added;
			test_must_be_empty added
		else
			store_unchanged
		fi || return 1
	done
}

all_four() {
	detected "$1" none "no package manager Karapace knows ($KNOWN); found \"Kp Busybox 1\" (/etc/os-release)" &&
	detected "$1" apk "no package manager Karapace knows ($KNOWN); found \"Kp Busybox 1\" (/etc/os-release), /sbin/apk (apk, which Karapace does not drive)" &&
	detected "$1" dnf-link "dnf: /usr/bin/dnf cannot run: it is a symlink, but /usr/bin/dnf-3 is not in the image" &&
	detected "$1" dnf-py "dnf: /usr/bin/dnf cannot run: its interpreter /usr/bin/python3 is not in the image"
}

test_expect_success 'no manager, an unknown one, a dangling dnf, a dnf without python' '
	all_four ""
'

test_expect_success ROOTLESS_SINGLE 'rootless without a subordinate range: the same' '
	mkdir rl && cp *.tar.xz rl/ && chown -R $KP_TEST_USER_SINGLE rl &&
	(cd rl && KARAPACE_STORE=$PWD/st && export KARAPACE_STORE && all_four as_single_user)
'

test_expect_success SUBUID 'rootless with a subordinate range: the same' '
	mkdir rs && cp *.tar.xz rs/ && chown -R $KP_TEST_USER rs &&
	(cd rs && KARAPACE_STORE=$PWD/st && export KARAPACE_STORE && all_four as_user)
'

test_done

#!/bin/sh
test_description='the reference system'"'"'s short image names: an imported image first, else the release on the image servers'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"
. "$TEST_DIRECTORY/lib-env.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

if ! test_have_prereq BUSYBOX || ! test_have_prereq PYTHON3; then
	test_skip_all "needs busybox-static and python3"
fi

ARCH=$(uname -m | sed -e s/x86_64/amd64/ -e s/aarch64/arm64/)

# Every release the names stand for, and two they must not pick (openSUSE
# 16.0 is newer than the Leap the names mean; Fedora 42 newer than 41).
RELEASES="opensuse:tumbleweed:opensuse/tumbleweed
opensuse:15.6:opensuse/15.6
opensuse:16.0:opensuse/16.0
ubuntu:noble:ubuntu/noble,ubuntu/24.04
debian:bookworm:debian/bookworm,debian/12
fedora:41:fedora/41
fedora:42:fedora/42
archlinux:current:archlinux/current,archlinux"

# Each release is a busybox root telling its own name in /etc/kp-release, so
# each has its own digest.
test_expect_success 'setup: a simplestreams tree with the five distributions, served' '
	karapace init >/dev/null &&
	for r in $RELEASES; do
		os=${r%%:*} rest=${r#*:} && rel=${rest%%:*} aliases=${rest#*:} &&
		rm -rf root && fixture_busybox_rootfs root &&
		echo "$os/$rel" >root/etc/kp-release &&
		image_rootfs_tarball root "$os-$rel.tar.xz" &&
		image_simplestreams srv "$os-$rel.tar.xz" $os $rel $aliases || return 1
	done &&
	kp-init other >/dev/null &&
	image_httpd "$PWD/srv" &&
	mkdir -p .config/karapace &&
	printf "[images]\nservers = [\"%s\"]\nretries = 1\n" "$HTTPD" >.config/karapace/config.toml
'

NAMES="rolling:opensuse/tumbleweed
tumbleweed:opensuse/tumbleweed
opensuse:opensuse/tumbleweed
opensuse/tumbleweed:opensuse/tumbleweed
leap:opensuse/15.6
opensuse/leap:opensuse/15.6
ubuntu:ubuntu/noble
debian:debian/bookworm
fedora:fedora/41
arch:archlinux/current
archlinux:archlinux/current"

test_expect_success 'each name resolves to its release'"'"'s newest build (kp-fetch-image --resolve)' '
	for n in $NAMES; do
		name=${n%%:*} rel=${n#*:} &&
		kp-fetch-image --resolve "$name" >out &&
		case "$(cat out)" in
		"$HTTPD/images/$rel/$ARCH/default/"*"/rootfs.tar.xz#sha256="*) ;;
		*) echo "$name resolved to $(cat out), not $rel" >&4; false ;;
		esac || return 1
	done
'

test_expect_success 'import NAME: the release'"'"'s image, named as the release' '
	for n in $NAMES; do
		name=${n%%:*} rel=${n#*:} &&
		karapace image import "$name" >out &&
		tarball=$(echo "$rel" | tr / -).tar.xz &&
		test "$(kp-fetch-image --store other "./$tarball")" = "$(cut -d" " -f2 out)" &&
		case $name in
		opensuse/leap) want=opensuse/leap ;;
		ubuntu) want=ubuntu/24.04 ;;
		*) want=$rel ;;
		esac &&
		test "$(cut -d" " -f1 out)" = "$want" || return 1
	done
'

# built_on DIR IMAGE: DIR/proj (image = IMAGE, no packages) builds, and the
# environment runs on the image whose /etc/kp-release is printed.
built_on() {
	write_manifest "$1" "$2" &&
	karapace build "$1" >id 2>err &&
	karapace exec $(cat id) -- cat /etc/kp-release
}

test_expect_success 'manifests saying image = "rolling" and the other names build unchanged' '
	for n in $NAMES; do
		name=${n%%:*} rel=${n#*:} &&
		dir=m-$(echo $name | tr / -) &&
		built_on $dir "$name" >out &&
		echo "$rel" >expect && test_cmp expect out &&
		grep "^image = \"$name\"$" $dir/karapace.lock || return 1
	done
'

# (In a store of its own: refs/images/debian/bookworm, imported above, and
# refs/images/debian cannot both exist, as in git.)
test_expect_success 'an image imported as "debian" wins over the server, and the server is not asked' '
	KARAPACE_STORE=$HOME/mine-store && export KARAPACE_STORE &&
	rm -rf root && fixture_busybox_rootfs root && echo mine >root/etc/kp-release &&
	image_rootfs_tarball root mine.tar.xz &&
	karapace image import ./mine.tar.xz debian >out &&
	: >"$HTTPD_LOG" &&
	karapace image import debian copy >out &&
	grep "^copy .* (already in the store)$" out &&
	built_on mine debian >out &&
	echo mine >expect && test_cmp expect out &&
	test_must_be_empty "$HTTPD_LOG"
'
KARAPACE_STORE=$HOME/store

test_expect_success 'a name that is a directory of names, or lies below a name, is refused in one line; nothing changes' '
	karapace image list >before &&
	test_expect_code 1 karapace image import ./mine.tar.xz debian 2>err &&
	test_line_count = 1 err &&
	grep "^karapace: error: .*ref refs/images/debian cannot be written: refs/images/debian/... exists" err &&
	test_expect_code 1 karapace image import ./mine.tar.xz debian/bookworm/mine 2>err &&
	test_line_count = 1 err &&
	grep "refs/images/debian/bookworm/mine cannot be written: refs/images/debian/bookworm exists" err &&
	karapace image list >after && test_cmp before after
'

test_expect_success 'an unknown name fails in one line, exit 1, nothing imported' '
	karapace image list >before &&
	test_expect_code 1 karapace image import nosuch 2>err &&
	test_line_count = 1 err &&
	grep "^karapace: error: no image named \"nosuch\" in the store" err &&
	write_manifest unknown nosuch &&
	test_expect_code 1 karapace build unknown >out 2>err &&
	test_line_count = 1 err &&
	grep "nosuch" err &&
	karapace image list >after && test_cmp before after
'

test_expect_success ROOTLESS 'rootless: image = "rolling" builds from the server' '
	mkdir rl && write_manifest rl/proj rolling &&
	chown -R $KP_TEST_USER rl &&
	(cd rl && KARAPACE_STORE="$PWD/st" && export KARAPACE_STORE &&
	 as_user karapace build proj >id 2>err &&
	 as_user karapace exec $(cat id) -- cat /etc/kp-release >out &&
	 echo opensuse/tumbleweed >expect && test_cmp expect out)
'

test_done

#!/bin/sh
test_description='karapace image import/list/rm and kp-fetch-image with local tarballs and directories'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_expect_success BUSYBOX 'setup: busybox rootfs as a directory and as tarballs' '
	karapace init >/dev/null &&
	fixture_busybox_rootfs root &&
	image_rootfs_tarball root rootfs.tar.xz &&
	image_rootfs_tarball root rootfs.tar.gz -z &&
	image_rootfs_tarball root rootfs.tar.zst --zstd &&
	image_rootfs_tarball root rootfs.tar ""
'

test_expect_success BUSYBOX 'import a local tarball: digest printed, ref and metadata recorded' '
	karapace image import ./rootfs.tar.xz bb >out &&
	D=$(cut -d" " -f2 out) && echo "$D" >digest &&
	echo "bb $D (imported)" >expect && test_cmp expect out &&
	test "$(kp-rev-parse refs/images/bb)" = "$D" &&
	test "$(kp-cat-object -t $D)" = layer &&
	kp-cat-object -p $D >layer && grep "\"kind\": \"base\"" layer &&
	test_path_is_file store/meta/images/bb.json
'

test_expect_success BUSYBOX 'contents, owners and modes come from the archive' '
	kp-ls-layer -l $(cat digest) bin >ls &&
	grep "^100755 file .* 0:0 .*	busybox$" ls &&
	grep "^120777 symlink - 0:0 .*	sh -> busybox$" ls &&
	kp-ls-layer -l $(cat digest) >ls && grep "^041777 dir .* 0:0 .*	tmp$" ls &&
	test "$(kp-rev-parse $(cat digest):bin/busybox)" = "$(b3sum --no-names root/bin/busybox)"
'

test_expect_success BUSYBOX 'every compression gives the same digest' '
	for f in rootfs.tar.gz rootfs.tar.zst rootfs.tar; do
		kp-fetch-image --name "bb-${f#rootfs.}" "./$f" >id && test "$(cat id)" = "$(cat digest)" || return 1
	done
'

test_expect_success BUSYBOX 'the digest does not depend on who imports or on file times' '
	touch -d 2001-01-01 root/etc/passwd &&
	image_rootfs_tarball root later.tar.xz &&
	test "$(kp-fetch-image --name later ./later.tar.xz)" = "$(cat digest)"
'

test_expect_success BUSYBOX 're-import of a known archive reuses its layer' '
	karapace image import ./rootfs.tar.xz bb2 >out &&
	echo "bb2 $(cat digest) (already in the store)" >expect && test_cmp expect out &&
	karapace --json image import ./rootfs.tar.xz bb2 >out.json &&
	grep "\"reused\":true" out.json && grep "\"digest\":\"$(cat digest)\"" out.json
'

test_expect_success BUSYBOX 'default names are derived from the source' '
	cp rootfs.tar.xz my-base.tar.xz &&
	karapace image import my-base.tar.xz >out &&
	grep "^my-base $(cat digest) " out
'

test_expect_success BUSYBOX 'a directory imports through write_dir' '
	karapace --json image import ./root bbdir >out.json &&
	grep "\"name\":\"bbdir\"" out.json &&
	kp-rev-parse refs/images/bbdir >id &&
	test "$(kp-rev-parse $(cat id):bin/busybox)" = "$(b3sum --no-names root/bin/busybox)"
'

test_expect_success BUSYBOX 'an imported image is a source by its name' '
	test "$(kp-fetch-image --name alias bb)" = "$(cat digest)" &&
	test "$(kp-rev-parse refs/images/alias)" = "$(cat digest)"
'

test_expect_success BUSYBOX 'image list (text and JSON)' '
	karapace image list >list &&
	head -n 1 list >header && grep "^NAME  *DIGEST  *SIZE  *IMPORTED  *SOURCE$" header &&
	grep "^bb  *$(cut -c1-12 digest)  .* \./rootfs\.tar\.xz$" list &&
	karapace --json image list >list.json &&
	python3 -c "
import json, sys
imgs = json.load(open(\"list.json\"))[\"images\"]
names = [i[\"name\"] for i in imgs]
assert names == sorted(names), names
bb = [i for i in imgs if i[\"name\"] == \"bb\"][0]
assert bb[\"digest\"] == open(\"digest\").read().strip()
assert bb[\"compression\"] == \"xz\" and bb[\"files\"] >= 2 and len(bb[\"sha256\"]) == 64
"
'

test_expect_success BUSYBOX 'image rm forgets the name, keeps other names of the layer' '
	karapace image rm bb2 >out &&
	echo "Removed image bb2 ($(cut -c1-12 digest))" >expect && test_cmp expect out &&
	test_must_fail kp-rev-parse refs/images/bb2 &&
	test_path_is_missing store/meta/images/bb2.json &&
	test "$(kp-rev-parse refs/images/bb)" = "$(cat digest)" &&
	test_expect_code 1 karapace image rm bb2 2>err && grep "no image named \"bb2\"" err
'

test_expect_success BUSYBOX 'prune keeps named images, fsck is clean' '
	kp-prune >/dev/null && kp-fsck &&
	kp-ls-layer $(cat digest) >/dev/null
'

test_expect_success 'usage errors and bad references' '
	test_expect_code 64 karapace image &&
	test_expect_code 64 karapace image frob &&
	test_expect_code 64 karapace image import &&
	test_expect_code 64 karapace image list extra &&
	test_expect_code 1 karapace image import "ftp://host/x.tar" 2>err && grep "only http://, https://, oci:// and docker:// references are fetched" err &&
	test_expect_code 1 karapace image import no-such-image 2>err && grep "no image named" err &&
	test_expect_code 1 karapace image import ./missing.tar.xz 2>err && grep "missing.tar.xz" err &&
	test_expect_code 64 kp-fetch-image &&
	test_expect_code 64 kp-fetch-image --resolve --name x debian/bookworm
'

test_expect_success 'a file that is not an archive is refused, nothing recorded' '
	echo "just text" >notes.tar &&
	test_expect_code 1 karapace image import ./notes.tar 2>err &&
	grep "not a tar archive" err &&
	test_must_fail kp-rev-parse refs/images/notes
'

test_done

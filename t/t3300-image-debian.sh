#!/bin/sh
test_description='a real distribution: Debian bookworm minbase (debootstrap) as rootfs.tar.xz'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

test_have_prereq DEBOOTSTRAP || test_skip_all "needs root and debootstrap for the Debian minbase fixture"
test_have_prereq PYTHON3 || test_skip_all "needs python3 for the image server"

test_expect_success 'setup: minbase tarball on a simplestreams server' '
	karapace init >/dev/null &&
	tarball=$(image_debian_tarball) && echo "$tarball" >tarball &&
	image_simplestreams srv "$tarball" debian bookworm debian/bookworm,debian/12 &&
	image_httpd "$PWD/srv" &&
	mkdir -p .config/karapace &&
	printf "[images]\nservers = [\"%s\"]\n" "$HTTPD" >.config/karapace/config.toml
'

test_expect_success 'import debian/bookworm from the server' '
	karapace --json image import debian/bookworm >out.json &&
	python3 -c "
import json
i = json.load(open(\"out.json\"))
assert i[\"name\"] == \"debian/bookworm\" and not i[\"reused\"], i
assert i[\"compression\"] == \"xz\" and i[\"files\"] > 3000, i
open(\"digest\", \"w\").write(i[\"digest\"] + \"\n\")
"
'

test_expect_success 'the layer holds the distribution: files, owners, links, devices' '
	D=$(cat digest) &&
	kp-ls-layer -l $D usr/bin >ls && grep "^100755 file .* 0:0 .*	dpkg$" ls &&
	kp-ls-layer -l $D etc >ls && grep "^100640 file .* 0:42 .*	gshadow$" ls &&
	kp-ls-layer -l $D >ls && grep "	bin -> usr/bin$" ls &&
	kp-ls-layer -l $D dev >ls && grep "^020666 chardev - 0:0 *1,3	null$" ls &&
	src=$(fixture_debian_minbase) &&
	test "$(kp-rev-parse $D:usr/bin/dpkg)" = "$(b3sum --no-names "$src/usr/bin/dpkg")"
'

test_expect_success 'the same tree imported as a directory has the same digest' '
	src=$(fixture_debian_minbase) &&
	mkdir copy && cp -a "$src/." copy/ && rm copy/.complete &&
	test "$(kp-fetch-image --name fromdir ./copy)" = "$(cat digest)"
'

test_expect_success 'checkout of the image reproduces the tree' '
	kp-checkout-layer $(cat digest) co &&
	src=$(fixture_debian_minbase) &&
	list="-type d -printf %p_%m_%U_%G_d\n -o -printf %p_%m_%U_%G_%y_%s\n" &&
	(cd "$src" && find . ! -name .complete ! -path "./dev/*" \( $list \) | sort) >expect &&
	(cd co && find . ! -path "./dev/*" \( $list \) | sort) >actual &&
	test_cmp expect actual
'

test_expect_success 're-import downloads and extracts nothing' '
	grep -c "rootfs.tar.xz" "$HTTPD_LOG" >before &&
	karapace image import debian/bookworm again >out &&
	echo "again $(cat digest) (already in the store)" >expect && test_cmp expect out &&
	grep -c "rootfs.tar.xz" "$HTTPD_LOG" >after && test_cmp before after
'

test_expect_success 'store is consistent' '
	kp-fsck >/dev/null
'

test_done

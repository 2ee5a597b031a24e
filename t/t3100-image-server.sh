#!/bin/sh
test_description='images from a simplestreams server and http(s) URLs (served on 127.0.0.1)'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE

if ! test_have_prereq BUSYBOX || ! test_have_prereq PYTHON3; then
	test_skip_all "needs busybox-static and python3"
fi

ARCH=$(uname -m | sed -e s/x86_64/amd64/ -e s/aarch64/arm64/)
new_build=20250102_00:00

test_expect_success 'setup: two builds of debian/bookworm, one of ubuntu/noble, a server' '
	karapace init >/dev/null &&
	fixture_busybox_rootfs root &&
	image_rootfs_tarball root old.tar.xz &&
	echo bookworm >root/etc/os-release &&
	image_rootfs_tarball root new.tar.xz &&
	image_simplestreams srv old.tar.xz debian bookworm debian/bookworm,debian/12 20250101_00:00 &&
	image_simplestreams srv new.tar.xz debian bookworm debian/bookworm,debian/12 $new_build &&
	image_simplestreams srv old.tar.xz ubuntu noble ubuntu/noble,ubuntu/24.04 &&
	mkdir -p srv/Upper && cp new.tar.xz srv/Upper/RootFS.tar.xz &&
	image_httpd "$PWD/srv" &&
	mkdir -p .config/karapace &&
	printf "[images]\nservers = [\"%s\"]\nretries = 1\n" "$HTTPD" >.config/karapace/config.toml &&
	kp-init other >/dev/null &&
	kp-fetch-image --store other --name new ./new.tar.xz >new.digest &&
	kp-fetch-image --store other --name old ./old.tar.xz >old.digest
'

url="images/debian/bookworm/$ARCH/default/$new_build/rootfs.tar.xz"

test_expect_success 'resolve: a release becomes its newest build URL and sha256' '
	kp-fetch-image --resolve debian/bookworm >out &&
	echo "$HTTPD/$url#sha256=$(sha256sum <new.tar.xz | cut -d" " -f1)" >expect &&
	test_cmp expect out &&
	kp-fetch-image --resolve debian/12 >out && test_cmp expect out
'

test_expect_success 'import a release: the digest is that of the newest build' '
	karapace image import debian/bookworm >out &&
	echo "debian/bookworm $(cat new.digest) (imported)" >expect && test_cmp expect out &&
	grep "GET /$url 200" "$HTTPD_LOG"
'

test_expect_success 'versions and codenames name the same release' '
	test "$(kp-fetch-image ubuntu/24.04)" = "$(cat old.digest)" &&
	test "$(kp-fetch-image Ubuntu/Noble)" = "$(cat old.digest)" &&
	kp-show-ref >refs && grep " refs/images/ubuntu/24.04$" refs && grep " refs/images/ubuntu/noble$" refs
'

test_expect_success 'a second import downloads nothing' '
	grep -c "rootfs.tar.xz" "$HTTPD_LOG" >before &&
	karapace image import debian/bookworm again >out &&
	echo "again $(cat new.digest) (already in the store)" >expect && test_cmp expect out &&
	grep -c "rootfs.tar.xz" "$HTTPD_LOG" >after &&
	test_cmp before after
'

test_expect_success 'a URL is used exactly as written (case kept)' '
	test "$(kp-fetch-image --name upper "$HTTPD/Upper/RootFS.tar.xz")" = "$(cat new.digest)" &&
	grep "GET /Upper/RootFS.tar.xz 200" "$HTTPD_LOG" &&
	test_expect_code 1 kp-fetch-image --name lower "$HTTPD/upper/rootfs.tar.xz" 2>err &&
	grep "HTTP 404" err
'

test_expect_success 'a URL without checksum is asked "changed since?" and not downloaded again' '
	karapace --json image import "$HTTPD/Upper/RootFS.tar.xz" upper >out.json &&
	grep "\"reused\":true" out.json &&
	grep "GET /Upper/RootFS.tar.xz 304" "$HTTPD_LOG"
'

test_expect_success 'a pinned URL needs no network once imported' '
	pinned=$(kp-fetch-image --resolve debian/bookworm) &&
	image_httpd_stop &&
	test "$(kp-fetch-image --name pinned "$pinned")" = "$(cat new.digest)" &&
	image_httpd "$PWD/srv" &&
	printf "[images]\nservers = [\"%s\"]\nretries = 1\n" "$HTTPD" >.config/karapace/config.toml
'

test_expect_success 'a checksum mismatch is refused and nothing is recorded' '
	bad=$(printf "%064d" 0) &&
	test_expect_code 1 kp-fetch-image --name bad "$HTTPD/$url#sha256=$bad" 2>err &&
	grep "sha256 is $(sha256sum <new.tar.xz | cut -d" " -f1), expected $bad" err &&
	test_must_fail kp-rev-parse refs/images/bad
'

test_expect_success 'an HTML answer is refused (by content type or by content)' '
	test_expect_code 1 kp-fetch-image --name h "$HTTPD/html/rootfs.tar.xz" 2>err &&
	grep "answered with an HTML page" err &&
	test_expect_code 1 kp-fetch-image --name h "$HTTPD/htmlbody/rootfs.tar.xz" 2>err &&
	grep "answered with an HTML page" err &&
	test_must_fail kp-rev-parse refs/images/h
'

test_expect_success 'transient failures are retried; persistent ones reported' '
	test "$(kp-fetch-image --name flaky "$HTTPD/flaky/1/$url")" = "$(cat new.digest)" &&
	test "$(grep -c "GET /flaky/1/" "$HTTPD_LOG")" = 2 &&
	test_expect_code 1 kp-fetch-image --name flaky5 "$HTTPD/flaky/5/$url" 2>err &&
	grep "HTTP 503 .*(after 2 attempts)" err &&
	test_expect_code 1 kp-fetch-image --name short "$HTTPD/short/$url" 2>err &&
	grep "after 2 attempts" err &&
	test_must_fail kp-rev-parse refs/images/short
'

test_expect_success 'a release the server does not have' '
	test_expect_code 1 kp-fetch-image fedora/41 2>err &&
	grep "fedora/41: no $ARCH image on $HTTPD" err
'

test_expect_success 'KARAPACE_IMAGE_SERVER overrides the configuration' '
	KARAPACE_IMAGE_SERVER=http://127.0.0.1:9/ test_expect_code 1 kp-fetch-image --resolve debian/bookworm 2>err &&
	grep "http://127.0.0.1:9/streams/v1/index.json" err &&
	printf "[images]\nservers = [\"http://127.0.0.1:9\"]\nretries = 0\n" >.config/karapace/config.toml &&
	KARAPACE_IMAGE_SERVER="http://127.0.0.1:9, $HTTPD" kp-fetch-image --resolve debian/bookworm >out &&
	grep "^$HTTPD/" out
'

test_expect_success 'XDG_CONFIG_HOME is honoured; configuration errors name file and key' '
	mkdir -p xdg/karapace &&
	printf "[images]\nservers = [\"%s\"]\n" "$HTTPD" >xdg/karapace/config.toml &&
	XDG_CONFIG_HOME="$PWD/xdg" kp-fetch-image --resolve debian/bookworm >out &&
	grep "^$HTTPD/" out &&
	printf "[images]\nserver = \"x\"\n" >xdg/karapace/config.toml &&
	XDG_CONFIG_HOME="$PWD/xdg" test_expect_code 1 kp-fetch-image --resolve debian/bookworm 2>err &&
	grep "xdg/karapace/config.toml: unknown key images.server" err
'

test_expect_success 'nothing half-imported: store is consistent' '
	kp-fsck &&
	karapace image list >list &&
	! grep -e "^bad " -e "^h " -e "^short " list
'

test_done

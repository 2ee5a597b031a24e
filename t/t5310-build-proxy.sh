#!/bin/sh
test_description='apt inside a build downloads through the user'"'"'s proxy, told in a settings file that no layer keeps'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"
. "$TEST_DIRECTORY/lib-images.sh"

use_debian_image
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# The fixture's apt repository served over http on 127.0.0.1, an image whose
# only source it is, and a logging proxy.
test_expect_success 'setup: the apt repository over http, an image using it, a proxy' '
	repo=$(fixture_apt_repo) &&
	image_httpd "$repo" &&
	test_proxy &&
	cp -al "$IMAGE" img &&
	rm img/etc/apt/sources.list &&
	echo "deb [trusted=yes] $HTTPD/ ./" >img/etc/apt/sources.list &&
	tar -C img --numeric-owner -cf image.tar . &&
	AUTHED=http://joe:s3cret@${PROXY#http://}
'

# proxied_build AS DIR N: as AS, builds jq from DIR/proj with http_proxy set
# (a proxy URL with a password), checks apt went through the proxy and that
# the dependency layer holds neither the settings file nor the password.
proxied_build() {
	(as=$1 && cd "$2" &&
	 export KARAPACE_STORE="$PWD/st" &&
	 : >"$PROXY_LOG" &&
	 $as env http_proxy=$AUTHED karapace build proj --name px >id 2>err &&
	 grep "built px (3 package(s) installed)" err &&
	 grep "^GET $HTTPD/\./Packages.* 200 auth=Basic $(printf joe:s3cret | base64)$" "$PROXY_LOG" &&
	 grep "^GET $HTTPD/\./jq_.*\.deb 200 auth=" "$PROXY_LOG" &&
	 $as karapace --json inspect px >j &&
	 dep=$(python3 -c "import json; print(json.load(open(\"j\"))[\"layers\"][1])") &&
	 $as kp-ls-layer -r $dep >ls &&
	 grep "usr/bin/jq$" ls &&
	 ! grep -i "karapace-proxy\|apt\.conf$" ls &&
	 $as kp-checkout-layer $dep co &&
	 ! grep -rlF s3cret co &&
	 ! grep -rlF "${PROXY#http://}" co &&
	 ! grep -rlF s3cret st/tmp &&
	 $as karapace exec px -- sh -c "test ! -e /.karapace-proxy && echo {} | jq -c ." >out &&
	 echo "{}" >expect && test_cmp expect out)
}

test_expect_success 'http_proxy reaches apt through Acquire::http::Proxy; the layer keeps no trace of it' '
	mkdir r && write_manifest r/proj ../../image.tar jq &&
	proxied_build "" r
'

test_expect_success 'no proxy: apt goes straight to the server' '
	(cd r && export KARAPACE_STORE="$PWD/st2" &&
	 : >"$PROXY_LOG" && : >"$HTTPD_LOG" &&
	 karapace build proj --name direct >/dev/null 2>&1 &&
	 test_must_be_empty "$PROXY_LOG" &&
	 grep "GET /\./jq_.*\.deb 200" "$HTTPD_LOG")
'

test_expect_success '[network] proxy is told to apt as well, and no_proxy as DIRECT' '
	(cd r && export KARAPACE_STORE="$PWD/st3" &&
	 mkdir -p .config/karapace &&
	 printf "[network]\nproxy = \"%s\"\n" "$PROXY" >.config/karapace/config.toml &&
	 : >"$PROXY_LOG" &&
	 HOME=$PWD karapace build proj --name conf >/dev/null 2>&1 &&
	 grep "^GET $HTTPD/\./jq_" "$PROXY_LOG" &&
	 printf "no_proxy = \"127.0.0.1\"\n" >>.config/karapace/config.toml &&
	 : >"$PROXY_LOG" && rm -rf st3 &&
	 HOME=$PWD karapace build proj --name conf >/dev/null 2>&1 &&
	 test_must_be_empty "$PROXY_LOG")
'

test_expect_success ROOTLESS_SINGLE 'rootless without a subordinate range: the same' '
	mkdir rl && write_manifest rl/proj ../../image.tar jq &&
	chown -R $KP_TEST_USER_SINGLE rl &&
	proxied_build as_single_user rl
'

test_expect_success SUBUID 'rootless with a subordinate range (apt downloads as _apt): the same' '
	mkdir rs && write_manifest rs/proj ../../image.tar jq &&
	chown -R $KP_TEST_USER rs &&
	proxied_build as_user rs
'

test_done

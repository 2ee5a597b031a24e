#!/bin/sh
test_description='image downloads through proxies (curl'"'"'s variables, [network] proxy) and TLS checked against the system CA store (SSL_CERT_FILE)'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY HTTP_PROXY SSL_CERT_FILE SSL_CERT_DIR

if ! test_have_prereq BUSYBOX || ! test_have_prereq PYTHON3; then
	test_skip_all "needs busybox-static and python3"
fi
test_lazy_prereq OPENSSL 'command -v openssl'

config() {
	mkdir -p .config/karapace &&
	printf "[images]\nretries = 0\ntimeout = 5\n%b" "$1" >.config/karapace/config.toml
}

# fetch_as RUN STORE URL [VAR=VALUE...]: kp-fetch-image of URL into STORE (a
# fresh store) as RUN ("" for the caller, as_user), with VARs set.
fetch_as() {
	(run=$1 store=$2 url=$3 && shift 3 &&
	 rm -rf "$store" && $run kp-init "$store" >/dev/null &&
	 $run env "$@" kp-fetch-image --store "$store" "$url")
}

test_expect_success 'setup: an image on an http server, a logging proxy' '
	fixture_busybox_rootfs root &&
	image_rootfs_tarball root box.tar.xz &&
	mkdir -p srv && cp box.tar.xz srv/ &&
	image_httpd "$PWD/srv" && PLAIN=$HTTPD &&
	test_proxy &&
	config "" &&
	kp-init other >/dev/null &&
	kp-fetch-image --store other ./box.tar.xz >expect
'

# through RUN: the proxy variables, each as curl reads them, as RUN.
through() {
	: >"$PROXY_LOG" &&
	fetch_as "$1" s1 "$PLAIN/box.tar.xz" http_proxy=$PROXY >out &&
	test_cmp expect out &&
	grep "^CONNECT 127.0.0.1:${PLAIN##*:}$" "$PROXY_LOG" &&

	: >"$PROXY_LOG" &&
	fetch_as "$1" s2 "$PLAIN/box.tar.xz" HTTP_PROXY=$PROXY >out &&
	test_cmp expect out &&
	test_must_be_empty "$PROXY_LOG" &&

	fetch_as "$1" s3 "$PLAIN/box.tar.xz" all_proxy=$PROXY >out &&
	test_cmp expect out && test_line_count = 1 "$PROXY_LOG" &&

	: >"$PROXY_LOG" &&
	fetch_as "$1" s4 "$PLAIN/box.tar.xz" ALL_PROXY=$PROXY NO_PROXY=localhost,127.0.0.0/8 >out &&
	test_cmp expect out &&
	test_must_be_empty "$PROXY_LOG"
}

test_expect_success 'http_proxy and all_proxy carry a download; HTTP_PROXY is ignored, NO_PROXY honoured' '
	through ""
'

test_expect_success ROOTLESS 'rootless: the same' '
	mkdir -p u/.config && cp -r .config/karapace u/.config/ && cp expect u/ &&
	chown -R "$KP_TEST_USER" u &&
	(cd u && HOME=$PWD && through as_user)
'

test_expect_success 'a proxy that is down fails the download; proof the proxy is the way out' '
	test_expect_code 1 fetch_as "" s5 "$PLAIN/box.tar.xz" http_proxy=http://127.0.0.1:1 2>err &&
	grep "$PLAIN/box.tar.xz: .* (through the proxy 127.0.0.1:1) (after 1 attempt)" err
'

test_expect_success '[network] proxy is used without any variable, and wins over them' '
	config "[network]\nproxy = \"$PROXY\"\n" &&
	: >"$PROXY_LOG" &&
	fetch_as "" s6 "$PLAIN/box.tar.xz" http_proxy=http://127.0.0.1:1 >out &&
	test_cmp expect out && test_line_count = 1 "$PROXY_LOG" &&
	config "[network]\nproxy = \"\"\n" &&
	fetch_as "" s7 "$PLAIN/box.tar.xz" http_proxy=http://127.0.0.1:1 >out &&
	test_cmp expect out && test_line_count = 1 "$PROXY_LOG"
'

test_expect_success 'proxy credentials reach the proxy, and no error message shows them' '
	config "[network]\nproxy = \"http://joe:s3cret@${PROXY#http://}\"\n" &&
	: >"$PROXY_LOG" &&
	fetch_as "" s8 "$PLAIN/box.tar.xz" >out && test_cmp expect out &&
	grep "^CONNECT .* auth=Basic $(printf joe:s3cret | base64)$" "$PROXY_LOG" &&
	config "[network]\nproxy = \"http://joe:s3cret@127.0.0.1:1\"\n" &&
	test_expect_code 1 fetch_as "" s9 "$PLAIN/box.tar.xz" 2>err &&
	! grep s3cret err &&
	config "[network]\nproxy = \"ftp://joe:s3cret@p\"\n" &&
	test_expect_code 1 kp-fetch-image --store s8 "$PLAIN/box.tar.xz" 2>err &&
	grep "config.toml: network.proxy: not a proxy URL" err && ! grep s3cret err
'

test_expect_success OPENSSL 'setup: a test CA and an https server with a certificate it signed' '
	config "" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=karapace test CA" \
		-keyout ca.key -out ca.pem 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout srv.key -out srv.csr 2>/dev/null &&
	printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" >ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile ext -out srv.pem 2>/dev/null &&
	image_httpd "$PWD/srv" "$PWD/srv.pem" "$PWD/srv.key" && TLS=$HTTPD &&
	test "${TLS%%:*}" = https
'

test_expect_success OPENSSL 'https: a CA from SSL_CERT_FILE is trusted' '
	fetch_as "" s10 "$TLS/box.tar.xz" "SSL_CERT_FILE=$PWD/ca.pem" >out &&
	test_cmp expect out &&
	grep "GET /box.tar.xz 200" "$HTTPD_LOG"
'

test_expect_success OPENSSL 'https: without the CA the download fails at once, with a TLS error' '
	test_when_finished "config \"\"" &&
	printf "[images]\nretries = 3\n" >.config/karapace/config.toml &&
	test_expect_code 1 fetch_as "" s11 "$TLS/box.tar.xz" 2>err &&
	grep "$TLS/box.tar.xz: TLS: the server.s certificate is not trusted (UnknownIssuer).*SSL_CERT_FILE.*(after 1 attempt)" err &&
	mkdir certs && cp ca.pem certs/ && openssl rehash certs &&
	fetch_as "" s12 "$TLS/box.tar.xz" "SSL_CERT_DIR=$PWD/certs" >out &&
	test_cmp expect out
'

test_expect_success OPENSSL 'https through the proxy: a CONNECT tunnel, the CA still checked' '
	: >"$PROXY_LOG" &&
	fetch_as "" s13 "$TLS/box.tar.xz" HTTPS_PROXY=$PROXY "SSL_CERT_FILE=$PWD/ca.pem" >out &&
	test_cmp expect out &&
	grep "^CONNECT 127.0.0.1:${TLS##*:}$" "$PROXY_LOG" &&
	test_expect_code 1 fetch_as "" s14 "$TLS/box.tar.xz" HTTPS_PROXY=$PROXY 2>err &&
	grep "TLS: the server.s certificate is not trusted" err
'

test_expect_success OPENSSL,ROOTLESS 'rootless: https with SSL_CERT_FILE, and the TLS error without' '
	(cd u && HOME=$PWD &&
	 fetch_as as_user s10 "$TLS/box.tar.xz" "SSL_CERT_FILE=$TRASH_DIRECTORY/ca.pem" >out &&
	 test_cmp expect out &&
	 test_expect_code 1 fetch_as as_user s11 "$TLS/box.tar.xz" 2>err &&
	 grep "TLS: the server.s certificate is not trusted" err)
'

test_done

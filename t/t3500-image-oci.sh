#!/bin/sh
test_description='OCI base images: a real registry (docker-registry, seeded by skopeo) and a stub for statuses and auth'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"
. "$TEST_DIRECTORY/lib-env.sh"

oci_setup
HOSTARCH=$(uname -m | sed -e s/x86_64/amd64/ -e s/aarch64/arm64/)
OTHER=s390x
test "$HOSTARCH" != s390x || OTHER=amd64

# push TAG REPO:TAG [--all]: copies the layout's TAG into the registry.
push() {
	skopeo copy -q $3 --dest-tls-verify=false "oci:$PWD/lay:$1" "docker://$REG/$2" >/dev/null
}

# nothing_stored NAME: no image NAME, nothing under its ref.
nothing_stored() {
	karapace image list >list &&
	! grep "$1" list &&
	! test -e "$KARAPACE_STORE/refs/images/$1"
}

test_expect_success 'setup: layouts from the busybox fixture, a registry seeded by skopeo' '
	karapace init >/dev/null &&
	fixture_busybox_rootfs root &&
	mkdir -p top/etc top/bin && echo hello >top/etc/motd && : >top/etc/.wh.group && : >top/bin/.wh.vi &&
	mkdir -p top2/etc && echo other >top2/etc/motd &&
	mkdir -p top3/etc && echo corrupt-me >top3/etc/unique &&
	$OCI layout lay v1 root top &&
	$OCI layout lay v2 root top2 &&
	$OCI layout lay multi --index root top &&
	$OCI layout lay corrupt root top3 &&
	$OCI layout lay foreign --arch $OTHER root &&
	$OCI layout lay foreign-index --arch $OTHER --index root &&
	for k in dotdot absolute symlink whiteout-up; do
		$OCI badtar $k.tar $k && $OCI layout lay $k root $k.tar || return 1
	done &&
	test_daemon registry $OCI registry "$TRASH_DIRECTORY/registry.port" "$PWD/reg" &&
	REG=127.0.0.1:$DAEMON_PORT &&
	for t in v1 v2 corrupt foreign dotdot absolute symlink whiteout-up; do
		push $t test/bb:$t || return 1
	done &&
	push multi test/bb:multi --all &&
	push foreign-index test/bb:foreign-index --all &&
	echo "REG=$REG" >reg.env &&
	mkdir -p .config/karapace &&
	printf "[images]\nretries = 1\n" >.config/karapace/config.toml &&
	# What applying the layers by hand gives.
	cp -a root flat && echo hello >flat/etc/motd && rm flat/etc/group flat/bin/vi &&
	kp-init other >/dev/null &&
	kp-fetch-image --store other --name flat ./flat >flat.digest
'
. ./reg.env 2>/dev/null || . "$TRASH_DIRECTORY/reg.env"

test_expect_success 'import: the layers applied in order, whiteouts honoured, one base layer' '
	karapace image import oci://$REG/test/bb:v1 >out &&
	echo "${REG%%:*}_${REG##*:}/test/bb/v1 $(cat flat.digest) (imported)" >expect &&
	test_cmp expect out &&
	kp-ls-layer -r "$(cat flat.digest)" >ls &&
	grep "	etc/motd$" ls && ! grep "	etc/group$" ls && ! grep "	bin/vi$" ls && ! grep "\.wh\." ls
'

test_expect_success 'the metadata and the lock-side digest are the registry manifest digest' '
	want=$(skopeo inspect --tls-verify=false --format "{{.Digest}}" docker://$REG/test/bb:v1) &&
	karapace --json image list >list.json &&
	grep "\"oci_digest\":\"$want\"" list.json &&
	grep "\"source\":\"oci://$REG/test/bb:v1@$want\"" list.json &&
	kp-fetch-image --resolve oci://$REG/test/bb:v1 >out &&
	echo "oci://$REG/test/bb:v1@$want" >expect && test_cmp expect out
'

test_expect_success 'docker:// is an alias; a digest reference pulls that manifest' '
	want=$(skopeo inspect --tls-verify=false --format "{{.Digest}}" docker://$REG/test/bb:v1) &&
	test "$(kp-fetch-image --name alias docker://$REG/test/bb:v1)" = "$(cat flat.digest)" &&
	test "$(kp-fetch-image --name bydigest oci://$REG/test/bb@$want)" = "$(cat flat.digest)"
'

test_expect_success 'an image index: the host platform is picked' '
	test "$(kp-fetch-image oci://$REG/test/bb:multi)" = "$(cat flat.digest)"
'

test_expect_success 'a second import downloads no layer; a new image fetches only its new layer' '
	ls "$KARAPACE_STORE/cache/oci/blobs/sha256" >blobs.before &&
	test_line_count = 2 blobs.before &&
	karapace image import oci://$REG/test/bb:v1 again >out &&
	grep "(already in the store)" out &&
	rm -r "$KARAPACE_STORE/cache/images" &&
	kp-fetch-image --name again2 oci://$REG/test/bb:v1 >/dev/null &&
	ls "$KARAPACE_STORE/cache/oci/blobs/sha256" >blobs.after && test_cmp blobs.before blobs.after &&
	kp-fetch-image oci://$REG/test/bb:v2 >v2.digest &&
	ls "$KARAPACE_STORE/cache/oci/blobs/sha256" >blobs.v2 && test_line_count = 3 blobs.v2
'

test_expect_success 'a cached blob is checked again: a damaged one is refused and dropped' '
	rm -r "$KARAPACE_STORE/cache/images" &&
	for b in "$KARAPACE_STORE"/cache/oci/blobs/sha256/*; do
		chmod u+w "$b" && printf "\0" | dd of="$b" bs=1 seek=100 conv=notrunc 2>/dev/null || return 1
	done &&
	test_expect_code 1 kp-fetch-image --name damaged oci://$REG/test/bb:v1 2>err &&
	grep "cache/oci/blobs/sha256/.*: sha256 is " err &&
	nothing_stored damaged &&
	ls "$KARAPACE_STORE/cache/oci/blobs/sha256" >left && grep -v -f left blobs.v2 >dropped &&
	test_line_count = 2 dropped &&
	test "$(kp-fetch-image --name repaired oci://$REG/test/bb:v1)" = "$(cat flat.digest)"
'

write_oci_manifest() {
	mkdir -p "$1" && printf "manifest_version = 1\n[base]\nimage = \"%s\"\n" "$2" >"$1/karapace.toml"
}

test_expect_success SANDBOX 'build and exec from an oci:// image (as root); the lock records the manifest digest' '
	want=$(skopeo inspect --tls-verify=false --format "{{.Digest}}" docker://$REG/test/bb:v1) &&
	write_oci_manifest proj oci://$REG/test/bb:v1 &&
	karapace build proj --name bb >id &&
	grep "^oci_digest = \"$want\"$" proj/karapace.lock &&
	grep "^digest = \"$(cat flat.digest)\"$" proj/karapace.lock &&
	kp-resolve --check proj >/dev/null &&
	karapace exec bb -- cat /etc/motd >out &&
	echo hello >expect && test_cmp expect out
'

test_expect_success SANDBOX '--locked pulls the locked digest after the tag moved' '
	push v2 test/bb:v1 &&
	mkdir fresh && kp-init fresh/st >/dev/null &&
	KARAPACE_STORE=$PWD/fresh/st karapace build --locked proj --name bb >id2 &&
	test_cmp id id2 &&
	KARAPACE_STORE=$PWD/fresh/st karapace exec bb -- cat /etc/motd >out &&
	test_cmp expect out &&
	push v1 test/bb:v1
'

# rootless DIR RUN: as RUN (as_user or as_single_user), in DIR, an oci://
# image builds and runs, and a hostile layer is refused with nothing stored.
rootless() {
	mkdir "$1" && write_oci_manifest "$1/proj" oci://$REG/test/bb:v1 && chown -R $KP_TEST_USER "$1" &&
	(cd "$1" && export KARAPACE_STORE="$PWD/st" &&
	 $2 karapace build proj --name bb >id &&
	 $2 karapace exec bb -- cat /etc/motd >out &&
	 echo hello >expect && test_cmp expect out &&
	 grep "^oci_digest = \"sha256:" proj/karapace.lock &&
	 test_expect_code 1 $2 karapace image import oci://$REG/test/bb:symlink evil 2>err &&
	 grep "member evil/passwd: goes through the symlink evil" err &&
	 ! test -e st/refs/images/evil)
}

test_expect_success SANDBOX,ROOTLESS 'as the unprivileged user: build and exec from an oci:// image; a hostile layer refused' '
	rootless u as_user
'

test_expect_success SANDBOX,ROOTLESS_SINGLE 'as the user without a subordinate range: the same' '
	KP_TEST_USER=$KP_TEST_USER_SINGLE rootless us as_single_user
'

test_expect_success 'a layer whose sha256 differs from its descriptor: refused, nothing stored' '
	layer=$(python3 -c "import json; m=json.load(open(\"lay/index.json\"))[\"manifests\"]; \
d=[x for x in m if x[\"annotations\"][\"org.opencontainers.image.ref.name\"]==\"corrupt\"][0][\"digest\"]; \
print(json.load(open(\"lay/blobs/sha256/\"+d.split(\":\")[1]))[\"layers\"][1][\"digest\"].split(\":\")[1])") &&
	data=$(find reg -path "*/blobs/sha256/*/$layer/data") && test -f "$data" &&
	printf "\001" | dd of="$data" bs=1 seek=20 conv=notrunc 2>/dev/null &&
	test_expect_code 1 kp-fetch-image --name corrupt oci://$REG/test/bb:corrupt 2>err &&
	grep "blobs/sha256:$layer: sha256 is [0-9a-f]*, expected $layer" err &&
	nothing_stored corrupt &&
	! test -e "$KARAPACE_STORE/cache/oci/blobs/sha256/$layer"
'

test_expect_success 'only another platform: a manifest and an index, each refused' '
	test_expect_code 1 kp-fetch-image --name foreign oci://$REG/test/bb:foreign 2>err &&
	grep "oci://$REG/test/bb:foreign: the image is for linux/$OTHER, not linux/$HOSTARCH" err &&
	test_expect_code 1 kp-fetch-image --name foreign oci://$REG/test/bb:foreign-index 2>err &&
	grep "oci://$REG/test/bb:foreign-index: no linux/$HOSTARCH image; the index has linux/$OTHER" err &&
	nothing_stored foreign
'

test_expect_success 'layers with ../, absolute paths, a path through a symlink, a whiteout of ..: refused' '
	for k in dotdot absolute symlink whiteout-up; do
		test_expect_code 1 kp-fetch-image --name $k oci://$REG/test/bb:$k 2>err-$k &&
		test_line_count = 1 err-$k && nothing_stored $k || return 1
	done &&
	grep "layer 2 (sha256:.*): member etc/../../escape: path contains .\.\.." err-dotdot &&
	grep "member /etc/escape: absolute path" err-absolute &&
	grep "member evil/passwd: goes through the symlink evil" err-symlink &&
	grep "member etc/.wh...: a whiteout of .\.. or .\.\.. points outside" err-whiteout-up
'

test_expect_success 'malformed references: one line naming the reason' '
	for r in oci:// oci://h.io/Upper oci://h.io/r:bad:tag "oci://h.io/r@sha256:abc" oci://h.io:0/r; do
		test_expect_code 1 kp-fetch-image "$r" 2>err &&
		test_line_count = 1 err && grep "image reference \"$r\": " err || return 1
	done
'

test_expect_success 'a stub registry: 404, 500 (retried), 401 without and with credentials, bearer tokens' '
	test_daemon stub $OCI stub "$PWD/lay" "$TRASH_DIRECTORY/stub.port" "$PWD/stub.log" &&
	S=127.0.0.1:$DAEMON_PORT &&
	ls -S lay/blobs/sha256 | head -n 1 >big.layer &&
	test "$(kp-fetch-image --name open oci://$S/open/bb:v1)" = "$(cat flat.digest)" &&
	test_expect_code 1 kp-fetch-image oci://$S/missing/bb:v1 2>err &&
	grep "http://$S/v2/missing/bb/manifests/v1: HTTP 404 Not Found" err &&
	test_expect_code 1 kp-fetch-image oci://$S/broken/bb:v1 2>err &&
	grep "http://$S/v2/broken/bb/manifests/v1: HTTP 500 Internal Server Error (after 2 attempts)" err &&
	kp-init shortst >/dev/null &&
	test_expect_code 1 kp-fetch-image --store shortst --name short oci://$S/short/bb:v1 2>err &&
	test_line_count = 1 err &&
	grep "http://$S/v2/short/bb/blobs/sha256:$(cat big.layer): .* (after 2 attempts)" err &&
	test $(grep -c "GET /v2/short/bb/blobs/sha256:$(cat big.layer) 200" stub.log) = 2 &&
	! test -e shortst/refs/images/short && ! test -e shortst/cache/oci/blobs/sha256/$(cat big.layer) &&
	test_expect_code 1 env REGISTRY_AUTH_FILE="$PWD/none.json" XDG_RUNTIME_DIR= kp-fetch-image oci://$S/token/bb:v1 2>err &&
	grep "HTTP 401 Unauthorized (no credentials for $S in $PWD/none.json, $HOME/.docker/config.json)" err &&
	printf "{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}" $S "$(printf kp:secret | base64)" >auth.json &&
	test "$(REGISTRY_AUTH_FILE="$PWD/auth.json" kp-fetch-image oci://$S/token/bb:v1)" = "$(cat flat.digest)" &&
	grep "GET /token?token&scope=repository%3Atoken%2Fbb%3Apull&service=stub 200" stub.log &&
	test_expect_code 1 env REGISTRY_AUTH_FILE="$PWD/auth.json" kp-fetch-image oci://$S/denied/bb:v1 2>err &&
	grep "HTTP 401 Unauthorized (the credentials for $S in $PWD/auth.json were refused)" err &&
	nothing_stored denied
'

test_expect_success 'plain http only for loopback or --insecure-registry' '
	test_expect_code 1 kp-fetch-image --resolve oci://localhost.invalid:1/r:t 2>err &&
	grep "https://localhost.invalid:1/v2/r/manifests/t" err &&
	test_expect_code 1 kp-fetch-image --resolve --insecure-registry localhost.invalid:1 oci://localhost.invalid:1/r:t 2>err &&
	grep "http://localhost.invalid:1/v2/r/manifests/t" err
'

test_done

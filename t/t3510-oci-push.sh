#!/bin/sh
test_description='environments to and from an OCI registry: push ENV oci://..., pull oci://... (docker-registry on 127.0.0.1)'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"
. "$TEST_DIRECTORY/lib-env.sh"

oci_setup
test_lazy_prereq PODMAN 'test "$(id -u)" = 0 && command -v podman && command -v runc'

# podman_run ARGS...: podman run with storage of its own, made and removed
# (in /tmp: podman wants at most 50 characters for its run root). This
# machine may lack CAP_SYS_RESOURCE, without which podman's default rlimits
# (above ours) are refused: its containers get lower ones.
podman_run() {
	rr=$(mktemp -d /tmp/kp-pm.XXXXXX) &&
	podman --root "$rr/root" --runroot "$rr/run" --storage-driver vfs \
		run --rm --tls-verify=false --ulimit nofile=1000:1000 --ulimit nproc=1000:1000 "$@"
	ret=$?
	rm -rf "$rr"
	return $ret
}

# requests: the registry's log as "METHOD URI STATUS" lines.
requests() {
	sed -n 's/.*msg="response completed".* http\.request\.method=\([A-Z]*\) .*http\.request\.uri="\{0,1\}\([^" ]*\)"\{0,1\} .*http\.response\.status=\([0-9]*\).*/\1 \2 \3/p' \
		"$TRASH_DIRECTORY/registry.err"
}

# since FILE: the requests after the first as many as FILE has lines.
since() {
	requests | tail -n +$(($(wc -l <"$1") + 1))
}

# field KEY FILE: a number or string field of a one-line JSON report.
field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" "$2"
}

# objects STORE: how many object files STORE has.
objects() {
	find "$1/objects" -type f | wc -l
}

test_expect_success 'setup: a busybox environment, a registry logging its requests' '
	karapace init >/dev/null &&
	fixture_busybox_rootfs root && echo hello >root/etc/motd &&
	mkdir proj && printf "manifest_version = 1\n[base]\nimage = \"%s\"\n" "$PWD/root" >proj/karapace.toml &&
	karapace build proj --name bb >env_id &&
	mkdir -p root2 && cp -a root/. root2 && echo tamper-me >root2/etc/unique &&
	mkdir proj2 && printf "manifest_version = 1\n[base]\nimage = \"%s\"\n" "$PWD/root2" >proj2/karapace.toml &&
	karapace build proj2 --name bb2 >/dev/null &&
	test_daemon registry $OCI registry "$TRASH_DIRECTORY/registry.port" "$PWD/reg" info &&
	echo "REG=127.0.0.1:$DAEMON_PORT" >reg.env &&
	mkdir -p .config/karapace &&
	printf "[images]\nretries = 1\n" >.config/karapace/config.toml
'
. ./reg.env 2>/dev/null || . "$TRASH_DIRECTORY/reg.env"

test_expect_success 'push: one tar layer per store layer, the environment in the config labels' '
	karapace --json push bb oci://$REG/envs/bb:v1 >push.json &&
	test "$(field env_id push.json)" = "$(cat env_id)" &&
	test "$(field layers push.json)" = 1 && test "$(field uploaded push.json)" = 2 &&
	digest=$(skopeo inspect --tls-verify=false --format "{{.Digest}}" docker://$REG/envs/bb:v1) &&
	test "$(field digest push.json)" = "$digest" &&
	test "$(field reference push.json)" = "oci://$REG/envs/bb:v1@$digest" &&
	skopeo inspect --tls-verify=false --raw docker://$REG/envs/bb:v1 >manifest.json &&
	grep "\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\"" manifest.json &&
	grep "\"org.karapace.layer\":\"$(karapace --json inspect bb | sed "s/.*\"layers\":\[\"\([0-9a-f]*\)\".*/\1/")\"" manifest.json &&
	skopeo inspect --tls-verify=false --config docker://$REG/envs/bb:v1 >config.json &&
	grep "org.karapace.env" config.json && grep "org.karapace.layers" config.json &&
	grep "org.karapace.lock" config.json && grep "org.karapace.manifest" config.json
'

test_expect_success 'the same environment pushed again: the same digests, nothing uploaded' '
	requests >before &&
	karapace --json push bb oci://$REG/envs/bb:v1 >again.json &&
	test "$(field digest again.json)" = "$(field digest push.json)" &&
	test "$(field uploaded again.json)" = 0 && test "$(field bytes again.json)" = 0 &&
	test "$(field present again.json)" = 2 &&
	since before >new &&
	! grep -E "^(POST|PATCH)|^PUT .*/blobs/" new &&
	grep "^HEAD /v2/envs/bb/blobs/sha256:.* 200$" new &&
	rm -r store/cache/oci/tars &&
	karapace --json push bb oci://$REG/envs/bb:v1 >third.json &&
	test "$(field digest third.json)" = "$(field digest push.json)" &&
	test "$(field uploaded third.json)" = 0
'

test_expect_success 'another repository of the registry: the blobs are mounted, not uploaded' '
	requests >before &&
	karapace --json push bb oci://$REG/other/bb:v1 >mount.json &&
	test "$(field mounted mount.json)" = 2 && test "$(field uploaded mount.json)" = 0 &&
	test "$(field digest mount.json)" = "$(field digest push.json)" &&
	since before >new &&
	test $(grep -c "^POST /v2/other/bb/blobs/uploads/?mount=sha256%3A[0-9a-f]*&from=envs%2Fbb 201$" new) = 2 &&
	! grep -E "^(PATCH|PUT) .*/blobs/" new
'

test_expect_success 'chunked upload: PATCH after PATCH, then PUT ?digest=' '
	rm -r store/cache/oci/sources &&
	requests >before &&
	karapace --json push --chunk-size 300000 bb oci://$REG/chunked/bb:v1 >chunked.json &&
	test "$(field uploaded chunked.json)" = 2 &&
	test "$(field digest chunked.json)" = "$(field digest push.json)" &&
	since before >new &&
	test $(grep -c "^PATCH /v2/chunked/bb/blobs/uploads/" new) -ge 2 &&
	grep "^PUT /v2/chunked/bb/blobs/uploads/.*&digest=sha256%3A.* 201$" new
'

test_expect_success 'pull into a second store: the same env_id, origin remote, verify-store clean' '
	kp-init second >/dev/null &&
	KARAPACE_STORE=$PWD/second karapace pull oci://$REG/chunked/bb:v1 --name copy >out &&
	grep "^pulled oci://$REG/chunked/bb:v1 as $(cut -c1-12 env_id) (1 layers, [0-9]* bytes)$" out &&
	KARAPACE_STORE=$PWD/second karapace --json inspect copy >inspect.json &&
	test "$(field env_id inspect.json)" = "$(cat env_id)" &&
	test "$(field origin inspect.json)" = remote &&
	KARAPACE_STORE=$PWD/second karapace verify-store &&
	KARAPACE_STORE=$PWD/second karapace pull oci://$REG/envs/bb:v1 >again &&
	grep "^already here: oci://$REG/envs/bb:v1 as $(cut -c1-12 env_id) (0 layers, 0 bytes)$" again
'

test_expect_success SANDBOX 'the pulled environment runs at once' '
	KARAPACE_STORE=$PWD/second karapace exec copy -- cat /etc/motd >out &&
	echo hello >expect && test_cmp expect out
'

test_expect_success 'the pulled environment pushed from the second store: the same layer digests' '
	KARAPACE_STORE=$PWD/second karapace --json push copy oci://$REG/fromcopy/bb:v1 >copy.json &&
	skopeo inspect --tls-verify=false --format "{{.Layers}}" docker://$REG/envs/bb:v1 >l1 &&
	skopeo inspect --tls-verify=false --format "{{.Layers}}" docker://$REG/fromcopy/bb:v1 >l2 &&
	test_cmp l1 l2
'

test_expect_success PODMAN 'the pushed image runs under podman as an ordinary image' '
	podman_run $REG/envs/bb:v1 cat /etc/motd >out 2>podman.err || {
		cat podman.err; false; } &&
	test_cmp expect out
'

test_expect_success 'a base image that is no environment: refused, nothing stored' '
	$OCI layout lay plain root &&
	skopeo copy -q --dest-tls-verify=false "oci:$PWD/lay:plain" "docker://$REG/test/plain:v1" &&
	kp-init third >/dev/null &&
	test_expect_code 1 env KARAPACE_STORE="$PWD/third" karapace pull oci://$REG/test/plain:v1 2>err &&
	test_line_count = 1 err &&
	grep "oci://$REG/test/plain:v1: not a karapace environment (its config has no org.karapace.env label)" err &&
	test $(objects third) = 0
'

test_expect_success 'labels that are not the layers: refused, no environment recorded' '
	$OCI layout lay other root2 &&
	skopeo copy -q --dest-tls-verify=false "oci:$PWD/lay:other" "docker://$REG/test/other:v1" &&
	skopeo inspect --tls-verify=false --raw docker://$REG/envs/bb:v1 >env.manifest &&
	skopeo inspect --tls-verify=false --raw docker://$REG/test/other:v1 >plain.manifest &&
	python3 -c "import json; e=json.load(open(\"env.manifest\")); p=json.load(open(\"plain.manifest\")); \
e[\"layers\"]=p[\"layers\"]; json.dump(e, open(\"forged.manifest\", \"w\")); \
print(e[\"config\"][\"digest\"], p[\"layers\"][0][\"digest\"])" >digests &&
	read config layer <digests &&
	for mount in "$config envs/bb" "$layer test/other"; do
		set -- $mount &&
		curl -sf -o /dev/null -X POST "http://$REG/v2/forged/bb/blobs/uploads/?mount=$1&from=$2" || return 1
	done &&
	curl -sf -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
		--data-binary @forged.manifest "http://$REG/v2/forged/bb/manifests/v1" &&
	kp-init forged >/dev/null &&
	test_expect_code 1 env KARAPACE_STORE="$PWD/forged" karapace pull oci://$REG/forged/bb:v1 2>err &&
	test_line_count = 1 err &&
	grep "oci://$REG/forged/bb:v1 layer 1 (sha256:[0-9a-f]*): its tar is tree [0-9a-f]* (root 755 0:0), the layer [0-9a-f]* names tree [0-9a-f]* (root 755 0:0)" err &&
	KARAPACE_STORE="$PWD/forged" karapace --json list >list &&
	echo "{\"environments\":[]}" >expect && test_cmp expect list &&
	! find forged/objects -name "*.layer" | grep .
'

test_expect_success 'a name already taken: refused before anything is fetched' '
	kp-init fourth >/dev/null &&
	KARAPACE_STORE=$PWD/fourth karapace build proj2 --name taken >/dev/null &&
	count=$(objects fourth) &&
	test_expect_code 1 env KARAPACE_STORE="$PWD/fourth" karapace pull oci://$REG/envs/bb:v1 --name taken 2>err &&
	test_line_count = 1 err && grep "taken" err &&
	test $(objects fourth) = $count &&
	! test -e fourth/cache/oci/blobs
'

test_expect_success 'a tampered blob: refused, nothing stored' '
	karapace --json push bb2 oci://$REG/tamper/bb:v1 >tamper.json &&
	layer=$(skopeo inspect --tls-verify=false --format "{{index .Layers 0}}" docker://$REG/tamper/bb:v1 | cut -d: -f2) &&
	data=$(find reg -path "*/blobs/sha256/*/$layer/data") && test -f "$data" &&
	printf "\001" | dd of="$data" bs=1 seek=2000 conv=notrunc 2>/dev/null &&
	kp-init fifth >/dev/null &&
	test_expect_code 1 env KARAPACE_STORE="$PWD/fifth" karapace pull oci://$REG/tamper/bb:v1 --name t 2>err &&
	test_line_count = 1 err &&
	grep "blobs/sha256:$layer: sha256 is [0-9a-f]*, expected $layer" err &&
	test $(objects fifth) = 0 &&
	KARAPACE_STORE=$PWD/fifth karapace --json list >list && echo "{\"environments\":[]}" >expect && test_cmp expect list &&
	! test -e fifth/cache/oci/blobs/sha256/$layer
'

test_expect_success 'an unreachable registry, a missing tag, a refused push: one clear line each' '
	port=$($OCI freeport) &&
	test_expect_code 1 karapace push bb oci://127.0.0.1:$port/envs/bb:v1 2>err &&
	test_line_count = 1 err && grep "http://127.0.0.1:$port/v2/envs/bb/blobs/sha256:.*onnection refused" err &&
	test_expect_code 1 karapace pull oci://$REG/envs/bb:nosuchtag 2>err &&
	test_line_count = 1 err && grep "http://$REG/v2/envs/bb/manifests/nosuchtag: HTTP 404 Not Found" err &&
	test_expect_code 1 karapace push bb oci://$REG/envs/bb@sha256:$(printf %064d 0) 2>err &&
	grep "a push names a tag (oci://REGISTRY/REPO:TAG), not a digest" err &&
	test_expect_code 1 karapace push bb oci://$REG/Envs/bb:v1 2>err &&
	grep "image reference \"oci://$REG/Envs/bb:v1\": repository" err
'

test_expect_success 'an unauthorised registry: the 401 and what was tried' '
	$OCI layout stublay v1 root &&
	test_daemon stub $OCI stub "$PWD/stublay" "$TRASH_DIRECTORY/stub.port" "$PWD/stub.log" &&
	S=127.0.0.1:$DAEMON_PORT && echo "S=$S" >stub.env &&
	test_expect_code 1 env REGISTRY_AUTH_FILE="$PWD/none.json" XDG_RUNTIME_DIR= \
		karapace push bb oci://$S/denied/bb:v1 2>err &&
	test_line_count = 1 err &&
	grep "http://$S/token?denied&scope=repository%3Adenied%2Fbb%3Apull%2Cpush&service=stub: HTTP 401 Unauthorized (no credentials for $S in $PWD/none.json, $HOME/.docker/config.json)" err
'
. ./stub.env 2>/dev/null || . "$TRASH_DIRECTORY/stub.env" 2>/dev/null

test_expect_success 'credential helpers: credHelpers, then credsStore, run docker-credential-NAME get' '
	mkdir -p bin dock &&
	cat >bin/docker-credential-kptest <<-\EOF &&
	#!/bin/sh
	test "$1" = get || exit 2
	cat >>"$HOME/helper.log" && echo >>"$HOME/helper.log"
	echo "{\"ServerURL\":\"x\",\"Username\":\"kp\",\"Secret\":\"secret\"}"
	EOF
	cat >bin/docker-credential-kpnone <<-\EOF &&
	#!/bin/sh
	echo "credentials not found in native keychain"; exit 1
	EOF
	chmod +x bin/docker-credential-kptest bin/docker-credential-kpnone &&
	fixture=$(kp-fetch-image --store third --name open oci://$S/open/bb:v1) &&
	printf "{\"credHelpers\":{\"%s\":\"kptest\"}}" $S >dock/config.json &&
	test "$(PATH="$PWD/bin:$PATH" DOCKER_CONFIG="$PWD/dock" XDG_RUNTIME_DIR= kp-fetch-image --store third oci://$S/token/bb:v1)" = "$fixture" &&
	echo $S >expect && test_cmp expect helper.log &&
	printf "{\"credsStore\":\"kptest\"}" >dock/config.json &&
	test "$(PATH="$PWD/bin:$PATH" DOCKER_CONFIG="$PWD/dock" XDG_RUNTIME_DIR= kp-fetch-image --store third oci://$S/token/bb:v1)" = "$fixture" &&
	test_line_count = 2 helper.log &&
	printf "{\"credsStore\":\"kpnone\"}" >dock/config.json &&
	test_expect_code 1 env PATH="$PWD/bin:$PATH" DOCKER_CONFIG="$PWD/dock" XDG_RUNTIME_DIR= kp-fetch-image --store third oci://$S/token/bb:v1 2>err &&
	grep "HTTP 401 Unauthorized (no credentials for $S in $PWD/dock/config.json)" err &&
	printf "{\"credHelpers\":{\"%s\":\"kpnone\"},\"auths\":{\"%s\":{\"auth\":\"%s\"}}}" $S $S "$(printf kp:secret | base64)" >dock/config.json &&
	test_expect_code 1 env PATH="$PWD/bin:$PATH" DOCKER_CONFIG="$PWD/dock" XDG_RUNTIME_DIR= kp-fetch-image --store third oci://$S/token/bb:v1 2>err &&
	grep "HTTP 401 Unauthorized (no credentials for $S in $PWD/dock/config.json)" err &&
	printf "{\"credHelpers\":{\"%s\":\"kptest\"}}" $S >dock/config.json &&
	test_expect_code 1 env PATH="$PWD/bin:$PATH" DOCKER_CONFIG="$PWD/dock" XDG_RUNTIME_DIR= kp-fetch-image --store third oci://$S/denied/bb:v1 2>err &&
	grep "HTTP 401 Unauthorized (the credentials for $S in $PWD/dock/config.json (docker-credential-kptest) were refused)" err
'

# rootless DIR RUN: as RUN (as_user or as_single_user), in DIR: the
# environment root pushed is pulled with the same env_id and runs; pushed
# again to another repository (mounted) and pulled into a second store.
rootless() {
	mkdir "$1" && chown -R $KP_TEST_USER "$1" &&
	(cd "$1" && export KARAPACE_STORE="$PWD/st" &&
	 $2 kp-init st >/dev/null &&
	 $2 karapace pull oci://$REG/envs/bb:v1 --name bb >out &&
	 grep "^pulled oci://$REG/envs/bb:v1 as $(cut -c1-12 ../env_id) (1 layers, " out &&
	 $2 karapace exec bb -- cat /etc/motd >motd &&
	 echo hello >expect && test_cmp expect motd &&
	 $2 karapace --json push bb oci://$REG/$1/bb:v1 >push.json &&
	 test "$(field mounted push.json)" = 1 &&
	 $2 kp-init st2 >/dev/null &&
	 $2 env KARAPACE_STORE="$PWD/st2" karapace pull oci://$REG/$1/bb:v1 --name copy >out &&
	 grep "^pulled oci://$REG/$1/bb:v1 as $(cut -c1-12 ../env_id) " out &&
	 $2 env KARAPACE_STORE="$PWD/st2" karapace verify-store &&
	 $2 env KARAPACE_STORE="$PWD/st2" karapace exec copy -- cat /etc/motd >motd &&
	 test_cmp expect motd)
}

test_expect_success SANDBOX,ROOTLESS 'as the unprivileged user: push, pull the same env_id, exec' '
	rootless u as_user
'

test_expect_success SANDBOX,ROOTLESS_SINGLE 'as the user without a subordinate range: the same' '
	KP_TEST_USER=$KP_TEST_USER_SINGLE rootless us as_single_user
'

test_expect_success DEBIAN_IMAGE 'a Debian environment with a package: pulled with the same env_id, it runs here and under podman' '
	write_manifest deb "$(fixture_debian_image)" hello &&
	karapace build deb --name deb >deb.id 2>/dev/null &&
	karapace --json inspect deb >deb.json && grep "\"layers\":\[\"[0-9a-f]*\",\"[0-9a-f]*\"\]" deb.json &&
	karapace push deb oci://$REG/envs/deb:v1 >/dev/null &&
	kp-init debst >/dev/null &&
	KARAPACE_STORE=$PWD/debst karapace --json pull oci://$REG/envs/deb:v1 --name deb >pull.json &&
	test "$(field env_id pull.json)" = "$(cat deb.id)" && test "$(field layers pull.json)" = 2 &&
	KARAPACE_STORE=$PWD/debst karapace verify-store &&
	KARAPACE_STORE=$PWD/debst karapace exec deb -- hello >out &&
	echo "Hello, world!" >expect && test_cmp expect out &&
	if test_have_prereq PODMAN; then
		podman_run $REG/envs/deb:v1 hello >out 2>podman.err || { cat podman.err; false; } &&
		test_cmp expect out
	fi
'

test_done

#!/bin/sh
# OCI pull benchmarks (issue 16's targets), side by side in one run:
#   1. pulling the Debian minbase image (one gzip layer) from a local
#      docker-registry into a fresh store vs `skopeo copy docker://... oci:DIR`
#      plus extracting its layers with tar (target <= 1.2x);
#   2. a second pull of the same digest: no layer downloaded (target <= 50 ms);
#   3. an environment (the Debian fixture image with `hello`: two layers)
#      pushed to a new repository, pushed again, and pulled into a fresh
#      store, each beside `skopeo copy` of the same image (and tar -xf);
#   4. the bytes a push uploads when the registry holds the base already.
# Needs root for debootstrap (the tree is cached in $KP_TEST_CACHE), and the
# Debian packages docker-registry, skopeo and hyperfine.
# Usage: sh bench/oci.sh   (builds the release binaries first)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$PWD/target/release"
PATH="$BIN:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
TEST_DIRECTORY="$PWD/t"
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
OCI="python3 $PWD/t/lib-oci.py"
W=$(mktemp -d /var/tmp/kp-bench.XXXXXX)
REG_PID=
trap 'test -z "$REG_PID" || kill "$REG_PID"; rm -rf "$W"' EXIT
ROOTFS=$(fixture_debian_minbase)
IMAGE=$(fixture_debian_image)
export KARAPACE_STORE="$W/store"

$OCI layout "$W/lay" 1 "$ROOTFS"
$OCI registry "$W/port" "$W/reg" 2>"$W/reg.log" &
REG_PID=$!
while ! test -s "$W/port"; do sleep 0.1; done
REG=127.0.0.1:$(cat "$W/port")
skopeo copy -q --dest-tls-verify=false "oci:$W/lay:1" "docker://$REG/bench/debian:1"
REF="oci://$REG/bench/debian:1"
LAYERS=$(python3 -c "import json,sys; d='$W/lay/blobs/sha256/'; i=json.load(open('$W/lay/index.json'))['manifests'][0]['digest'][7:]; print(' '.join(l['digest'][7:] for l in json.load(open(d+i))['layers']))")
SIZE=0
for l in $LAYERS; do SIZE=$((SIZE + $(stat -c %s "$W/lay/blobs/sha256/$l"))); done

echo "## machine: $(nproc) cores, $(uname -r), $(df -h "$W" | awk 'NR==2 {print $1}')"
echo "## image: Debian bookworm minbase, $(du -sh "$ROOTFS" | cut -f1) unpacked, $(echo "$LAYERS" | wc -w) gzip layer(s) of $((SIZE / 1048576)) MiB"
echo
echo "## 1. first pull vs skopeo copy + tar"
extract="mkdir $W/x"
for l in $LAYERS; do extract="$extract && tar -C $W/x -xzf $W/o/blobs/sha256/$l"; done
hyperfine -N --warmup 1 --runs 5 --export-markdown "$W/h1.md" \
	--prepare "rm -rf $W/store $W/o $W/x" \
	-n "kp-fetch-image (fresh store)" "sh -c 'kp-init $W/store >/dev/null && kp-fetch-image $REF'" \
	-n "skopeo copy + tar -xzf" "sh -c 'skopeo copy -q --src-tls-verify=false docker://$REG/bench/debian:1 oci:$W/o:1 && $extract'" >/dev/null
cat "$W/h1.md"
echo
echo "## 2. second pull of the same digest (same store)"
rm -rf "$W/store" && kp-init "$W/store" >/dev/null && kp-fetch-image "$REF" >/dev/null
hyperfine -N --warmup 2 --runs 20 --export-markdown "$W/h2.md" \
	-n "kp-fetch-image again" "kp-fetch-image $REF" >/dev/null
cat "$W/h2.md"

echo
echo "## 3. an environment to and from the registry, beside skopeo copy of the same image"
export KARAPACE_STORE="$W/envs"
kp-init "$KARAPACE_STORE" >/dev/null
mkdir -p "$W/deb" "$W/base"
printf 'manifest_version = 1\n[base]\nimage = "%s"\n[system]\npackages = ["hello"]\n' "$IMAGE" >"$W/deb/karapace.toml"
printf 'manifest_version = 1\n[base]\nimage = "%s"\n' "$IMAGE" >"$W/base/karapace.toml"
karapace build "$W/deb" --name deb >/dev/null 2>&1
karapace build "$W/base" --name base >/dev/null 2>&1
karapace push deb "oci://$REG/bench/env:1" >/dev/null
skopeo copy -q --src-tls-verify=false "docker://$REG/bench/env:1" "oci:$W/envlay:1"
ENVLAYERS=$(python3 -c "import json; d='$W/envlay/blobs/sha256/'; i=json.load(open('$W/envlay/index.json'))['manifests'][0]['digest'][7:]; print(' '.join(l['digest'][7:] for l in json.load(open(d+i))['layers']))")
ENVSIZE=0
for l in $ENVLAYERS; do ENVSIZE=$((ENVSIZE + $(stat -c %s "$W/envlay/blobs/sha256/$l"))); done
echo "## environment: $(echo "$ENVLAYERS" | wc -w) tar layers, $((ENVSIZE / 1048576)) MiB"
echo 0 >"$W/n"
# Each run pushes to a repository of its own (a counter), with nothing to mount from.
next='n=$(cat '"$W"'/n); echo $((n + 1)) >'"$W"'/n'
extract_env="mkdir $W/x"
for l in $ENVLAYERS; do extract_env="$extract_env && tar -C $W/x -xf $W/o/blobs/sha256/$l"; done
hyperfine -N --warmup 1 --runs 5 --export-markdown "$W/h3.md" \
	--prepare "rm -rf $KARAPACE_STORE/cache/oci/sources $W/pulled $W/o $W/x" \
	-n "karapace push (new repository)" "sh -c '$next; karapace push deb oci://$REG/p\$n/env:1'" \
	-n "skopeo copy oci: -> docker:// (new repository)" "sh -c '$next; skopeo copy -q --dest-tls-verify=false oci:$W/envlay:1 docker://$REG/s\$n/env:1'" \
	-n "karapace push again (nothing uploaded)" "karapace push deb oci://$REG/bench/env:1" \
	-n "skopeo copy again (same repository)" "skopeo copy -q --dest-tls-verify=false oci:$W/envlay:1 docker://$REG/bench/env:1" \
	-n "karapace pull (fresh store)" "sh -c 'kp-init $W/pulled >/dev/null && KARAPACE_STORE=$W/pulled karapace pull oci://$REG/bench/env:1'" \
	-n "skopeo copy docker:// -> oci: + tar -xf" "sh -c 'skopeo copy -q --src-tls-verify=false docker://$REG/bench/env:1 oci:$W/o:1 && $extract_env'" >/dev/null
cat "$W/h3.md"
echo
echo "## 4. bytes uploaded: the base alone, then the environment on it (same repository)"
rm -rf "$KARAPACE_STORE/cache/oci/sources"
karapace --json push base "oci://$REG/bench/two:base"
karapace --json push deb "oci://$REG/bench/two:deb"

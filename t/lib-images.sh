# t/lib-images.sh: image fixtures: a busybox rootfs tarball, a simplestreams
# tree naming it, and a local HTTP server (t/lib-httpd.py) to serve them.

. "$TEST_DIRECTORY/lib-fixtures.sh"

# image_rootfs_tarball DIR FILE [tar compression flag]: packs DIR as root-owned
# FILE (default xz), the way image servers publish rootfs.tar.xz.
image_rootfs_tarball() {
	tar -C "$1" --numeric-owner --owner=0 --group=0 -c ${3:--J} -f "$2" .
}

# image_simplestreams ROOT TARBALL OS RELEASE ALIASES [BUILD]: adds TARBALL as the
# rootfs of OS/RELEASE (host architecture, variant default, build BUILD) to the
# simplestreams tree under ROOT, rewriting streams/v1/{index,images}.json.
image_simplestreams() {
	python3 - "$@" <<-'PY'
	import hashlib, json, os, platform, shutil, sys
	root, tarball, os_name, release, aliases = sys.argv[1:6]
	build = sys.argv[6] if len(sys.argv) > 6 else "20250101_00:00"
	arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
	rel = f"images/{os_name}/{release}/{arch}/default/{build}/rootfs.tar.xz"
	os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
	shutil.copyfile(tarball, os.path.join(root, rel))
	data = open(tarball, "rb").read()
	path = os.path.join(root, "streams/v1/images.json")
	os.makedirs(os.path.dirname(path), exist_ok=True)
	doc = json.load(open(path)) if os.path.exists(path) else {"format": "products:1.0", "datatype": "image-downloads", "products": {}}
	key = f"{os_name}:{release}:{arch}:default"
	prod = doc["products"].setdefault(key, {"os": os_name.capitalize(), "release": release, "arch": arch,
	    "variant": "default", "aliases": aliases, "versions": {}})
	prod["versions"][build] = {"items": {
	    "incus.tar.xz": {"ftype": "incus.tar.xz", "path": rel + ".meta", "sha256": "00" * 32, "size": 1},
	    "rootfs.tar.xz": {"ftype": "root.tar.xz", "path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}}
	json.dump(doc, open(path, "w"), indent=1)
	index = {"format": "index:1.0", "index": {"images": {"datatype": "image-downloads",
	    "path": "streams/v1/images.json", "format": "products:1.0", "products": sorted(doc["products"])}}}
	json.dump(index, open(os.path.join(root, "streams/v1/index.json"), "w"), indent=1)
	PY
}

# oci_setup: for the OCI registry tests: skips the whole script unless
# docker-registry, skopeo, busybox and python3 are here; points
# KARAPACE_STORE into the trash directory; sets OCI (t/lib-oci.py) and the
# SANDBOX prereq.
oci_setup() {
	if ! command -v docker-registry >/dev/null || ! command -v skopeo >/dev/null; then
		test_skip_all "needs docker-registry and skopeo (Debian packages; tools/install-deps.sh installs them)"
	fi
	if ! test_have_prereq BUSYBOX || ! test_have_prereq PYTHON3; then
		test_skip_all "needs busybox-static and python3"
	fi
	KARAPACE_STORE="$HOME/store"
	export KARAPACE_STORE
	OCI="python3 $TEST_DIRECTORY/lib-oci.py"
	test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true'
}

# test_daemon NAME CMD...: starts CMD (which writes its port to
# $TRASH_DIRECTORY/NAME.port) in the background and waits for the port; sets
# DAEMON_PORT. Every daemon started so is stopped when the test script ends.
test_daemon() {
	name=$1
	shift
	rm -f "$TRASH_DIRECTORY/$name.port"
	"$@" 2>"$TRASH_DIRECTORY/$name.err" &
	eval "${name}_PID=$!"
	TEST_DAEMONS="$TEST_DAEMONS $!"
	trap test_daemons_stop EXIT
	i=0
	while ! test -s "$TRASH_DIRECTORY/$name.port"; do
		i=$((i + 1))
		test $i -lt 100 || { echo "test_daemon: $name did not start" >&2; cat "$TRASH_DIRECTORY/$name.err" >&2; return 1; }
		sleep 0.05
	done
	DAEMON_PORT=$(cat "$TRASH_DIRECTORY/$name.port")
}

test_daemons_stop() {
	test -z "$TEST_DAEMONS" || kill $TEST_DAEMONS 2>/dev/null
	TEST_DAEMONS=
}

# image_httpd ROOT [CERT KEY]: serves ROOT on 127.0.0.1 (https with CERT and
# KEY); sets HTTPD (http://127.0.0.1:PORT, or https://) and HTTPD_LOG (one
# "METHOD PATH STATUS" line per request).
image_httpd() {
	HTTPD_LOG="$TRASH_DIRECTORY/httpd.log"
	: >"$HTTPD_LOG"
	test_daemon httpd python3 "$TEST_DIRECTORY/lib-httpd.py" "$1" "$TRASH_DIRECTORY/httpd.port" "$HTTPD_LOG" ${2:+"$2" "$3"} &&
	HTTPD="http${2:+s}://127.0.0.1:$DAEMON_PORT" &&
	export HTTPD HTTPD_LOG
}

image_httpd_stop() {
	test -z "$httpd_PID" || kill "$httpd_PID" 2>/dev/null
	httpd_PID=
}

# test_proxy: a logging proxy (t/lib-proxy.py) on 127.0.0.1; sets PROXY
# (http://127.0.0.1:PORT) and PROXY_LOG ("CONNECT host:port" or "METHOD URL
# STATUS" per request).
test_proxy() {
	PROXY_LOG="$TRASH_DIRECTORY/proxy.log"
	: >"$PROXY_LOG"
	test_daemon proxy python3 "$TEST_DIRECTORY/lib-proxy.py" "$TRASH_DIRECTORY/proxy.port" "$PROXY_LOG" &&
	PROXY="http://127.0.0.1:$DAEMON_PORT" &&
	export PROXY PROXY_LOG
}

test_lazy_prereq PYTHON3 'command -v python3'

# image_debian_tarball: prints the path of rootfs.tar.xz packed from the cached
# debootstrap minbase tree (built once, cached beside it). Prereq DEBOOTSTRAP.
image_debian_tarball() {
	src=$(fixture_debian_minbase) || return 1
	out="$KP_TEST_CACHE/debian-bookworm-minbase.rootfs.tar.xz"
	(
		flock 9 &&
		if ! test -f "$out" || test "$src/.complete" -nt "$out"; then
			tar -C "$src" --numeric-owner --exclude=./.complete -cf - . | xz -T2 -6 >"$out.tmp" &&
			mv "$out.tmp" "$out"
		fi
	) 9>"$KP_TEST_CACHE/.debian-tarball.lock" || return 1
	echo "$out"
}

# t/lib-fixtures.sh: root filesystems for tests, made by scripts and cached.

# fixture_busybox_rootfs DIR: a tiny static root filesystem (package busybox-static).
fixture_busybox_rootfs() {
	bb=$(command -v busybox) || { echo "busybox-static is not installed" >&2; return 1; }
	mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/proc" "$1/dev" "$1/sys" "$1/root" "$1/home" &&
	cp "$bb" "$1/bin/busybox" &&
	for applet in $("$bb" --list); do
		test "$applet" = busybox || ln -sf busybox "$1/bin/$applet" || return 1
	done &&
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$1/etc/passwd" &&
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group" &&
	chmod 1777 "$1/tmp"
}

# fixture_debian_minbase: prints the path of a Debian 12 minbase tree made with
# debootstrap, built once into $KP_TEST_CACHE and reused.
fixture_debian_minbase() {
	dir="$KP_TEST_CACHE/debian-bookworm-minbase"
	mkdir -p "$KP_TEST_CACHE" || return 1
	chmod 755 "$KP_TEST_CACHE"
	# One builder at a time: parallel test scripts wait for the first.
	(
		flock 9 &&
		if ! test -f "$dir/.complete"; then
			rm -rf "$dir.tmp" &&
			debootstrap --variant=minbase bookworm "$dir.tmp" >"$KP_TEST_CACHE/debootstrap.log" 2>&1 &&
			rm -rf "$dir" && mv "$dir.tmp" "$dir" && touch "$dir/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.debootstrap.lock" || {
		echo "debootstrap failed; see $KP_TEST_CACHE/debootstrap.log" >&2
		return 1
	}
	echo "$dir"
}

test_lazy_prereq BUSYBOX 'command -v busybox'
test_lazy_prereq DEBOOTSTRAP 'test "$(id -u)" = 0 && command -v debootstrap && fixture_debian_minbase >/dev/null'

# t/lib-fixtures.sh: root filesystems for tests, made by scripts and cached.

# fixture_busybox_rootfs DIR: a tiny static root filesystem (package busybox-static).
fixture_busybox_rootfs() {
	bb=$(command -v busybox) || { echo "busybox-static is not installed" >&2; return 1; }
	mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/proc" "$1/dev" "$1/sys" "$1/run" "$1/root" "$1/home" &&
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

# fixture_apt_repo: prints the path of a small local apt repository (a few real
# Debian packages with a dependency chain: jq needs libjq1 and libonig5), made
# once with apt-get download and dpkg-scanpackages and cached.
fixture_apt_repo() {
	repo="$KP_TEST_CACHE/apt-repo"
	mkdir -p "$KP_TEST_CACHE" || return 1
	(
		flock 9 &&
		if ! test -f "$repo/.complete"; then
			rm -rf "$repo.tmp" && mkdir -p "$repo.tmp" &&
			# Stale package lists name files the mirror no longer has: refresh once.
			{ (cd "$repo.tmp" && apt-get download jq libjq1 libonig5 hello) >"$KP_TEST_CACHE/apt-download.log" 2>&1 ||
			  { apt-get update -q >>"$KP_TEST_CACHE/apt-download.log" 2>&1 &&
			    (cd "$repo.tmp" && apt-get download jq libjq1 libonig5 hello) >>"$KP_TEST_CACHE/apt-download.log" 2>&1; }; } &&
			(cd "$repo.tmp" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null) &&
			rm -rf "$repo" && mv "$repo.tmp" "$repo" && touch "$repo/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.apt-repo.lock" || {
		echo "could not make the apt repository; see $KP_TEST_CACHE/apt-download.log" >&2
		return 1
	}
	chmod -R a+rX "$repo"
	echo "$repo"
}

# fixture_debian_image: prints the path of a Debian minbase tree whose only apt
# source is the local repository, at /srv/kp-repo inside: package installs are
# hermetic.
fixture_debian_image() {
	img="$KP_TEST_CACHE/debian-image"
	base=$(fixture_debian_minbase) && repo=$(fixture_apt_repo) || return 1
	(
		flock 9 &&
		if ! test -f "$img/.complete"; then
			rm -rf "$img.tmp" && cp -a "$base" "$img.tmp" && rm -f "$img.tmp/.complete" &&
			mkdir -p "$img.tmp/srv/kp-repo" && cp "$repo"/*.deb "$repo/Packages" "$img.tmp/srv/kp-repo/" &&
			echo "deb [trusted=yes] file:/srv/kp-repo ./" >"$img.tmp/etc/apt/sources.list" &&
			rm -rf "$img.tmp/etc/apt/sources.list.d"/* "$img.tmp/var/lib/apt/lists"/* &&
			rm -rf "$img" && mv "$img.tmp" "$img" && touch "$img/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.debian-image.lock" || return 1
	echo "$img"
}

# t/lib-pacman.sh: an Arch-style root that pacman runs in, and small pacman
# packages in repositories served on 127.0.0.1, all made by the tests and
# cached in $KP_TEST_CACHE (t/lib-fixtures.sh caches the Debian minbase so).
#
# The root is Debian's minbase (debootstrap) with Debian's pacman 6
# (pacman-package-manager) installed and apt purged, so libkp::pkg::detect
# finds pacman and nothing else. Its pacman database starts empty: every
# package in it comes from the test's repositories.
#
# Packages (makepkg from the PKGBUILDs below, run as nobody: makepkg refuses
# root), every one arch "any":
#   kp-base 1.0-1     installed in the root itself (pacman -U), as an Arch
#                     image comes with its base packages
#   kp-greet 1.0-1    /usr/share/kp-greet/greeting; the dependency of kp-hello
#   kp-hello 1.0-1    /usr/bin/kp-hello, depends on kp-greet
#   kp-hello 2.0-1    the same, newer
#   kp-note 1.0-1     a post_install scriptlet writes /var/lib/kp-note/stamp
#   kp-broken 1.0-1   its pre_install scriptlet fails
#   kp-orphan 1.0-1   depends on kp-missing, which no repository has
# Repository directories under $KP_TEST_CACHE/pacman-repo (repo-add):
#   kp-v1/            [kp] with kp-hello 1.0-1 and the rest
#   kp-v2/            [kp] with kp-hello 2.0-1 and the rest
#   archive/          [kp-archive] with kp-hello 1.0-1 only (an archive of
#                     older builds, as the Arch Linux Archive is)
#   archive-empty/    [kp-archive] with nothing

. "$TEST_DIRECTORY/lib-images.sh"
. "$TEST_DIRECTORY/lib-env.sh"

# pacman_pkgbuild DIR NAME VERSION DEPENDS BODY [INSTALL]: writes DIR/PKGBUILD
# for package NAME VERSION-1 whose package() runs BODY (with $pkgdir), and
# DIR/NAME.install holding INSTALL when given.
pacman_pkgbuild() {
	mkdir -p "$1" &&
	{
		echo "pkgname=$2"
		echo "pkgver=$3"
		echo "pkgrel=1"
		echo "pkgdesc='Karapace test package $2'"
		echo "arch=(any)"
		echo "license=(MIT)"
		echo "depends=($4)"
		test -z "$6" || echo "install=$2.install"
		echo "package() {"
		echo "$5"
		echo "}"
	} >"$1/PKGBUILD" &&
	if test -n "$6"; then printf '%s\n' "$6" >"$1/$2.install"; fi
}

# pacman_build_packages DIR: writes the PKGBUILDs under DIR/src and builds them
# into DIR/pkgs.
pacman_build_packages() {
	src=$1/src
	greet='mkdir -p "$pkgdir/usr/share/kp-greet" && echo "greetings from kp-greet 1.0" >"$pkgdir/usr/share/kp-greet/greeting"'
	hello='install -Dm755 "$startdir/kp-hello" "$pkgdir/usr/bin/kp-hello"'
	pacman_pkgbuild "$src/base" kp-base 1.0 "" 'mkdir -p "$pkgdir/usr/share/kp-base" && echo base >"$pkgdir/usr/share/kp-base/marker"' &&
	pacman_pkgbuild "$src/greet" kp-greet 1.0 "" "$greet" &&
	for v in 1 2; do
		pacman_pkgbuild "$src/hello$v" kp-hello $v.0 kp-greet "$hello" &&
		printf '#!/bin/sh\necho "kp-hello %s: $(cat /usr/share/kp-greet/greeting)"\n' $v.0 >"$src/hello$v/kp-hello" || return 1
	done &&
	pacman_pkgbuild "$src/note" kp-note 1.0 "" 'mkdir -p "$pkgdir/usr/share/kp-note" && echo note >"$pkgdir/usr/share/kp-note/README"' \
		'post_install() { mkdir -p /var/lib/kp-note && echo "noted $1" >/var/lib/kp-note/stamp; }' &&
	pacman_pkgbuild "$src/broken" kp-broken 1.0 "" 'mkdir -p "$pkgdir/usr/share/kp-broken" && echo x >"$pkgdir/usr/share/kp-broken/x"' \
		'pre_install() { echo "kp-broken: this package refuses to install" >&2; return 1; }' &&
	pacman_pkgbuild "$src/orphan" kp-orphan 1.0 kp-missing 'mkdir -p "$pkgdir/usr/share/kp-orphan" && echo x >"$pkgdir/usr/share/kp-orphan/x"' &&
	mkdir -p "$1/pkgs" &&
	chown -R nobody:nogroup "$1" &&
	for d in "$src"/*; do
		(cd "$d" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
			env HOME="$d" PKGDEST="$1/pkgs" SOURCE_DATE_EPOCH=1700000000 \
			makepkg --nodeps --noconfirm --noprogressbar) || return 1
	done
}

# pacman_repo DIR NAME PACKAGE...: a repository NAME in DIR (repo-add), with
# the package files beside its database, as a mirror serves them.
pacman_repo() {
	dir=$1 name=$2
	shift 2
	mkdir -p "$dir" &&
	if test $# = 0; then
		# An empty repository: a database with no entries.
		tar -czf "$dir/$name.db.tar.gz" -T /dev/null &&
		ln -s "$name.db.tar.gz" "$dir/$name.db"
	else
		cp "$@" "$dir/" &&
		(cd "$dir" && repo-add -q "$name.db.tar.gz" $(for p in "$@"; do basename "$p"; done))
	fi
}

# fixture_pacman_repos: prints the directory holding the repositories above,
# made once and cached.
fixture_pacman_repos() {
	repos="$KP_TEST_CACHE/pacman-repo"
	mkdir -p "$KP_TEST_CACHE" || return 1
	(
		flock 9 &&
		if ! test -f "$repos/.complete"; then
			rm -rf "$repos.tmp" && mkdir -p "$repos.tmp" &&
			pacman_build_packages "$repos.tmp" >"$KP_TEST_CACHE/pacman-repo.log" 2>&1 &&
			p=$repos.tmp/pkgs &&
			common="$p/kp-greet-1.0-1-any.pkg.tar.gz $p/kp-note-1.0-1-any.pkg.tar.gz $p/kp-broken-1.0-1-any.pkg.tar.gz $p/kp-orphan-1.0-1-any.pkg.tar.gz" &&
			pacman_repo "$repos.tmp/kp-v1" kp $common "$p/kp-hello-1.0-1-any.pkg.tar.gz" &&
			pacman_repo "$repos.tmp/kp-v2" kp $common "$p/kp-hello-2.0-1-any.pkg.tar.gz" &&
			pacman_repo "$repos.tmp/archive" kp-archive "$p/kp-hello-1.0-1-any.pkg.tar.gz" &&
			pacman_repo "$repos.tmp/archive-empty" kp-archive &&
			rm -rf "$repos.tmp/src" && chown -R 0:0 "$repos.tmp" &&
			rm -rf "$repos" && mv "$repos.tmp" "$repos" && touch "$repos/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.pacman-repo.lock" || {
		echo "could not make the pacman packages; see $KP_TEST_CACHE/pacman-repo.log" >&2
		return 1
	}
	chmod -R a+rX "$repos"
	echo "$repos"
}

# fixture_pacman_root: prints the path of the Arch-style root (above), made
# once from the cached minbase and cached. Its /etc/pacman.conf names no
# repository: pacman_image writes one. /etc/mtab is the symlink Arch's
# filesystem package ships (pacman's CheckSpace reads it).
fixture_pacman_root() {
	root="$KP_TEST_CACHE/pacman-root"
	base=$(fixture_debian_minbase) && repos=$(fixture_pacman_repos) || return 1
	(
		flock 9 &&
		if ! test -f "$root/.complete"; then
			rm -rf "$root.tmp" && cp -a "$base" "$root.tmp" && rm -f "$root.tmp/.complete" &&
			cp /etc/resolv.conf "$root.tmp/etc/resolv.conf" &&
			chroot "$root.tmp" env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q --no-install-recommends pacman-package-manager &&
			chroot "$root.tmp" dpkg --purge apt &&
			rm -rf "$root.tmp/var/lib/apt" "$root.tmp/var/cache/apt" "$root.tmp/etc/apt" \
				"$root.tmp/var/log/apt" "$root.tmp/usr/share/doc" "$root.tmp/usr/share/man" \
				"$root.tmp/usr/share/locale" "$root.tmp/usr/share/info" &&
			: >"$root.tmp/etc/resolv.conf" &&
			mkdir -p "$root.tmp/var/lib/pacman/local" "$root.tmp/var/lib/pacman/sync" \
				"$root.tmp/var/cache/pacman/pkg" &&
			ln -sfn ../proc/self/mounts "$root.tmp/etc/mtab" &&
			# A chroot shows the host's mounts: no CheckSpace for this one install.
			grep -v "^CheckSpace" "$root.tmp/etc/pacman.conf" >"$root.tmp/tmp/pacman.conf" &&
			cp "$repos/pkgs/kp-base-1.0-1-any.pkg.tar.gz" "$root.tmp/tmp/" &&
			chroot "$root.tmp" pacman --config /tmp/pacman.conf --noconfirm --noprogressbar \
				-U /tmp/kp-base-1.0-1-any.pkg.tar.gz &&
			rm -rf "$root.tmp/tmp/"* "$root.tmp/var/log/pacman.log" "$root.tmp/var/cache/pacman/pkg/"* &&
			! test -e "$root.tmp/usr/bin/apt-get" &&
			rm -rf "$root" && mv "$root.tmp" "$root" && touch "$root/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.pacman-root.lock" >"$KP_TEST_CACHE/pacman-root.log" 2>&1 || {
		echo "could not make the pacman root; see $KP_TEST_CACHE/pacman-root.log" >&2
		return 1
	}
	echo "$root"
}

# pacman_conf URL: a pacman.conf whose repositories [kp] and [kp-archive] are
# URL/kp and URL/kp-archive, unsigned (SigLevel Never for them only).
pacman_conf() {
	cat <<-EOF
	[options]
	HoldPkg = pacman glibc
	Architecture = auto
	CheckSpace
	SigLevel = Required DatabaseOptional
	LocalFileSigLevel = Optional

	# The test's repositories on 127.0.0.1 are unsigned.
	[kp]
	SigLevel = Never
	Server = $1/kp

	[kp-archive]
	SigLevel = Never
	Server = $1/kp-archive
	EOF
}

# pacman_image DIR URL: DIR becomes a copy of the root (hard links) whose
# pacman.conf names the repositories at URL; DIR.tar is it as a tarball
# (readable by the rootless test users).
pacman_image() {
	root=$(fixture_pacman_root) || return 1
	cp -al "$root" "$1" && rm -f "$1/.complete" &&
	rm "$1/etc/pacman.conf" && pacman_conf "$2" >"$1/etc/pacman.conf" &&
	tar -C "$1" --numeric-owner -cf "$1.tar" .
}

# pacman_serve STATE: points the served repositories at a state of the
# fixture: v1 (kp-hello 1.0, empty archive), v2 (kp-hello 2.0, 1.0 in the
# archive) or v2-only (kp-hello 2.0, empty archive). The server serves
# $HOME/serve (pacman_setup).
pacman_serve() {
	case $1 in
	v1) kp=kp-v1 ar=archive-empty ;;
	v2) kp=kp-v2 ar=archive ;;
	v2-only) kp=kp-v2 ar=archive-empty ;;
	*) echo "pacman_serve: unknown state $1" >&2; return 1 ;;
	esac
	rm -f "$HOME/serve/kp" "$HOME/serve/kp-archive" &&
	ln -s "$PACMAN_REPOS/$kp" "$HOME/serve/kp" &&
	ln -s "$PACMAN_REPOS/$ar" "$HOME/serve/kp-archive"
}

test_lazy_prereq PACMAN '
	test "$(id -u)" = 0 && command -v debootstrap && command -v makepkg &&
	command -v repo-add && command -v bsdtar && command -v fakeroot &&
	fixture_pacman_repos >/dev/null && fixture_pacman_root >/dev/null &&
	unshare --user --map-root-user --mount true
'

# pacman_setup: skips the whole script unless PACMAN holds; otherwise points
# KARAPACE_STORE into the trash directory, serves $HOME/serve on 127.0.0.1
# (state v1) and makes the image: $HOME/img and $HOME/img.tar.
pacman_setup() {
	if ! test_have_prereq PACMAN || ! test_have_prereq PYTHON3; then
		test_skip_all "needs root, debootstrap, makepkg, repo-add, bsdtar (libarchive-tools), python3 and user namespaces (prereq PACMAN)"
	fi
	KARAPACE_STORE="$HOME/store"
	export KARAPACE_STORE
	PACMAN_REPOS=$(fixture_pacman_repos) &&
	mkdir -p "$HOME/serve" &&
	pacman_serve v1 &&
	image_httpd "$HOME/serve" &&
	pacman_image "$HOME/img" "$HTTPD" || test_skip_all "could not make the pacman image"
}

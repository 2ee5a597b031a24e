# t/lib-rpm.sh: RPM fixtures for the dnf and zypper tests (t3600, t3610) and
# bench/packages.sh: tiny packages built with rpmbuild from specs written here,
# a repository made with createrepo_c, and root filesystems where dnf or zypper
# is the only package manager. Made once and cached in $KP_TEST_CACHE like the
# Debian minbase tree (t/lib-fixtures.sh); the directory names carry a version
# so that a change here makes new ones.

. "$TEST_DIRECTORY/lib-images.sh"

RPM_FIXTURE_VERSION=5

# rpm_spec NAME VERSION EPOCH HEADER BODY: the spec of a noarch package
# shipping /usr/bin/NAME, a shell script printing "NAME VERSION". HEADER goes
# among the tags (Requires, Provides), BODY after %files (scriptlets).
rpm_spec() {
	cat <<-EOF
	Name: $1
	Version: $2
	Release: 1
	${3:+Epoch: $3}
	Summary: Karapace test package $1
	License: MIT
	BuildArch: noarch
	$4
	%description
	A package for Karapace's tests.
	%install
	mkdir -p %{buildroot}/usr/bin
	printf '#!/bin/sh\necho "$1 $2"\n' >%{buildroot}/usr/bin/$1
	chmod 755 %{buildroot}/usr/bin/$1
	%files
	/usr/bin/$1
	$5
	EOF
}

# rpm_write_specs DIR: the fixture's packages.
#   kp-base       provides /bin/sh; recorded in the roots' rpm database only
#                 (the Debian root's files are no package's, and the other
#                 packages' scripts need /bin/sh)
#   kp-lib        a dependency of kp-hello
#   kp-hello      1.0 and 1.1: two versions of one package
#   kp-ep         epoch 3: EPOCH:VERSION-RELEASE in the lock
#   kp-post       a %post scriptlet that leaves /var/lib/kp-post/ran
#   kp-tool       installed at run time, inside an environment
#   kp-badpre     a %pre scriptlet that fails: rpm refuses the package
#   kp-unresolved needs kp-nowhere, which no package provides
rpm_write_specs() {
	mkdir -p "$1" &&
	rpm_spec kp-base 1.0 "" "Provides: /bin/sh
AutoReqProv: no" "" >"$1/kp-base.spec" &&
	rpm_spec kp-lib 1.0 "" "" "" >"$1/kp-lib.spec" &&
	rpm_spec kp-hello 1.0 "" "Requires: kp-lib" "" >"$1/kp-hello-1.0.spec" &&
	rpm_spec kp-hello 1.1 "" "Requires: kp-lib" "" >"$1/kp-hello-1.1.spec" &&
	rpm_spec kp-ep 2.0 3 "" "" >"$1/kp-ep.spec" &&
	rpm_spec kp-post 1.0 "" "" "%post
mkdir -p /var/lib/kp-post && echo ran >/var/lib/kp-post/ran" >"$1/kp-post.spec" &&
	rpm_spec kp-tool 1.0 "" "" "" >"$1/kp-tool.spec" &&
	rpm_spec kp-badpre 1.0 "" "" "%pre
echo 'kp-badpre: this package refuses to install' >&2
exit 1" >"$1/kp-badpre.spec" &&
	rpm_spec kp-unresolved 1.0 "" "Requires: kp-nowhere" "" >"$1/kp-unresolved.spec"
}

# fixture_rpm_packages: prints the directory of the fixture's .rpm files,
# built once.
fixture_rpm_packages() {
	out="$KP_TEST_CACHE/rpm-packages-v$RPM_FIXTURE_VERSION"
	mkdir -p "$KP_TEST_CACHE" || return 1
	(
		flock 9 &&
		if ! test -f "$out/.complete"; then
			rm -rf "$out.tmp" && mkdir -p "$out.tmp" &&
			rpm_write_specs "$out.tmp/specs" &&
			for s in "$out.tmp"/specs/*.spec; do
				rpmbuild -bb --define "_topdir $out.tmp/top" --define "_rpmdir $out.tmp/rpms" \
					--define "_build_id_links none" "$s" >>"$out.tmp/rpmbuild.log" 2>&1 || return 1
			done &&
			mv "$out.tmp"/rpms/noarch/*.rpm "$out.tmp/" && rm -rf "$out.tmp/top" "$out.tmp/rpms" &&
			rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.rpm-packages.lock" || {
		echo "rpmbuild failed; see $out.tmp/rpmbuild.log" >&2
		return 1
	}
	chmod -R a+rX "$out"
	echo "$out"
}

# rpm_repo DIR PACKAGE-FILE...: a repository of those packages (file names in
# the fixture's directory, globs allowed) made with createrepo_c in DIR; again
# to change what it holds.
rpm_repo() {
	dir=$1 pkgs=$(fixture_rpm_packages) || return 1
	shift
	mkdir -p "$dir" && rm -f "$dir"/*.rpm && rm -rf "$dir/repodata" &&
	for p in "$@"; do
		cp "$pkgs"/$p "$dir/" || return 1
	done &&
	createrepo_c -q "$dir" && chmod -R a+rX "$dir"
}

# fixture_rpm_root MANAGER: prints the path of a Debian 12 minbase tree with rpm
# and MANAGER (dnf or zypper) installed and apt removed, so that detection
# finds MANAGER (perl, which only rpm's helper scripts use, goes too: every
# test keeps several copies of the tree); rpm keeps its database in /var/lib/rpm, as on Fedora and
# openSUSE (Debian's rpm defaults to ~/.rpmdb), which holds kp-base. Python's
# modules are byte-compiled as hash-based .pyc that Python never checks against
# the source's mtime: layers keep no timestamps, so in a checkout every
# timestamp-based .pyc a distribution ships is stale, and dnf (Python) would
# compile its modules again on each run, into the build's layer. No
# repository is configured: rpm_image adds one.
fixture_rpm_root() {
	m=$1
	root="$KP_TEST_CACHE/rpm-root-$m-v$RPM_FIXTURE_VERSION"
	base=$(fixture_debian_minbase) && pkgs=$(fixture_rpm_packages) || return 1
	log="$KP_TEST_CACHE/rpm-root-$m.log"
	(
		flock 9 &&
		if ! test -f "$root/.complete"; then
			rm -rf "$root.tmp" && cp -a "$base" "$root.tmp" && rm -f "$root.tmp/.complete" &&
			cp /etc/resolv.conf "$root.tmp/etc/resolv.conf" &&
			chroot "$root.tmp" apt-get update -q >"$log" 2>&1 &&
			chroot "$root.tmp" env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q --no-install-recommends rpm "$m" >>"$log" 2>&1 &&
			chroot "$root.tmp" dpkg --purge --force-depends apt libapt-pkg6.0 \
				perl perl-modules-5.36 libperl5.36 >>"$log" 2>&1 &&
			rm -rf "$root.tmp"/var/lib/apt "$root.tmp"/var/cache/apt "$root.tmp"/etc/apt \
				"$root.tmp"/usr/share/doc "$root.tmp"/usr/share/man "$root.tmp"/usr/share/info \
				"$root.tmp"/usr/share/locale "$root.tmp"/var/log/* &&
			: >"$root.tmp/etc/resolv.conf" &&
			mkdir -p "$root.tmp/etc/rpm" &&
			echo "%_dbpath /var/lib/rpm" >"$root.tmp/etc/rpm/macros.dbpath" &&
			chroot "$root.tmp" rpm --initdb &&
			{ ! test -e "$root.tmp/usr/bin/python3" ||
			  chroot "$root.tmp" python3 -m compileall -q -f -j 2 --invalidation-mode unchecked-hash /usr/lib/python3.11 /usr/lib/python3/dist-packages >>"$log" 2>&1; } &&
			cp "$pkgs"/kp-base-*.rpm "$root.tmp/tmp/kp-base.rpm" &&
			chroot "$root.tmp" rpm -i --justdb --nodeps /tmp/kp-base.rpm >>"$log" 2>&1 &&
			rm "$root.tmp/tmp/kp-base.rpm" &&
			rm -rf "$root" && mv "$root.tmp" "$root" && touch "$root/.complete"
		fi
	) 9>"$KP_TEST_CACHE/.rpm-root-$m.lock" || {
		echo "could not make the $m root; see $log" >&2
		return 1
	}
	echo "$root"
}

# rpm_repo_path MANAGER: where MANAGER reads a repository definition, relative
# to the root.
rpm_repo_path() {
	case $1 in
	dnf) echo etc/yum.repos.d/kp.repo ;;
	zypper) echo etc/zypp/repos.d/kp.repo ;;
	esac
}

# rpm_image MANAGER URL DIR: DIR becomes the fixture's MANAGER root (hard
# links) with one repository, URL, configured.
rpm_image() {
	root=$(fixture_rpm_root "$1") || return 1
	rm -rf "$3" && cp -al "$root" "$3" && rm -f "$3/.complete" &&
	f="$3/$(rpm_repo_path "$1")" &&
	mkdir -p "$(dirname "$f")" &&
	printf '[kp]\nname=kp\nbaseurl=%s\nenabled=1\ngpgcheck=0\n' "$2" >"$f"
}

# rpm_tools_missing MANAGER: prints what the fixture for MANAGER needs and this
# machine lacks (nothing when all is here).
rpm_tools_missing() {
	missing=
	for t in rpm rpmbuild createrepo_c debootstrap chroot python3 "$1"; do
		command -v $t >/dev/null || missing="$missing $t"
	done
	echo "${missing# }"
}

# rpm_setup MANAGER: skips the whole script unless root, user namespaces and
# the tools are here and the fixtures can be made; sets KARAPACE_STORE into
# the trash directory.
rpm_setup() {
	test "$(id -u)" = 0 || test_skip_all "needs root to make the $1 root (debootstrap, chroot)"
	missing=$(rpm_tools_missing "$1")
	test -z "$missing" || test_skip_all "needs $missing (Debian packages rpm, createrepo-c, debootstrap, python3, dnf, zypper; tools/install-deps.sh)"
	test_have_prereq USERNS || test_skip_all "user namespaces are not available"
	test_have_prereq DEBOOTSTRAP || test_skip_all "debootstrap could not make the Debian minbase tree"
	fixture_rpm_root "$1" >/dev/null || test_skip_all "could not make the $1 root (apt-get install $1 in it; see $KP_TEST_CACHE/rpm-root-$1.log)"
	KARAPACE_STORE="$HOME/store"
	export KARAPACE_STORE
}

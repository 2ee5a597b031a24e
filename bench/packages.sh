#!/bin/sh
# Package installs (issue 20's numbers), per package manager, side by side in
# one run: `karapace build` of a manifest asking for three small packages (the
# image already imported, a new environment each run) vs the same manager
# installing the same packages directly, in a chroot of the same root over an
# overlay (so every run starts from the same tree). Goal: at most 1.1x.
#
# The package sources are local and served on 127.0.0.1 (t/lib-httpd.py), as
# in the tests: apt from the Debian fixture's repository (t/lib-fixtures.sh),
# dnf and zypper from the RPM fixtures (t/lib-rpm.sh), pacman from the Arch
# fixture (t/lib-pacman.sh). Each manager is one `bench_manager` call at the
# end.
#
# Needs root (debootstrap, chroot, overlay mounts); fixtures are cached in
# $KP_TEST_CACHE.
# Usage: sh bench/packages.sh [RUNS]   (default 5 runs of each; builds the
#        release binaries first; KP_BENCH_PROFILE=debug uses target/debug)
#        STRACE=1 also prints the system calls of one run of each (strace -c -f).
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PROFILE=${KP_BENCH_PROFILE:-release}
test "$PROFILE" = debug || cargo build --release --quiet
PATH="$PWD/target/$PROFILE:$PATH"
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE
TEST_DIRECTORY="$PWD/t"
test_lazy_prereq() { :; }
. t/lib-rpm.sh
. t/lib-pacman.sh
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

W=$(mktemp -d /var/tmp/kp-bench-packages.XXXXXX)
TRASH_DIRECTORY=$W
DAEMONS=
cleanup() {
	test -z "$DAEMONS" || kill $DAEMONS 2>/dev/null || true
	umount "$W/m" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

# serve DIR: serves DIR on 127.0.0.1; sets URL.
serve() {
	name=httpd$(echo "$DAEMONS" | wc -w)
	python3 t/lib-httpd.py "$1" "$W/$name.port" /dev/null 2>/dev/null &
	DAEMONS="$DAEMONS $!"
	while ! test -s "$W/$name.port"; do sleep 0.05; done
	URL="http://127.0.0.1:$(cat "$W/$name.port")"
}

now() { date +%s.%N; }

# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# chroot_run ROOT CMD: CMD (a shell command line) in a chroot of ROOT under a
# fresh overlay, as the build runs the manager over the image, with /proc (without
# it apt, dpkg and zypper close every possible descriptor one by one) and the
# host's /etc/resolv.conf and /etc/hosts bound over the image's as the build's
# host network binds them (a lookup the manager makes costs the same).
chroot_run() {
	rm -rf "$W/u" "$W/w" && mkdir -p "$W/u" "$W/w" "$W/m" &&
	${STRACE_OUT:+strace -c -f -o "$STRACE_OUT"} unshare -m sh -c '
		mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" &&
		mount -t proc proc "$4/proc" &&
		for f in /etc/resolv.conf /etc/hosts; do
			test ! -f "$4$f" || mount --bind -o ro "$f" "$4$f" || exit
		done &&
		chroot "$4" sh -c "$5"' \
		- "$1" "$W/u" "$W/w" "$W/m" "$2"
}

# bench_manager NAME ROOT PACKAGES CMD: ROOT is a root filesystem whose package
# manager is NAME with its source configured; PACKAGES the three names; CMD
# what the manager runs in the chroot (the commands the build runs, as
# libkp/src/pkg makes them).
bench_manager() {
	name=$1 root=$2 pkgs=$3 cmd=$4
	# A store of its own, removed at the end: each holds its image twice.
	export KARAPACE_STORE="$W/store-$name"
	karapace init >/dev/null
	karapace image import "$root" "bench-$name" >/dev/null
	mkdir -p "$W/p-$name"
	{
		printf 'manifest_version = 1\n[base]\nimage = "bench-%s"\n[system]\npackages = [' "$name"
		sep=
		for p in $pkgs; do printf '%s"%s"' "$sep" "$p"; sep=", "; done
		printf ']\n'
	} >"$W/p-$name/karapace.toml"
	# Once each first: the image's checkout is cached, the commands work.
	karapace build "$W/p-$name" --name "b-$name" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; return 1; }
	chroot_run "$root" "$cmd" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; return 1; }
	: >"$W/tb" && : >"$W/tc"
	i=0
	while [ $i -lt "$RUNS" ]; do
		karapace destroy "b-$name" >/dev/null && rm -f "$W/p-$name/karapace.lock"
		t0=$(now) && karapace build "$W/p-$name" --name "b-$name" >/dev/null 2>&1 && t1=$(now)
		echo "$t0 $t1" | awk '{print $2 - $1}' >>"$W/tb"
		t0=$(now) && chroot_run "$root" "$cmd" >/dev/null 2>&1 && t1=$(now)
		echo "$t0 $t1" | awk '{print $2 - $1}' >>"$W/tc"
		i=$((i + 1))
	done
	b=$(median <"$W/tb") c=$(median <"$W/tc")
	printf '| %s | %s | %.3f | %.3f | %.2fx |\n' "$name" "$pkgs" "$b" "$c" "$(echo "$b $c" | awk '{print $1 / $2}')"
	if test -n "${STRACE:-}"; then
		karapace destroy "b-$name" >/dev/null && rm -f "$W/p-$name/karapace.lock"
		strace -c -f -o "$W/sb" karapace build "$W/p-$name" --name "b-$name" >/dev/null 2>&1
		STRACE_OUT="$W/sc" chroot_run "$root" "$cmd" >/dev/null 2>&1
		echo "| $name: system calls (strace -c -f) | | $(syscalls "$W/sb") | $(syscalls "$W/sc") | |"
	fi
	rm -rf "$KARAPACE_STORE" "$root"
}

# syscalls FILE: the total of strace -c's table in FILE.
syscalls() { awk '$NF == "total" {print $4}' "$1"; }

APT_PKGS="hello jq libonig5"
RPM_PKGS="kp-hello kp-post kp-ep"
# kp-hello pulls in kp-greet; kp-note runs a post_install scriptlet.
PACMAN_PKGS="kp-hello kp-note"

echo "## machine: $(nproc) cores, $(uname -r); $PROFILE binaries; median of $RUNS runs, seconds"
echo
echo "| manager | packages | karapace build | chroot | ratio |"
echo "|---|---|---|---|---|"

# apt: the Debian minbase fixture, its repository over http.
serve "$(fixture_apt_repo)"
cp -al "$(fixture_debian_image)" "$W/root-apt" && rm -f "$W/root-apt/.complete" &&
	rm "$W/root-apt/etc/apt/sources.list" &&
	echo "deb [trusted=yes] $URL/ ./" >"$W/root-apt/etc/apt/sources.list"
bench_manager apt "$W/root-apt" "$APT_PKGS" \
	"export DEBIAN_FRONTEND=noninteractive; apt-get -o Dpkg::Use-Pty=0 -q update && apt-get -o Dpkg::Use-Pty=0 -o APT::Cmd::Pattern-Only=true -q -y --no-install-recommends install -- $APT_PKGS"

# dnf and zypper: the RPM fixtures, one repository for both.
rpm_repo "$W/rpm-repo" "kp-lib-*" "kp-hello-1.0-*" "kp-post-*" "kp-ep-*"
serve "$W/rpm-repo"
rpm_image dnf "$URL/" "$W/root-dnf"
bench_manager dnf "$W/root-dnf" "$RPM_PKGS" \
	"dnf -y --setopt=install_weak_deps=False --setopt=tsflags=nodocs install -- $RPM_PKGS"
rpm_image zypper "$URL/" "$W/root-zypper"
bench_manager zypper "$W/root-zypper" "$RPM_PKGS" \
	"zypper --non-interactive --gpg-auto-import-keys refresh && zypper --non-interactive install --no-recommends -- $RPM_PKGS"

# pacman: the Arch fixture, its repositories ([kp] at state v1, an empty
# [kp-archive]) over http. The chroot drops CheckSpace from pacman.conf first:
# a chroot shows the host's mounts, which pacman cannot match to its root
# (the build's sandbox shows the environment's own, so the build keeps it).
PACMAN_REPOS=$(fixture_pacman_repos)
mkdir -p "$W/pacman-serve"
ln -s "$PACMAN_REPOS/kp-v1" "$W/pacman-serve/kp"
ln -s "$PACMAN_REPOS/archive-empty" "$W/pacman-serve/kp-archive"
serve "$W/pacman-serve"
pacman_image "$W/root-pacman" "$URL" && rm -f "$W/root-pacman.tar"
bench_manager pacman "$W/root-pacman" "$PACMAN_PKGS" \
	"sed -i /^CheckSpace/d /etc/pacman.conf && pacman --noconfirm --needed --noprogressbar -Sy -- $PACMAN_PKGS"

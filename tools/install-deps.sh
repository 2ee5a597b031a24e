#!/bin/sh
# Installs what building and testing Karapace needs on Debian 12. Run as root (or
# with sudo); as another user it only checks and says what is missing.
set -eu

# Runtime: user namespaces and overlays need these helpers.
RUNTIME="uidmap fuse-overlayfs"
# Tests: fixtures (busybox-static, debootstrap), xattr tools, checksums, TAP runner,
# an OCI registry and the tool that seeds it (t3500), a private session bus and
# its clients (t8100), the desktop entry validator (t8200), tmux for the TUI
# (t8000), runc for the OCI runtime backend (t4100, t5120) and podman to run a
# pushed image (t3510), rpm, dnf, zypper and createrepo-c for the RPM fixtures
# (t3600, t3610), pacman, makepkg and bsdtar for the Arch fixture (t3620).
TEST="attr b3sum busybox-static debootstrap desktop-file-utils dpkg-dev openssl python3 perl procps xz-utils zstd util-linux docker-registry skopeo dbus-daemon dbus-bin libglib2.0-bin tmux runc podman rpm dnf zypper createrepo-c pacman-package-manager makepkg libarchive-tools"
# Build: liblzma links the system liblzma when pkg-config finds it.
BUILD="liblzma-dev pkg-config"
# Benchmarks compare with these peers.
BENCH="hyperfine ostree bubblewrap time bc"

missing=
for p in $BUILD $RUNTIME $TEST $BENCH; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done

if test -n "$missing"; then
	if test "$(id -u)" = 0; then
		echo "install-deps: installing:$missing"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
	else
		echo "install-deps: missing Debian packages:$missing" >&2
		echo "install-deps: run as root: apt-get install$missing" >&2
		exit 1
	fi
fi

if ! command -v cargo >/dev/null 2>&1; then
	echo "install-deps: cargo not found; Karapace needs Rust 1.87 or newer (rustup)" >&2
	exit 1
fi

# Supply-chain checks (tools/test.sh): cargo-deny, built from crates.io once.
if ! cargo deny --version >/dev/null 2>&1; then
	echo "install-deps: installing cargo-deny (cargo install --locked cargo-deny)"
	cargo install --locked cargo-deny
fi

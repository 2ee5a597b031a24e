#!/bin/sh
# The whole test suite: formatting and lints, unit tests, and the shell suite
# through the real binaries (as root, it also runs the rootless cases as an
# unprivileged user). This is the README's test command and what CI runs.
set -eu
cd "$(dirname "$0")/.."

sh tools/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== import cycles (tools/check-cycles, docs/architecture.md)"
python3 tools/check-cycles
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo deny check bans licenses sources"
cargo deny check --hide-inclusion-graph bans licenses sources
# The RustSec database comes from github.com; where it cannot be fetched the
# check is skipped, loudly, rather than passed.
if cargo deny -L error fetch db >/dev/null 2>&1; then
	echo "== cargo deny check advisories"
	cargo deny --offline check --hide-inclusion-graph advisories
else
	echo "== cargo deny check advisories: SKIPPED: the RustSec advisory database" \
		"(https://github.com/RustSec/advisory-db) cannot be fetched from this machine;" \
		"run \`cargo deny check advisories\` where it can"
fi
echo "== cargo build"
cargo build --workspace --quiet
echo "== cargo test"
cargo test --workspace --quiet 2>&1
echo "== shell suite (prove)"
cd t
rm -rf test-results
prove -j2 --timer t[0-9]*.sh

#!/bin/sh
# D-Bus service benchmarks (issue 18's Numbers), on a private session bus:
#   activation to first answer (the bus starts karapace-dbus for a call to its
#   name; bound 100 ms), ListEnvironments over 1,000 environments (bound 50 ms),
#   the idle service's RSS after that (bound 20 MB).
# Each call is a `gdbus call` process; its own cost is measured alone (a
# property read of the running service) and shown beside the others.
#
# The 1,000 environments are recorded as bench/scale.sh records them
# (kp-resolve + kp-record-env over a busybox image; every record written by
# Karapace). Needs dbus-daemon, gdbus, busybox-static, hyperfine.
# Usage: sh bench/dbus.sh [N]   (N environments, default 1000)
set -eu
cd "$(dirname "$0")/.."
# Only what it runs: karapace-dbus, the karapace it starts, the plumbing
# that records the environments.
cargo build --release --quiet --bin karapace-dbus --bin karapace --bin kp-resolve --bin kp-record-env
KP_BUILD_DIR="$PWD/target/release"
PATH="$KP_BUILD_DIR:$PATH"
N=${1:-1000}
test_lazy_prereq() { :; }
. t/lib-fixtures.sh
. t/lib-dbus.sh

W=$(mktemp -d /var/tmp/kp-bench-dbus.XXXXXX)
BUS_PID= ADDR=
trap 'stop_bus "$BUS_PID" "$(sock_dir "$ADDR")"; rm -rf "$W"' EXIT
export KARAPACE_STORE="$W/store"
karapace init >/dev/null
fixture_busybox_rootfs "$W/rootfs"
BASE=$(karapace image import "$W/rootfs" bb | awk '{print $2}')
mkdir -p "$W/f"
i=0
while [ "$i" -lt "$N" ]; do
	printf 'manifest_version = 1\n[base]\nimage = "bb"\n[mounts]\nm = "/tmp:/mnt/%s:ro"\n' "$i" >"$W/f/karapace.toml"
	kp-resolve --image-digest "$BASE" "$W/f" >/dev/null
	kp-record-env "$W/f/karapace.lock" "$BASE" >/dev/null
	i=$((i + 1))
done

cd "$W"
start_bus "$W/b" "$KARAPACE_STORE" 600
AS=
mean_ms() { # hyperfine JSON -> mean in ms
	sed -n 's/.*"mean": *\([0-9.e-]*\).*/\1/p' "$1" | head -n 1 | awk '{printf "%.1f", $1 * 1000}'
}
service_pid() {
	gdbus call --address "$ADDR" -d org.freedesktop.DBus -o /org/freedesktop/DBus \
		-m org.freedesktop.DBus.GetConnectionUnixProcessID org.karapace.Manager1 |
		sed -n 's/^(uint32 \([0-9]*\),)$/\1/p'
}
# stop_service: ends the running service and waits until the name is free.
cat >"$W/stop-service" <<-EOF
	#!/bin/sh
	pid=\$(gdbus call --address "$ADDR" -d org.freedesktop.DBus -o /org/freedesktop/DBus \
		-m org.freedesktop.DBus.GetConnectionUnixProcessID org.karapace.Manager1 2>/dev/null |
		sed -n 's/^(uint32 \([0-9]*\),)\$/\1/p')
	test -z "\$pid" || kill "\$pid"
	while gdbus call --address "$ADDR" -d org.freedesktop.DBus -o /org/freedesktop/DBus \
		-m org.freedesktop.DBus.NameHasOwner org.karapace.Manager1 | grep -q true; do sleep 0.01; done
	EOF
chmod +x "$W/stop-service"
GET="gdbus call --address $ADDR -d org.karapace.Manager1 -o /org/karapace/Manager1 -m org.freedesktop.DBus.Properties.Get org.karapace.Manager1 ApiVersion"
LIST="gdbus call --address $ADDR -d org.karapace.Manager1 -o /org/karapace/Manager1 -m org.karapace.Manager1.ListEnvironments"

$GET >/dev/null
hyperfine -N --warmup 3 --runs 30 --export-json r.json "$GET" >/dev/null 2>&1
base=$(mean_ms r.json)
hyperfine -N --runs 20 --prepare "$W/stop-service" --export-json r.json "$GET" >/dev/null 2>&1
act=$(mean_ms r.json)
$LIST >/dev/null
hyperfine -N --warmup 3 --runs 30 --export-json r.json "$LIST" >/dev/null 2>&1
list=$(mean_ms r.json)
pid=$(service_pid)
rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")

echo "karapace-dbus, $N environments (ms; gdbus's own cost shown apart)"
printf '%-44s %10s\n' "a gdbus call to the running service" "$base"
printf '%-44s %10s\n' "activation to first answer (with gdbus)" "$act"
printf '%-44s %10s\n' "ListEnvironments over $N (with gdbus)" "$list"
printf '%-44s %10s\n' "idle RSS after that (MB)" "$rss"

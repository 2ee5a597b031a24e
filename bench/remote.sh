#!/bin/sh
# Remote benchmarks (issue 15's numbers), on loopback, printed side by side:
#   first push of a ~200 MB environment vs curl POSTing the same pack to the
#   same server (target: push >= 0.8x curl's throughput); re-push of the
#   unchanged environment (target: <= 20 ms, <= 4 KB on the wire, counted by
#   a relay: t/lib-hold.py count=FILE); push after changing one 1 MB file
#   (target: <= 1.2 MB of pack); pull into a store that has the base already
#   (bytes reported); the server's peak RSS (target: < 64 MB) receiving the
#   first push and a 1 GB one; 8 pushes of different environments at once
#   (all succeed) and two pushes of one tag at once (exactly one wins). The
#   two same-tag pushes go through t/lib-hold.py, which lets their update-refs
#   go only once both are sent, so both read the tag before either moves it
#   (t/t7010-remote-robust.sh runs many such rounds).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
PATH="$PWD/target/release:$PATH"
test_lazy_prereq() { :; }
. t/lib-fixtures.sh

W=$(mktemp -d /var/tmp/kp-bench-remote.XXXXXX)
trap 'test -s "$W/pid" && kill $(cat "$W/pid") 2>/dev/null; rm -rf "$W"' EXIT
export KARAPACE_STORE="$W/store" XDG_CONFIG_HOME="$W/config"
fixture_busybox_rootfs "$W/p/rootfs"
printf 'manifest_version = 1\n[base]\nimage = "./rootfs"\n' >"$W/p/karapace.toml"
karapace build "$W/p" --name big >/dev/null 2>&1
karapace exec big -- sh -c 'dd if=/dev/urandom of=/big bs=1M count=200 2>/dev/null'
karapace commit big >/dev/null

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

serve() { # serve STORE: a server on a free port; URL in $URL, pid in $W/pid, token in $W/tok
	if ! test -d "$1"; then
		kp-init "$1" >/dev/null
		karapace-server --store "$1" token add b --write >"$W/tok.$(basename "$1")"
		chmod 600 "$W/tok.$(basename "$1")"
	fi
	cp "$W/tok.$(basename "$1")" "$W/tok"
	: >"$W/port"
	karapace-server --store "$1" --listen 127.0.0.1:0 >"$W/port" 2>"$W/log" &
	echo $! >"$W/pid"
	chmod 600 "$W/tok"
	while ! test -s "$W/port"; do sleep 0.1; done
	URL="http://$(cat "$W/port")"
}
stop() { kill "$(cat "$W/pid")"; wait "$(cat "$W/pid")" 2>/dev/null || true; : >"$W/pid"; }
peak_rss() { awk '/VmHWM/ { print $2 }' "/proc/$(cat "$W/pid")/status"; }

serve "$W/srv"
karapace remote add origin "$URL" --token-file "$W/tok"
t0=$(now); karapace --json push big big@v1 --snapshots >"$W/first"; t1=$(now)
push_s=$(secs "$t0" "$t1")
t0=$(now); karapace --json push big big@v1 --snapshots >"$W/again"; t1=$(now)
again_ms=$(echo "($t1 - $t0) * 1000" | bc)
rss=$(peak_rss)
# The same re-push through a relay that counts the bytes on the wire.
python3 t/lib-hold.py "$W/count.port" "$(cat "$W/port")" "count=$W/wire" & counter=$!
while ! test -s "$W/count.port"; do sleep 0.1; done
karapace remote add counted "http://$(cat "$W/count.port")" --token-file "$W/tok"
karapace push big big@v1 --snapshots --remote counted >/dev/null
kill $counter
stop

# Baseline: curl POSTs the pack the first push sent to a fresh server.
kp-pack-objects "$(sed 's/.*"object":"\([0-9a-f]*\)".*/\1/' "$W/first")" >"$W/pack"
bytes=$(wc -c <"$W/pack")
serve "$W/srv0"
t0=$(now)
curl -s -o /dev/null -H "Expect:" -H "Authorization: Bearer $(cat "$W/tok")" --data-binary "@$W/pack" "$URL/v1/pack"
t1=$(now)
stop
curl_s=$(secs "$t0" "$t1")

serve "$W/srv"
karapace remote set-url origin "$URL" --token-file "$W/tok"
karapace exec big -- sh -c 'dd if=/dev/urandom of=/one bs=1M count=1 2>/dev/null'
karapace commit big >/dev/null
karapace --json push big big@v2 --snapshots >"$W/changed"

field() { sed "s/.*\"$2\":\([0-9]*\).*/\1/" "$1"; }
printf '%-44s %s\n' "pack bytes (first push)" "$bytes"
printf '%-44s %s s (curl) vs %s s (push): %s x\n' "first push" "$curl_s" "$push_s" "$(echo "scale=2; $curl_s / $push_s" | bc)"
printf '%-44s %s ms, %s bytes of pack, %s bytes on the wire\n' "re-push, unchanged" "$again_ms" "$(field "$W/again" bytes)" "$(cat "$W/wire")"
printf '%-44s %s bytes of pack\n' "push after a 1 MB change (with snapshots)" "$(field "$W/changed" bytes)"
printf '%-44s %s KiB\n' "server peak RSS (receiving the first push)" "$rss"

# Pull into a store that has the base: only the rest travels.
export KARAPACE_STORE="$W/store2"
karapace build "$W/p" --name base >/dev/null 2>&1
karapace --json pull big@v2 --name pulled >"$W/pull"
printf '%-44s %s objects, %s bytes\n' "pull with the base present" "$(field "$W/pull" objects)" "$(field "$W/pull" bytes)"

# Eight pushes of different environments at once; two of one tag.
export KARAPACE_STORE="$W/store"
i=0; pids=
while test $i -lt 8; do
	karapace push big "many$i@v1" >/dev/null 2>&1 & pids="$pids $!"; i=$((i + 1))
done
ok=0; for p in $pids; do wait "$p" && ok=$((ok + 1)); done
printf '%-44s %s of 8 succeeded\n' "8 pushes at once" "$ok"
python3 t/lib-hold.py "$W/pair" "$(cat "$W/port")" update-ref & relay=$!
while ! test -s "$W/pair"; do sleep 0.1; done
karapace remote add pair "http://$(cat "$W/pair")" --token-file "$W/tok"
karapace push big same@v1 --remote pair >/dev/null 2>"$W/a.err" & a=$!
karapace push big same@v1 --remote pair --snapshots >/dev/null 2>"$W/b.err" & b=$!
won=0; wait $a && won=$((won + 1)); wait $b && won=$((won + 1))
kill $relay
printf '%-44s %s won (expected 1), the other: %s\n' "2 pushes of one tag at once" "$won" \
	"$(cat "$W/a.err" "$W/b.err" | grep -o "409: conflict" || echo "no conflict")"
stop

# A 1 GB pack (incompressible) into a fresh server: its peak RSS.
export KARAPACE_STORE="$W/store"
mkdir "$W/ph" && cp -a "$W/p/rootfs" "$W/ph/" && cp "$W/p/karapace.toml" "$W/ph/" &&
	printf '[mounts]\nm = "/tmp:/mnt/huge:ro"\n' >>"$W/ph/karapace.toml"
karapace build "$W/ph" --name huge >/dev/null 2>&1
karapace exec huge -- dd if=/dev/urandom of=/huge bs=1M count=1024 2>/dev/null
karapace commit huge >/dev/null
serve "$W/srv1"
karapace remote set-url origin "$URL" --token-file "$W/tok"
karapace --json push huge huge@v1 --snapshots >"$W/huge"
printf '%-44s %s KiB (pack of %s bytes)\n' "server peak RSS (receiving a 1 GB push)" "$(peak_rss)" "$(field "$W/huge" bytes)"
stop

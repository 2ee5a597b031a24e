#!/bin/sh
# karapace-tui with 1,000 environments (issue 17's Numbers): the first frame,
# the first frame that shows the list, a keypress redraw (j, 50 times) and the
# resident set at its peak, in a 80x24 tmux pane; then the CPU time the TUI
# used and, in a second run under `strace -c -f`, the system calls it makes
# from start to a drawn list with its sizes.
#
# The TUI writes its own timings when $KARAPACE_TUI_TIMING names a file
# (first_frame_ms, first_list_frame_ms: from main's start, and with _exec from
# $KARAPACE_TUI_T0, `date +%s%N` just before the shell execs it;
# key_redraw_ms: from the input thread reading a key to the end of the
# redraw). RSS is VmHWM, CPU time utime+stime, both from /proc. The machine
# may be shared: `uptime` is printed before and after.
#
# The store grows as bench/scale.sh grows it (bench/lib-store.sh), with the
# debug build's karapace and plumbing (their speed is not measured here).
# Needs tmux, busybox-static and strace.
# Usage: sh bench/tui.sh [N]   (N environments, default 1000; PROFILE=dev
# measures the debug build of karapace-tui instead of the release one;
# NO_BUILD=1 runs the binaries already built; TUI=PATH measures that
# karapace-tui, an older build say, which may write fewer timings)
set -eu
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
if [ -z "${NO_BUILD:-}" ]; then
	cargo build --quiet -p porcelain -p plumbing
	cargo build --profile "$PROFILE" --quiet -p karapace-tui
fi
if [ -n "${TUI:-}" ]; then :
elif [ "$PROFILE" = dev ]; then TUI="$PWD/target/debug/karapace-tui"
else TUI="$PWD/target/$PROFILE/karapace-tui"; fi
PATH="$PWD/target/debug:$PATH"
N=${1:-1000}
W=$(mktemp -d /var/tmp/kp-bench-tui.XXXXXX)
trap 'tmux -S "$W/tmux.sock" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
. bench/lib-store.sh
fill "$N"
test "$(karapace --json list | grep -o '"env_id"' | wc -l)" = "$N"
echo "before: $(uptime)"

T() { tmux -S "$W/tmux.sock" "$@"; }
# start NAME [WRAPPER...]: karapace-tui in session NAME, timings in $W/NAME.
start() {
	s=$1
	shift
	T new-session -d -s "$s" -x 80 -y 24 \
		"echo \$\$ >'$W/$s.pid'; KARAPACE_TUI_TIMING='$W/$s' KARAPACE_TUI_T0=\$(date +%s%N) exec $* '$TUI'" </dev/null >/dev/null 2>&1
	i=0
	until grep -q first_list_frame_ms "$W/$s" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "$s: no list frame" >&2; exit 1; }
		sleep 0.05
	done
	sleep 1 # the sizes and the first refresh land
}
# The session's process is the TUI (exec); its pid stays the same under strace
# only for strace itself, so /proc is read for the plain run alone.
start b
pid=$(cat "$W/b.pid")
tck=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$tck" '{print ($14 + $15) * 1000 / t}' "/proc/$pid/stat"; }
cpu_start=$(cpu_ms)
k=0
while [ $k -lt 50 ]; do
	T send-keys -t b j
	sleep 0.05
	k=$((k + 1))
done
sleep 0.5
rss_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
cpu_all=$(cpu_ms)
T send-keys -t b q
sleep 0.3

start s strace -c -f -o "'$W/strace'"
T send-keys -t s q
i=0
until [ -s "$W/strace" ] && grep -q total "$W/strace"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "no strace summary" >&2; exit 1; }
	sleep 0.05
done
echo "after:  $(uptime)"

ms() { awk -v k="$1" '$1 == k {print $2; exit}' "$W/b"; }
keys=$(awk '$1 == "key_redraw_ms" {print $2}' "$W/b" | sort -n)
nkeys=$(echo "$keys" | grep -c .)
median=$(echo "$keys" | awk -v n="$nkeys" 'NR == int((n + 1) / 2) {print}')
worst=$(echo "$keys" | tail -n 1)
printf '%-36s %12s %10s\n' "karapace-tui ($PROFILE), $N envs" measured target
printf '%-36s %10s ms %7s ms\n' "first frame (from exec)" "$(ms first_frame_ms_exec)" 100
printf '%-36s %10s ms %7s ms\n' "first list frame (from exec)" "$(ms first_list_frame_ms_exec)" 100
printf '%-36s %10s ms %7s ms\n' "first list frame (from main)" "$(ms first_list_frame_ms)" 100
printf '%-36s %10s ms %7s ms\n' "keypress redraw (median)" "$median" 16
printf '%-36s %10s ms %7s ms\n' "keypress redraw (worst of $nkeys)" "$worst" 16
printf '%-36s %10s MB %7s MB\n' "RSS (VmHWM)" "$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')" 40
printf '%-36s %10s ms\n' "CPU time to the list with sizes" "$cpu_start"
printf '%-36s %10s ms\n' "CPU time, all (and 50 keys)" "$cpu_all"
echo "system calls to the list with sizes, then q (strace -c -f):"
awk '$NF == "total" {print "  total", $4}' "$W/strace"
awk '$1 ~ /^[0-9.]+$/ && $NF != "total" {print $NF, $4}' "$W/strace" |
	sort -k2 -n -r | head -n 8 | awk '{printf "  %-16s %s\n", $1, $2}'

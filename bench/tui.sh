#!/bin/sh
# karapace-tui with 1,000 environments (issue 17's Numbers): the first frame,
# the first frame that shows the list, a keypress redraw (j, 50 times) and the
# resident set at its peak, in a 80x24 tmux pane. The TUI writes its own
# timings when $KARAPACE_TUI_TIMING names a file (first_frame_ms,
# first_list_frame_ms, key_redraw_ms: from process start, and from reading a
# key to the end of the redraw); RSS is VmHWM from /proc.
#
# The store grows as bench/scale.sh grows it (bench/lib-store.sh). Needs tmux
# and busybox-static.
# Usage: sh bench/tui.sh [N]   (N environments, default 1000; PROFILE=dev
# measures the debug build instead of the release one; NO_BUILD=1 runs the
# binaries already built)
set -eu
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
[ -n "${NO_BUILD:-}" ] || cargo build --profile "$PROFILE" --quiet -p porcelain -p plumbing -p karapace-tui
if [ "$PROFILE" = dev ]; then PATH="$PWD/target/debug:$PATH"; else PATH="$PWD/target/$PROFILE:$PATH"; fi
N=${1:-1000}
W=$(mktemp -d /var/tmp/kp-bench-tui.XXXXXX)
trap 'tmux -S "$W/tmux.sock" kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
. bench/lib-store.sh
fill "$N"
test "$(karapace --json list | grep -o '"env_id"' | wc -l)" = "$N"

T() { tmux -S "$W/tmux.sock" "$@"; }
T new-session -d -s b -x 80 -y 24 \
	"echo \$\$ >'$W/pid'; KARAPACE_TUI_TIMING='$W/timing' exec karapace-tui" </dev/null >/dev/null 2>&1
i=0
until grep -q first_list_frame_ms "$W/timing" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 300 ] || { echo "no list frame" >&2; exit 1; }
	sleep 0.05
done
sleep 1 # sizes and the first refresh land
k=0
while [ $k -lt 50 ]; do
	T send-keys -t b j
	sleep 0.05
	k=$((k + 1))
done
sleep 0.5
rss_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$(cat "$W/pid")/status")
T send-keys -t b q
sleep 0.3

ms() { awk -v k="$1" '$1 == k {print $2; exit}' "$W/timing"; }
keys=$(awk '$1 == "key_redraw_ms" {print $2}' "$W/timing" | sort -n)
nkeys=$(echo "$keys" | grep -c .)
median=$(echo "$keys" | awk -v n="$nkeys" 'NR == int((n + 1) / 2) {print}')
worst=$(echo "$keys" | tail -n 1)
printf '%-28s %12s %10s\n' "karapace-tui ($PROFILE), $N envs" measured target
printf '%-28s %10s ms %7s ms\n' "first frame" "$(ms first_frame_ms)" 100
printf '%-28s %10s ms %7s ms\n' "first frame with the list" "$(ms first_list_frame_ms)" 100
printf '%-28s %10s ms %7s ms\n' "keypress redraw (median)" "$median" 16
printf '%-28s %10s ms %7s ms\n' "keypress redraw (worst of $nkeys)" "$worst" 16
printf '%-28s %10s MB %7s MB\n' "RSS (VmHWM)" "$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')" 40

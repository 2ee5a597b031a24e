# t/lib-dbus.sh: a private session bus for the D-Bus service (t8100, bench/dbus.sh).

# Clients run as $AS (empty, or as_user for the test user's own bus).
# start_bus DIR STORE [IDLE [OPTION]]: a session dbus-daemon listening on
# DIR/bus that activates karapace-dbus (idle timeout IDLE, default 3 s, and
# OPTION, e.g. --notify) on STORE from DIR/services; sets ADDR and BUS_PID. Any uid may connect (the service
# itself refuses other users).
start_bus() {
	mkdir -p "$1/services" &&
	# The socket lives in a directory of its own under /tmp: the trash
	# directory's name has a space, which an address escapes as %20, and
	# zbus 5 does not unescape it.
	sock=$(mktemp -d /tmp/kp-bus.XXXXXX) && chmod 755 "$sock" &&
	listen="unix:path=$sock/bus" &&
	cat >"$1/bus.conf" <<-EOF &&
	<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
	 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
	<busconfig>
	  <type>session</type>
	  <listen>$listen</listen>
	  <servicedir>$1/services</servicedir>
	  <policy context="default">
	    <allow user="*"/>
	    <allow send_destination="*" eavesdrop="true"/>
	    <allow eavesdrop="true"/>
	    <allow own="*"/>
	  </policy>
	</busconfig>
	EOF
	printf '[D-BUS Service]\nName=org.karapace.Manager1\nExec="%s" --store "%s" --idle-timeout %s%s\n' \
		"$KP_BUILD_DIR/karapace-dbus" "$2" "${3:-3}" "${4:+ $4}" >"$1/services/org.karapace.Manager1.service" &&
	# The daemon outlives the test: it must not hold the test's descriptors.
	dbus-daemon --config-file="$1/bus.conf" --fork --print-address=1 --print-pid=1 \
		>"$1/daemon" 3>&- 4>&- 5>&- 6>&- &&
	ADDR=$(sed -n 1p "$1/daemon") &&
	BUS_PID=$(sed -n 2p "$1/daemon") &&
	test -n "$ADDR" && test -n "$BUS_PID"
}

# stop_bus PID SOCKDIR: stops a bus start_bus started (PID: its BUS_PID;
# SOCKDIR: the directory of its socket, in ADDR).
stop_bus() {
	test -n "$1" && kill "$1" 2>/dev/null
	case "$2" in /tmp/kp-bus.*) rm -rf "$2" ;; esac
	:
}

# sock_dir ADDR: the socket directory of a bus address start_bus printed.
sock_dir() {
	echo "$1" | sed -n 's|^unix:path=\(/tmp/kp-bus\.[A-Za-z0-9]*\)/bus,.*|\1|p'
}

# call METHOD [ARGS...]: a Manager1 method, through gdbus.
call() {
	m=$1 && shift &&
	$AS gdbus call --address "$ADDR" -d org.karapace.Manager1 -o /org/karapace/Manager1 \
		-m "org.karapace.Manager1.$m" "$@"
}

# prop OBJECT INTERFACE NAME: a property, as gdbus prints it.
prop() {
	$AS gdbus call --address "$ADDR" -d org.karapace.Manager1 -o "$1" \
		-m org.freedesktop.DBus.Properties.Get "$2" "$3"
}

# has_owner: whether the service's name is owned on the bus now.
has_owner() {
	gdbus call --address "$ADDR" -d org.freedesktop.DBus -o /org/freedesktop/DBus \
		-m org.freedesktop.DBus.NameHasOwner org.karapace.Manager1 >owner.out &&
	grep -q true owner.out
}

# job_path OUTPUT-FILE: the object path a method that starts a job returned.
job_path() {
	sed -n "s|^(objectpath '\(.*\)',)\$|\1|p" "$1"
}

# wait_job JOB: waits until JOB has finished (at most 120 s); prints its status.
wait_job() {
	i=0
	while prop "$1" org.karapace.Job1 Status >status.out && grep -q "'running'" status.out; do
		i=$((i + 1))
		test $i -lt 1200 || { echo "job $1 still running" >&4; return 1; }
		sleep 0.1
	done
	sed -n "s/^(<'\(.*\)'>,)\$/\1/p" status.out
}

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (at most 60 s).
wait_for() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		test $i -lt 600 || { echo "no '$2' in $1:" >&4; cat "$1" >&4; return 1; }
		sleep 0.1
	done
}

# progress_of MONITOR-OUTPUT JOB: the progress values of JOB's JobProgress
# signals, in the order gdbus monitor saw them, one a line.
progress_of() {
	sed -n "s|.*JobProgress (objectpath '$2', uint32 \([0-9]*\), .*|\1|p" "$1"
}

# check_progress FILE: FILE's values (one a line) never go down, and one
# lies strictly between 0 and 100.
check_progress() {
	awk 'NR > 1 && $1 < prev { print "progress went down: " prev " then " $1; bad = 1 }
		{ prev = $1 } $1 > 0 && $1 < 100 { mid = 1 }
		END { if (!mid) print "no progress between 0 and 100"; exit bad || !mid }' "$1" >&4
}

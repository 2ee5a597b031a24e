#!/bin/sh
test_description='karapace-dbus: org.karapace.Manager1 on a private session bus'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"
. "$TEST_DIRECTORY/lib-dbus.sh"

test_lazy_prereq DBUS 'command -v dbus-daemon && command -v gdbus'
test_lazy_prereq SANDBOX 'unshare --user --map-root-user --mount true && command -v busybox'
if ! test_have_prereq SANDBOX || ! test_have_prereq DBUS; then
	test_skip_all "needs user namespaces, busybox-static, dbus-daemon and gdbus"
fi

KARAPACE_STORE="$HOME/store"
export KARAPACE_STORE
unset DBUS_SESSION_BUS_ADDRESS
# The buses started below go with the script, however it ends.
BUS_PID= RL_BUS_PID= ADDR= RL_ADDR=
trap 'stop_bus "$BUS_PID" "$(sock_dir "$ADDR")"; stop_bus "$RL_BUS_PID" "$(sock_dir "$RL_ADDR")"' EXIT

# envs: the environment records, for "nothing changed" checks.
envs() {
	ls "$KARAPACE_STORE/meta/envs" 2>/dev/null | sort
}

test_expect_success 'setup: a busybox project and a bus that activates the service' '
	fixture_busybox_rootfs proj/rootfs &&
	write_manifest proj ./rootfs &&
	start_bus "$HOME/b" "$KARAPACE_STORE" &&
	! has_owner
'

test_expect_success 'activation by name: the first call starts it; ApiVersion, StoreRoot' '
	prop /org/karapace/Manager1 org.karapace.Manager1 ApiVersion >out &&
	echo "(<uint32 1>,)" >expect && test_cmp expect out &&
	has_owner &&
	prop /org/karapace/Manager1 org.karapace.Manager1 StoreRoot >out &&
	echo "(<'\''$KARAPACE_STORE'\''>,)" >expect && test_cmp expect out
'

test_expect_success 'without a store: ListEnvironments is empty, a lookup is NotFound' '
	call ListEnvironments >out &&
	echo "(@a(sssssssastt) [],)" >expect && test_cmp expect out &&
	test_must_fail call GetEnvironmentHash life 2>err &&
	grep "org.karapace.Error.NotFound: no environment \"life\"" err
'

test_expect_success 'a build job: its path at once, JobProgress, JobFinished, EnvironmentsChanged' '
	{ gdbus monitor --address "$ADDR" -d org.karapace.Manager1 >mon.out 2>&1 & echo $! >mon.pid; } &&
	test_when_finished "kill \$(cat mon.pid)" &&
	wait_for mon.out "owned by" &&
	call BuildNamedEnvironment "$HOME/proj" life "{}" >out &&
	job=$(job_path out) && test -n "$job" &&
	test "$(wait_job "$job")" = succeeded &&
	wait_for mon.out "JobFinished (objectpath '\''$job'\'', '\''succeeded'\''" &&
	grep "JobProgress (objectpath '\''$job'\'', uint32 100, '\''succeeded'\'')" mon.out &&
	progress_of mon.out "$job" >progress && check_progress progress &&
	wait_for mon.out "EnvironmentsChanged ()" &&
	karapace --json inspect life >inspect.json &&
	id=$(sed -n "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/p" inspect.json) &&
	grep "'\''env_id'\'': <'\''$id'\''>" mon.out &&
	prop "$job" org.karapace.Job1 Result >result &&
	grep "'\''name'\'': <'\''life'\''>" result &&
	prop "$job" org.karapace.Job1 Kind >kind && grep "'\''build'\''" kind &&
	echo "$id" >id
'

test_expect_success 'reads agree with the store: ListEnvironments, GetEnvironmentStatus, GetEnvironmentHash' '
	call ListEnvironments >out &&
	grep "('\''$(cat id)'\'', '\''$(cut -c1-12 id)'\'', '\''life'\'', '\''built'\'', '\''local'\'', '\''$HOME/proj/karapace.toml'\''" out &&
	call GetEnvironmentStatus life >out && echo "('\''built'\'',)" >expect && test_cmp expect out &&
	call GetEnvironmentHash "$(cut -c1-8 id)" >out && echo "('\''$(cat id)'\'',)" >expect && test_cmp expect out
'

test_expect_success 'build refusals are named errors and change nothing' '
	envs >before &&
	test_must_fail call BuildEnvironment proj "{}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: manifest \"proj\": give an absolute path" err &&
	mkdir bad && printf "manifest_version = 1\n[base\n" >bad/karapace.toml &&
	test_must_fail call BuildEnvironment "$HOME/bad" "{}" 2>err &&
	grep "org.karapace.Error.InvalidManifest: .*bad/karapace.toml" err &&
	test_must_fail call BuildEnvironment "$HOME/nowhere" "{}" 2>err &&
	grep "org.karapace.Error.NotFound: manifest $HOME/nowhere: no such file" err &&
	test_must_fail call BuildNamedEnvironment "$HOME/proj" "no/slash" "{}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: invalid name \"no/slash\"" err &&
	test_must_fail call BuildEnvironment "$HOME/proj" "{\"fast\": <true>}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: unknown option \"fast\"" err &&
	test_must_fail call BuildEnvironment "$HOME/proj" "{\"offline\": <\"yes\">}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: option \"offline\" has the wrong type" err &&
	envs >after && test_cmp before after
'

test_expect_success 'ListPresets: the templates karapace new writes' '
	call ListPresets >out &&
	grep -o "('\''[a-z-]*'\'', [\"'\'']" out | cut -d"'\''" -f2 >names &&
	printf "minimal\ndev\nrust-dev\ngui-dev\nubuntu-dev\ndev-python\ngaming\n" >expect && test_cmp expect names &&
	grep "('\''ubuntu-dev'\'', '\''A development environment on Ubuntu 24.04 LTS, from the LXC image server.'\'', '\''ubuntu/24.04'\'')" out &&
	for t in $(cat names); do karapace new "n-$t" --template "$t" >/dev/null || return 1; done
'

test_expect_success 'EnvironmentsChanged when the command line changes the store; RenameEnvironment' '
	{ gdbus monitor --address "$ADDR" -d org.karapace.Manager1 >mon.out 2>&1 & echo $! >mon.pid; } &&
	test_when_finished "kill \$(cat mon.pid)" &&
	wait_for mon.out "owned by" &&
	karapace rename life cli-name >/dev/null &&
	wait_for mon.out "EnvironmentsChanged ()" &&
	call RenameEnvironment cli-name life >out &&
	karapace list >list && grep " life " list &&
	test_must_fail call RenameEnvironment life "a b" 2>err &&
	grep "org.karapace.Error.InvalidArgument: invalid name \"a b\"" err &&
	test_must_fail call RenameEnvironment nosuch x 2>err &&
	grep "org.karapace.Error.NotFound" err
'

test_expect_success 'RunEnvironment: a job whose result is the exit status' '
	call RunEnvironment life "[\"sh\", \"-c\", \"echo hi >/f; exit 3\"]" "{}" >out &&
	job=$(job_path out) &&
	test "$(wait_job "$job")" = failed &&
	prop "$job" org.karapace.Job1 Result >result &&
	grep "'\''exit_status'\'': <3>" result &&
	prop "$job" org.karapace.Job1 ErrorMessage >msg &&
	grep "the command exited with status 3" msg &&
	karapace exec life -- cat /f >f && echo hi >expect && test_cmp expect f &&
	test_must_fail call RunEnvironment life "[]" "{}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: argv is empty" err
'

test_expect_success 'two clients: answers while a job runs, Busy while it holds the environment, cancel from the other' '
	call RunEnvironment life "[\"sleep\", \"300\"]" "{}" >out &&
	job=$(job_path out) &&
	i=0 && until call GetEnvironmentStatus life >st && grep running st; do
		i=$((i + 1)) && test $i -lt 300 && sleep 0.1 || return 1
	done &&
	call ListEnvironments >list && grep "'\''life'\'', '\''running'\''" list &&
	test_must_fail call DestroyEnvironment life 2>err &&
	grep "org.karapace.Error.Busy: environment life is running" err &&
	test_must_fail call Freeze life 2>err && grep "org.karapace.Error.Busy" err &&
	gdbus call --address "$ADDR" -d org.karapace.Manager1 -o "$job" -m org.karapace.Job1.Cancel &&
	test "$(wait_job "$job")" = cancelled &&
	prop "$job" org.karapace.Job1 ErrorName >name &&
	grep org.karapace.Error.Cancelled name &&
	call GetEnvironmentStatus life >st && grep built st &&
	test_must_fail gdbus call --address "$ADDR" -d org.karapace.Manager1 -o "$job" -m org.karapace.Job1.Cancel 2>err &&
	grep "org.karapace.Error.WrongState: the run job has already cancelled" err
'

test_expect_success 'Stop: what runs inside is stopped, the counts come back' '
	call RunEnvironment life "[\"sleep\", \"300\"]" "{}" >out &&
	job=$(job_path out) &&
	i=0 && until call GetEnvironmentStatus life >st && grep running st; do
		i=$((i + 1)) && test $i -lt 300 && sleep 0.1 || return 1
	done &&
	call Stop life "{\"timeout\": <5.0>}" >out &&
	echo "(uint32 1, uint32 0)" >expect && test_cmp expect out &&
	test "$(wait_job "$job")" = failed &&
	prop "$job" org.karapace.Job1 Result >result && grep "<143>" result
'

test_expect_success 'Commit, Snapshots, Restore' '
	call Commit life >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	prop "$job" org.karapace.Job1 Result >result &&
	snap=$(sed -n "s/.*'\''snapshot'\'': <'\''\([0-9a-f]*\)'\''>.*/\1/p" result) && test -n "$snap" &&
	call Snapshots life >out && grep "('\''$snap'\'', uint64 [0-9]*, uint64 [0-9]*)" out &&
	karapace exec life -- rm /f &&
	call Restore life "$(echo $snap | cut -c1-12)" >out &&
	echo "('\''$snap'\'',)" >expect && test_cmp expect out &&
	karapace exec life -- cat /f >f && echo hi >expect && test_cmp expect f &&
	test_must_fail call Restore life 0000 2>err &&
	grep "org.karapace.Error.NotFound: environment life has no snapshot \"0000\"" err
'

test_expect_success 'Freeze, Archive, DestroyEnvironment' '
	fixture_busybox_rootfs two/rootfs && echo two >two/rootfs/etc/two &&
	write_manifest two ./rootfs && karapace build two --name two >/dev/null &&
	call Freeze two && call GetEnvironmentStatus two >st && grep frozen st &&
	call Archive two && call GetEnvironmentStatus two >st && grep archived st &&
	test_must_fail call Freeze two 2>err && grep "org.karapace.Error.WrongState" err &&
	call DestroyEnvironment two &&
	test_must_fail call GetEnvironmentStatus two 2>err && grep org.karapace.Error.NotFound err &&
	test_must_fail karapace inspect two
'

test_expect_success 'karapace --progress-fd: JSON lines of the phases and counts; a bad descriptor is a usage error' '
	karapace --progress-fd 3 verify-store 3>prog >/dev/null &&
	head -n 1 prog >first &&
	echo "{\"done\":0,\"phase\":\"objects\",\"step\":1,\"steps\":2,\"total\":null}" >expect &&
	test_cmp expect first &&
	grep "^{\"done\":[1-9][0-9]*,\"phase\":\"objects\",\"step\":1,\"steps\":2,\"total\":[1-9][0-9]*}\$" prog &&
	grep "\"phase\":\"environments\",\"step\":2" prog &&
	test_expect_code 64 karapace --progress-fd 9 verify-store 9>&- 2>err &&
	echo "karapace: --progress-fd 9: not an open file descriptor" >expect && test_cmp expect err &&
	test_expect_code 64 karapace --progress-fd 1 verify-store 2>err &&
	test_line_count = 1 err && grep "expected a descriptor number, 3 or more" err
'

test_expect_success 'GarbageCollect and VerifyStore jobs; verify-store reports progress' '
	prop /org/karapace/Manager1 org.karapace.Manager1 ApiVersion >/dev/null &&
	{ gdbus monitor --address "$ADDR" -d org.karapace.Manager1 >mon.out 2>&1 & echo $! >mon.pid; } &&
	test_when_finished "kill \$(cat mon.pid)" &&
	wait_for mon.out "owned by" &&
	call GarbageCollect "{\"dry_run\": <true>}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	prop "$job" org.karapace.Job1 Result >result && grep "'\''dry_run'\'': <true>" result &&
	call GarbageCollect "{}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	wait_for mon.out "JobFinished (objectpath '\''$job'\''" &&
	progress_of mon.out "$job" >progress && check_progress progress &&
	call VerifyStore >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	prop "$job" org.karapace.Job1 Result >result && grep "'\''ok'\'': <true>" result &&
	prop "$job" org.karapace.Job1 Progress >p && echo "(<uint32 100>,)" >expect && test_cmp expect p &&
	wait_for mon.out "JobFinished (objectpath '\''$job'\''" &&
	progress_of mon.out "$job" >progress && check_progress progress &&
	grep "JobProgress (objectpath '\''$job'\'', uint32 [1-9][0-9]*, '\''objects'\'')" mon.out
'

test_expect_success 'RebuildEnvironment: a job; the new environment takes the name, the old one goes' '
	fixture_busybox_rootfs three/rootfs && echo three >three/rootfs/etc/three &&
	write_manifest three ./rootfs && karapace build three --name three >/dev/null &&
	karapace --json inspect three >old.json &&
	old=$(sed -n "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/p" old.json) && test -n "$old" &&
	printf "[mounts]\nm = \"/tmp:/mnt/x:ro\"\n" >>three/karapace.toml &&
	test_must_fail call RebuildEnvironment "$HOME/three" "{\"locked\": <true>}" 2>err &&
	grep "org.karapace.Error.InvalidArgument: unknown option \"locked\"" err &&
	call RebuildEnvironment "$HOME/three" "{}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	prop "$job" org.karapace.Job1 Kind >kind && grep "'\''rebuild'\''" kind &&
	karapace --json inspect three >new.json &&
	new=$(sed -n "s/.*\"env_id\":\"\([0-9a-f]*\)\".*/\1/p" new.json) &&
	test -n "$new" && test "$new" != "$old" &&
	prop "$job" org.karapace.Job1 Result >result && grep "'\''env_id'\'': <'\''$new'\''>" result &&
	test_must_fail karapace inspect "$old"
'

test_expect_success 'desktop notifications: none without a daemon; with one, Notify, whose answer is not awaited' '
	rootaddr=$ADDR &&
	start_bus "$HOME/nb" "$KARAPACE_STORE" 3 --notify &&
	nb_pid=$BUS_PID && BUS_PID=$(sed -n 2p "$HOME/b/daemon") &&
	test_when_finished "stop_bus $nb_pid \"$(sock_dir "$ADDR")\"; ADDR=$rootaddr" &&
	{ dbus-monitor --address "$ADDR" "interface=org.freedesktop.Notifications" >notes.out 2>&1 & echo $! >notes.pid; } &&
	test_when_finished "kill \$(cat notes.pid)" &&
	wait_for notes.out "member=NameLost" &&
	call VerifyStore >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	! grep "member=Notify" notes.out &&
	{ python3 "$TEST_DIRECTORY/lib-notifications.py" "$ADDR" owned >notifyd.log 2>&1 & echo $! >notifyd.pid; } &&
	test_when_finished "kill \$(cat notifyd.pid)" &&
	wait_for owned . &&
	call VerifyStore >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	wait_for notes.out "member=Notify" &&
	wait_for notes.out "string \"karapace verify-store succeeded\"" &&
	# The stand-in never answers: the job is over all the same, and the
	# service exits idle.
	i=0 && while has_owner; do
		i=$((i + 1)) && test $i -lt 600 && sleep 0.1 || return 1
	done
'

test_expect_success 'Push and Pull through a remote; push reports its phases' '
	kp-init srv >/dev/null &&
	karapace-server --store srv token add pusher --write >wtok && chmod 600 wtok &&
	{ karapace-server --store srv --listen 127.0.0.1:0 >port 2>srv.log 3>&- 4>&- & echo $! >srv.pid; } &&
	test_when_finished "kill \$(cat srv.pid)" &&
	wait_for port . &&
	karapace remote add origin "http://$(cat port)" --token-file "$HOME/wtok" &&
	prop /org/karapace/Manager1 org.karapace.Manager1 ApiVersion >/dev/null &&
	{ gdbus monitor --address "$ADDR" -d org.karapace.Manager1 >mon.out 2>&1 & echo $! >mon.pid; } &&
	test_when_finished "kill \$(cat mon.pid)" &&
	wait_for mon.out "owned by" &&
	call Push life "life@v1" "{}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	prop "$job" org.karapace.Job1 Result >result && grep "'\''ref'\''" result &&
	wait_for mon.out "JobFinished (objectpath '\''$job'\''" &&
	progress_of mon.out "$job" >progress && check_progress progress &&
	grep "JobProgress (objectpath '\''$job'\'', uint32 66, '\''upload'\'')" mon.out &&
	call Pull "life@v1" "{}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = succeeded &&
	call Pull "life@nosuch" "{}" >out &&
	job=$(job_path out) && test "$(wait_job "$job")" = failed &&
	prop "$job" org.karapace.Job1 ErrorName >name && grep org.karapace.Error.Failed name
'

test_expect_success ROOTLESS 'a caller of another uid is refused' '
	envs >before &&
	test_must_fail as_user gdbus call --address "$ADDR" -d org.karapace.Manager1 -o /org/karapace/Manager1 \
		-m org.karapace.Manager1.DestroyEnvironment life 2>err &&
	grep "org.karapace.Error.AccessDenied: .* runs as uid $(id -u $KP_TEST_USER); this service serves uid 0 only" err &&
	envs >after && test_cmp before after
'

test_expect_success 'no session bus: one line, exit 1' '
	test_expect_code 1 env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$HOME/none" karapace-dbus 2>err &&
	test_line_count = 1 err && grep "^karapace-dbus: cannot connect to the session bus: " err &&
	test_expect_code 64 karapace-dbus --idle-timeout -1 2>err &&
	grep "expected seconds" err
'

test_expect_success 'a running job keeps the service, whose name a second one cannot take; idle, it exits' '
	call RunEnvironment life "[\"sleep\", \"300\"]" "{}" >out &&
	job=$(job_path out) &&
	i=0 && until call GetEnvironmentStatus life >st && grep running st; do
		i=$((i + 1)) && test $i -lt 300 && sleep 0.1 || return 1
	done &&
	sleep 5 && has_owner &&
	test_expect_code 1 env DBUS_SESSION_BUS_ADDRESS="$ADDR" karapace-dbus --store "$KARAPACE_STORE" 2>err &&
	test_line_count = 1 err && grep "org.karapace.Manager1 is already owned" err &&
	call Stop life "{}" >/dev/null &&
	test "$(wait_job "$job")" = failed &&
	i=0 && while has_owner; do
		i=$((i + 1)) && test $i -lt 600 && sleep 0.1 || return 1
	done
'

test_expect_success ROOTLESS 'rootless: its own bus and service; build, list, destroy; root refused; gone with its bus' '
	mkdir -p rl/proj && fixture_busybox_rootfs rl/proj/rootfs && write_manifest rl/proj ./rootfs &&
	chown -R $KP_TEST_USER rl &&
	as_user env KP_BUILD_DIR="$KP_BUILD_DIR" sh -c "
		. \"$TEST_DIRECTORY/lib-dbus.sh\" &&
		start_bus \"$HOME/rl/b\" \"$HOME/rl/st\" 60 && echo \$ADDR && echo \$BUS_PID" >rl.addr &&
	RL_ADDR=$(sed -n 1p rl.addr) && RL_BUS_PID=$(sed -n 2p rl.addr) &&
	rootaddr=$ADDR && ADDR=$RL_ADDR &&
	test_when_finished "ADDR=$rootaddr AS=" &&
	AS=as_user &&
	prop /org/karapace/Manager1 org.karapace.Manager1 ApiVersion >/dev/null &&
	{ gdbus monitor --address "$ADDR" -d org.karapace.Manager1 >rlmon.out 2>&1 & echo $! >rlmon.pid; } &&
	test_when_finished "kill \$(cat rlmon.pid)" &&
	wait_for rlmon.out "owned by" &&
	call BuildNamedEnvironment "$HOME/rl/proj" mine "{}" >out &&
	job=$(job_path out) &&
	test "$(wait_job "$job")" = succeeded &&
	wait_for rlmon.out "JobFinished (objectpath '\''$job'\''" &&
	progress_of rlmon.out "$job" >progress && check_progress progress &&
	call ListEnvironments >list &&
	grep "'\''mine'\'', '\''built'\''" list &&
	AS= && test_must_fail call ListEnvironments 2>err && AS=as_user &&
	grep "org.karapace.Error.AccessDenied: .* runs as uid 0; this service serves uid $(id -u $KP_TEST_USER) only" err &&
	AS= && test_must_fail prop "$job" org.karapace.Job1 Result 2>err && AS=as_user &&
	grep "AccessDenied" err &&
	call DestroyEnvironment mine &&
	test_must_fail as_user env KARAPACE_STORE="$HOME/rl/st" karapace inspect mine &&
	as_user env KARAPACE_STORE="$HOME/rl/st" karapace --progress-fd 3 verify-store 3>rl.prog >/dev/null &&
	grep "^{\"done\":[1-9][0-9]*,\"phase\":\"objects\",\"step\":1,\"steps\":2,\"total\":[1-9][0-9]*}\$" rl.prog &&
	gdbus call --address "$ADDR" -d org.freedesktop.DBus -o /org/freedesktop/DBus \
		-m org.freedesktop.DBus.GetConnectionUnixProcessID org.karapace.Manager1 >pid.out &&
	pid=$(sed -n "s/^(uint32 \([0-9]*\),)\$/\1/p" pid.out) && test -n "$pid" &&
	kill "$RL_BUS_PID" &&
	i=0 && while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1)) && test $i -lt 600 && sleep 0.1 || return 1
	done
'

test_lazy_prereq SYSTEMD_ANALYZE 'command -v systemd-analyze'

test_expect_success SYSTEMD_ANALYZE 'the systemd user unit verifies and names the bus name the activation file does' '
	mkdir -p xdg && chmod 700 xdg &&
	sed "s|^ExecStart=.*|ExecStart=$KP_BUILD_DIR/karapace-dbus|" "$TEST_ROOT/data/systemd/karapace-dbus.service" >karapace-dbus.service &&
	XDG_RUNTIME_DIR="$HOME/xdg" systemd-analyze verify --user "$HOME/karapace-dbus.service" >out 2>&1 &&
	test_must_be_empty out &&
	grep "^BusName=org.karapace.Manager1$" karapace-dbus.service &&
	grep "^Name=org.karapace.Manager1$" "$TEST_ROOT/data/dbus/org.karapace.Manager1.service" &&
	grep "^SystemdService=karapace-dbus.service$" "$TEST_ROOT/data/dbus/org.karapace.Manager1.service"
'

test_done

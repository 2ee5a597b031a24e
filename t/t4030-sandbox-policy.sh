#!/bin/sh
test_description='kp-sandbox policy: mount allowlist, devices, destinations, environment secrets, resource limits, id maps'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

test_have_prereq USERNS || test_skip_all "user namespaces are not available"
test_have_prereq BUSYBOX || test_skip_all "busybox-static is not installed"

sb() { kp-sandbox --rootfs "$HOME/root" "$@"; }

# refused WHAT CMD...: CMD exits 125 and its message contains WHAT.
refused() {
	what=$1 && shift &&
	{ "$@" 2>err; echo $? >status; } &&
	echo 125 >expect.status && test_cmp expect.status status &&
	grep -e "$what" err
}

test_expect_success 'setup' '
	fixture_busybox_rootfs root && mkdir -p data &&
	echo inside >data/f
'

test_expect_success 'a bind outside the allowlist is refused' '
	refused "mount policy: /etc resolves to /etc, outside the allowed roots (/home, /tmp)" \
		kp-sandbox --rootfs root --bind /etc:/tmp/etc -- true
'

test_expect_success 'an allowed bind works' '
	sb --allow "$HOME" --bind "$HOME/data:/tmp/data:ro" -- cat /tmp/data/f >out &&
	echo inside >expect && test_cmp expect out
'

# The trash directory may itself be under an allowed root (/tmp, /home), so
# the escape target lives in a directory outside them.
test_expect_success '.. is resolved before the check' '
	out=$(mktemp -d /var/tmp/kp-policy.XXXXXX) &&
	test_when_finished "rm -rf $out" &&
	mkdir "$out/data" "$out/secret" &&
	refused "mount policy" kp-sandbox --rootfs root --allow "$out/data" --bind "$out/data/../secret:/tmp/r" -- true
'

test_expect_success 'a symlink in an allowed directory pointing out is resolved before the check' '
	ln -s /etc data/escape &&
	refused "resolves to /etc," kp-sandbox --rootfs root --allow "$HOME/data" --bind "$HOME/data/escape:/tmp/e" -- true
'

test_expect_success 'device nodes and /dev are refused as bind sources' '
	refused "device policy: /dev/null" kp-sandbox --rootfs root --allow / --bind /dev/null:/tmp/null -- true &&
	refused "device policy" kp-sandbox --rootfs root --allow / --bind /dev:/tmp/dev -- true
'

test_expect_success 'destinations must be absolute, without .., and not in /proc, /sys, /dev or /' '
	refused "absolute" kp-sandbox --rootfs root --allow "$HOME" --bind "$HOME/data:tmp/x" -- true &&
	refused "must not contain .." kp-sandbox --rootfs root --allow "$HOME" --bind "$HOME/data:/tmp/../etc" -- true &&
	refused "reserved" kp-sandbox --rootfs root --allow "$HOME" --bind "$HOME/data:/proc/x" -- true &&
	refused "reserved" kp-sandbox --rootfs root --allow "$HOME" --bind "$HOME/data:/dev/x" -- true &&
	refused "cannot mount over /" kp-sandbox --rootfs root --allow "$HOME" --bind "$HOME/data:/" -- true
'

test_expect_success 'secrets are absent by default' '
	SSH_AUTH_SOCK=/x GPG_AGENT_INFO=/y AWS_SECRET_ACCESS_KEY=k DOCKER_HOST=unix:///z GITHUB_TOKEN=t \
		sb -- env >env &&
	! grep -e ^SSH_AUTH_SOCK= -e ^GPG_AGENT_INFO= -e ^AWS_SECRET_ACCESS_KEY= -e ^DOCKER_HOST= -e ^GITHUB_TOKEN= env
'

test_expect_success '--env-pass refuses secrets, and SSH_AUTH_SOCK points to --ssh-agent' '
	for v in AWS_SECRET_ACCESS_KEY GPG_AGENT_INFO DOCKER_HOST GITHUB_TOKEN DB_PASSWORD; do
		AWS_SECRET_ACCESS_KEY=k GPG_AGENT_INFO=g DOCKER_HOST=d GITHUB_TOKEN=t DB_PASSWORD=p \
			refused "environment policy: $v: looks like a secret" kp-sandbox --rootfs root --env-pass $v -- true ||
			return 1
	done &&
	SSH_AUTH_SOCK=/x refused "use --ssh-agent" kp-sandbox --rootfs root --env-pass SSH_AUTH_SOCK -- true
'

test_expect_success '--env-pass passes other variables; --env sets any' '
	MY_VAR=hello sb --env-pass MY_VAR --env "A=b=c" --env AWS_REGION=eu -- env >env &&
	grep "^MY_VAR=hello\$" env && grep "^A=b=c\$" env && grep "^AWS_REGION=eu\$" env
'

test_expect_success 'resource limits: enforced in a delegated cgroup v2, or refused' '
	{ sb --memory-mb 64 --cpu-shares 512 -- cat /proc/self/cgroup >cg 2>err; echo $? >status; } &&
	if test "$(cat status)" = 125; then
		grep "resource limits refused: " err
	else
		echo 0 >expect && test_cmp expect status && grep "kp-sandbox-" cg
	fi
'

test_expect_success ROOT '--uid-map subuid as root: the karapace range' '
	sb --uid-map subuid --print-plan -- true >plan &&
	start=$(sed -n "s/^karapace:\([0-9]*\):.*/\1/p" /etc/subuid | head -n1) &&
	grep "^uidmap 0 $start 65536 direct\$" plan
'

test_expect_success ROOTLESS_SINGLE '--uid-map subuid without a subordinate range is refused' '
	refused "uid map: no subordinate ids" as_single_user kp-sandbox --rootfs root --uid-map subuid -- true
'

test_expect_success 'bad hostnames and relative --cwd are refused' '
	refused "hostname" kp-sandbox --rootfs root --hostname "a b" -- true &&
	refused "absolute" kp-sandbox --rootfs root --cwd rel -- true
'

test_done

#!/bin/sh
test_description='manifest v1: strict parsing, located errors, normal form'
. ./lib.sh

D=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

test_expect_success 'every example manifest is valid' '
	for f in "$TEST_ROOT"/examples/*.toml; do kp-resolve --normalize "$f" >/dev/null || return 1; done
'

check_error() {
	cat >m.toml &&
	test_expect_code 2 kp-resolve --normalize m.toml 2>err &&
	echo "kp-resolve: error: $1" >expect &&
	head -n 1 err >actual &&
	test_cmp expect actual
}

test_expect_success 'wrong type names file, line, column and key' '
	check_error "m.toml:4:10: hardware.gpu: invalid type: string \"yes\", expected a boolean" <<-\EOF
	manifest_version = 1
	base.image = "debian/bookworm"
	[hardware]
	gpu    = "yes"
	EOF
'

test_expect_success 'unknown key is an error' '
	check_error "m.toml:3:2: sytem: unknown field \`sytem\`, expected one of \`manifest_version\`, \`base\`, \`system\`, \`gui\`, \`hardware\`, \`integration\`, \`mounts\`, \`runtime\`" <<-\EOF
	manifest_version = 1
	base.image = "x"
	[sytem]
	packages = []
	EOF
'

test_expect_success 'unknown key in a nested table' '
	check_error "m.toml:4:1: runtime.resource_limits.cpu: unknown field \`cpu\`, expected \`cpu_shares\` or \`memory_limit_mb\`" <<-\EOF
	manifest_version = 1
	base.image = "x"
	[runtime.resource_limits]
	cpu = 3
	EOF
'

test_expect_success 'array element of the wrong type' '
	check_error "m.toml:3:27: system.packages[1]: invalid type: integer \`7\`, expected a string" <<-\EOF
	manifest_version = 1
	base.image = "x"
	system.packages = ["git", 7]
	EOF
'

test_expect_success 'empty image' '
	check_error "m.toml:3:9: base.image: empty image reference; expected e.g. \"debian/bookworm\" or an https:// URL" <<-\EOF
	manifest_version = 1
	[base]
	image = ""
	EOF
'

test_expect_success 'missing image' '
	check_error "m.toml:2:1: base.image: missing field \`image\`" <<-\EOF
	manifest_version = 1
	[base]
	EOF
'

test_expect_success 'missing or unsupported manifest_version' '
	check_error "m.toml:1:1: manifest_version: missing; expected \`manifest_version = 1\` at the top" <<-\EOF &&
	[base]
	image = "x"
	EOF
	check_error "m.toml:1:20: manifest_version: unsupported version 2; this build reads manifest_version = 1" <<-\EOF
	manifest_version = 2
	EOF
'

test_expect_success 'bad mount syntax' '
	check_error "m.toml:4:7: mounts.src: mount \"/src:/work:rx\": unknown mode \"rx\"; expected \"ro\" or \"rw\"" <<-\EOF &&
	manifest_version = 1
	base.image = "x"
	[mounts]
	src = "/src:/work:rx"
	EOF
	check_error "m.toml:4:7: mounts.src: mount \"/src\": expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\"" <<-\EOF &&
	manifest_version = 1
	base.image = "x"
	[mounts]
	src = "/src"
	EOF
	check_error "m.toml:4:7: mounts.src: mount \"/src:work\": container path \"work\" must be absolute" <<-\EOF &&
	manifest_version = 1
	base.image = "x"
	[mounts]
	src = "/src:work"
	EOF
	check_error "m.toml:5:5: mounts.b: mounts.a already mounts onto \"/w\"" <<-\EOF
	manifest_version = 1
	base.image = "x"
	[mounts]
	a = "/x:/w"
	b = "/y:/w/"
	EOF
'

test_expect_success 'unknown backend and out-of-range limits' '
	check_error "m.toml:4:11: runtime.backend: unknown backend \"docker\"; expected one of namespace, oci, mock" <<-\EOF &&
	manifest_version = 1
	base.image = "x"
	[runtime]
	backend = "docker"
	EOF
	check_error "m.toml:4:19: runtime.resource_limits.memory_limit_mb: -5 is out of range; expected an integer from 1 to 17592186044415" <<-\EOF
	manifest_version = 1
	base.image = "x"
	[runtime.resource_limits]
	memory_limit_mb = -5
	EOF
'

test_expect_success 'TOML syntax error is located' '
	printf "manifest_version = 1\n[base\n" >m.toml &&
	test_expect_code 2 kp-resolve --normalize m.toml 2>err &&
	head -n 1 err >actual &&
	echo "kp-resolve: error: m.toml:2:6: unclosed table, expected \`]\`" >expect &&
	test_cmp expect actual
'

test_expect_success 'missing manifest exits 2' '
	test_expect_code 2 kp-resolve --normalize nothere.toml 2>err &&
	test_file_not_empty err
'

test_expect_success 'normal form: trimmed, sorted, de-duplicated, backend lowercased, image kept' '
	cat >m.toml <<-\EOF &&
	manifest_version = 1
	[base]
	image = "https://Example.org/RootFS.tar.xz"
	[system]
	packages = [" git", "curl", "git"]
	[gui]
	apps = ["b", "a"]
	[mounts]
	w = "./src//:/work/./x/:ro"
	[runtime]
	backend = " OCI "
	EOF
	kp-resolve --normalize m.toml >actual &&
	cat >expect <<-\EOF &&
	{"base":{"digest":null,"image":"https://Example.org/RootFS.tar.xz"},"gui":{"apps":["a","b"]},"hardware":{"audio":false,"gpu":false},"integration":{"dbus_session":false,"fonts":true,"gpu_devices":false,"home":false,"pipewire":false,"pulseaudio":false,"sound_devices":false,"ssh_agent":false,"themes":true,"wayland":true,"x11":true},"manifest_version":1,"mounts":{"w":{"container":"/work/x","host":"src","read_only":true}},"runtime":{"backend":"oci","network_isolation":false,"resource_limits":{"cpu_shares":null,"memory_limit_mb":null},"runtime":"auto"},"system":{"packages":["curl","git"]}}
	EOF
	test_cmp expect actual
'

test_expect_success 'integration: implied by features, explicit value wins' '
	cat >m.toml <<-\EOF &&
	manifest_version = 1
	base.image = "x"
	hardware = { gpu = true, audio = true }
	[integration]
	pulseaudio = false
	ssh_agent = true
	EOF
	kp-resolve --image-digest $D --stdout m.toml >lock &&
	sed -n "/^\[integration\]/,/^$/p" lock >actual &&
	cat >expect <<-\EOF &&
	[integration]
	home = false
	wayland = false
	x11 = false
	pipewire = true
	pulseaudio = false
	dbus_session = false
	ssh_agent = true
	fonts = false
	themes = false
	gpu_devices = true
	sound_devices = true

	EOF
	test_cmp expect actual
'

test_done

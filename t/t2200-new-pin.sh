#!/bin/sh
test_description='karapace new and karapace pin'
. ./lib.sh
. "$TEST_DIRECTORY/lib-images.sh"

D=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

test_expect_success 'new NAME writes NAME/karapace.toml from the minimal template' '
	karapace new myenv </dev/null >out &&
	test_cmp "$TEST_ROOT/examples/minimal.toml" myenv/karapace.toml &&
	echo "Created myenv/karapace.toml from template minimal (base image debian/bookworm)" >expect &&
	test_cmp expect out
'

test_expect_success 'every template is its example file' '
	for t in minimal dev gui-dev rust-dev ubuntu-dev dev-python gaming; do
		karapace new --template $t t-$t </dev/null >/dev/null &&
		test_cmp "$TEST_ROOT/examples/$t.toml" t-$t/karapace.toml || return 1
	done
'

test_expect_success 'preset list names every preset once, with its aliases; show prints its file' '
	karapace preset list >out &&
	cut -d" " -f1 out >names &&
	printf "%s\n" minimal dev rust-dev gui-dev ubuntu-dev dev-python gaming >expect &&
	test_cmp expect names &&
	grep "^rust-dev (dev-rust) " out && grep "^gui-dev (gui-app) " out &&
	for t in minimal dev rust-dev gui-dev ubuntu-dev dev-python gaming; do
		karapace preset show $t >shown && test_cmp "$TEST_ROOT/examples/$t.toml" shown || return 1
	done &&
	karapace preset show dev-rust >shown && test_cmp "$TEST_ROOT/examples/rust-dev.toml" shown &&
	karapace --json preset list >json && grep "\"name\":\"gaming\"" json &&
	ls "$TEST_ROOT"/examples/*.toml | wc -l >n && echo 8 >expect && test_cmp expect n
'

test_expect_success '--preset is --template, aliases included' '
	karapace new --preset gui-app p-gui </dev/null >out &&
	test_cmp "$TEST_ROOT/examples/gui-dev.toml" p-gui/karapace.toml &&
	grep "from template gui-dev" out
'

test_expect_success 'an unknown preset: one line naming the known ones, exit 64, nothing written' '
	test_expect_code 64 karapace preset show nope 2>err &&
	test_line_count = 1 err &&
	grep "unknown preset \"nope\"; expected one of minimal, dev, rust-dev, gui-dev, ubuntu-dev, dev-python, gaming, dev-rust, gui-app" err &&
	test_expect_code 64 karapace new --preset nope np 2>err &&
	test_line_count = 1 err && test_path_is_missing np
'

test_expect_success 'new refuses to overwrite without --force' '
	echo "# mine" >>myenv/karapace.toml &&
	cp myenv/karapace.toml before &&
	test_expect_code 1 karapace new --template dev myenv </dev/null 2>err &&
	test_cmp before myenv/karapace.toml &&
	echo "karapace: error: myenv/karapace.toml already exists; use --force to overwrite it" >expect &&
	test_cmp expect err &&
	karapace new --template dev --force myenv </dev/null &&
	test_cmp "$TEST_ROOT/examples/dev.toml" myenv/karapace.toml
'

test_expect_success 'new: unknown template and missing NAME are usage errors' '
	test_expect_code 64 karapace new --template nope x 2>err &&
	test_path_is_missing x &&
	test_expect_code 64 karapace new
'

test_expect_success 'new --json' '
	karapace --json new --template rust-dev j >out &&
	echo "{\"image\":\"debian/bookworm\",\"manifest\":\"j/karapace.toml\",\"template\":\"rust-dev\"}" >expect &&
	test_cmp expect out
'

test_lazy_prereq SCRIPT 'script -qec true /dev/null'

test_expect_success SCRIPT 'new prompts on a terminal' '
	printf "gui-dev\nubuntu/24.04\n" >answers &&
	script -qec "karapace new tty" /dev/null <answers >out 2>&1 &&
	grep "Template (minimal, dev, rust-dev, gui-dev, ubuntu-dev, dev-python, gaming) \[minimal\]:" out &&
	sed "s|^image = \"debian/bookworm\"|image = \"ubuntu/24.04\"|" "$TEST_ROOT/examples/gui-dev.toml" >expect &&
	test_cmp expect tty/karapace.toml
'

test_expect_success 'setup a manifest with comments' '
	mkdir p &&
	cat >p/karapace.toml <<-\EOF
	# My environment.
	manifest_version = 1

	[base]  # where it starts
	image   = "debian/bookworm"    # pinned by karapace pin

	[system]
	packages = [ "git" ]  # tools
	EOF
'

test_expect_success 'pin --check fails on an unpinned reference' '
	test_expect_code 1 karapace pin --check p 2>err &&
	echo "karapace: error: p/karapace.toml: base.image \"debian/bookworm\" is not pinned; run \`karapace pin\` to pin it to its digest" >expect &&
	test_cmp expect err &&
	test_expect_code 1 karapace --json pin --check p/karapace.toml >out &&
	echo "{\"image\":\"debian/bookworm\",\"manifest\":\"p/karapace.toml\",\"pinned\":false}" >expect &&
	test_cmp expect out
'

test_expect_success BUSYBOX,PYTHON3 'setup an image server on 127.0.0.1 serving debian/bookworm' '
	fixture_busybox_rootfs rootfs &&
	image_rootfs_tarball rootfs rootfs.tar.xz &&
	image_simplestreams srv rootfs.tar.xz debian bookworm "debian/12" 20250101_05:24 &&
	image_httpd srv &&
	echo "$HTTPD" >httpd-url &&
	SHA=$(sha256sum rootfs.tar.xz | cut -d" " -f1) && echo $SHA >sha &&
	kp-init --store digest-store >/dev/null &&
	kp-fetch-image --store digest-store rootfs.tar.xz >digest
'

test_expect_success 'pin cannot resolve an unreachable name and leaves the file alone' '
	cp p/karapace.toml before &&
	KARAPACE_IMAGE_SERVER=http://127.0.0.1:9 test_expect_code 1 karapace pin p 2>err &&
	grep "cannot resolve base image \"debian/bookworm\"" err &&
	test_cmp before p/karapace.toml
'

test_expect_success BUSYBOX,PYTHON3 'pin turns a release into its exact build URL, checksum and digest, keeping comments and layout' '
	HTTPD=$(cat httpd-url) && D=$(cat digest) && SHA=$(cat sha) &&
	arch=$(uname -m | sed "s/x86_64/amd64/;s/aarch64/arm64/") &&
	pinned="$HTTPD/images/debian/bookworm/$arch/default/20250101_05:24/rootfs.tar.xz#sha256=$SHA@blake3:$D" &&
	KARAPACE_IMAGE_SERVER=$HTTPD karapace pin p >out &&
	echo "p/karapace.toml: pinned base.image to $pinned" >expect &&
	test_cmp expect out &&
	sed "s|^image   = \"debian/bookworm\"|image   = \"$pinned\"|" before >expect &&
	test_cmp expect p/karapace.toml &&
	karapace pin --check p >out
'

test_expect_success BUSYBOX,PYTHON3 'pin on a pinned manifest changes nothing' '
	cp p/karapace.toml before &&
	karapace --json pin p >out &&
	grep "\"changed\":false" out &&
	test_cmp before p/karapace.toml
'

test_expect_success BUSYBOX 'pin keeps a local path as written and adds its digest' '
	mkdir -p local && cp -a rootfs local/rootfs &&
	printf "manifest_version = 1\n[base]\nimage = \"./rootfs\"\n" >local/karapace.toml &&
	karapace pin local >out &&
	grep "image = \"./rootfs@blake3:$(cat digest)\"" local/karapace.toml
'

test_expect_success 'pin on an invalid manifest exits 2' '
	mkdir inv && printf "manifest_version = 1\n[base]\nimage = 3\n" >inv/karapace.toml &&
	test_expect_code 2 karapace pin inv 2>err &&
	grep "inv/karapace.toml:3:9: base.image: invalid type" err
'

test_expect_success 'help lists new and pin' '
	karapace help >out &&
	grep "^  new " out && grep "^  pin " out &&
	karapace pin --help >out && grep "^usage: karapace pin \[MANIFEST\] \[--check\]" out
'

test_done

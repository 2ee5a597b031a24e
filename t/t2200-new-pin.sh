#!/bin/sh
test_description='karapace new and karapace pin'
. ./lib.sh

D=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

test_expect_success 'new NAME writes NAME/karapace.toml from the minimal template' '
	karapace new myenv </dev/null >out &&
	test_cmp "$TEST_ROOT/examples/minimal.toml" myenv/karapace.toml &&
	echo "Created myenv/karapace.toml from template minimal (base image debian/bookworm)" >expect &&
	test_cmp expect out
'

test_expect_success 'every template is its example file' '
	for t in minimal dev gui-dev rust-dev ubuntu-dev; do
		karapace new --template $t t-$t </dev/null >/dev/null &&
		test_cmp "$TEST_ROOT/examples/$t.toml" t-$t/karapace.toml || return 1
	done
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
	grep "Template (minimal, dev, gui-dev, rust-dev, ubuntu-dev) \[minimal\]:" out &&
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

test_expect_success 'pin cannot resolve a name offline and leaves the file alone' '
	cp p/karapace.toml before &&
	test_expect_code 1 karapace pin p 2>err &&
	grep "cannot resolve base image \"debian/bookworm\"" err &&
	test_cmp before p/karapace.toml
'

test_expect_success 'pin uses the digest the lock knows, keeping comments and layout' '
	echo "git 1 amd64" >closure &&
	kp-resolve --image-digest $D --closure closure p >id &&
	karapace pin p >out &&
	echo "p/karapace.toml: pinned base.image to debian/bookworm@blake3:$D" >expect &&
	test_cmp expect out &&
	sed "s|^image   = \"debian/bookworm\"|image   = \"debian/bookworm@blake3:$D\"|" before >expect &&
	test_cmp expect p/karapace.toml &&
	karapace pin --check p >out &&
	kp-resolve --check p >id2 &&
	test_cmp id id2
'

test_expect_success 'pin on a pinned manifest changes nothing' '
	cp p/karapace.toml before &&
	karapace --json pin p >out &&
	echo "{\"changed\":false,\"image\":\"debian/bookworm@blake3:$D\",\"manifest\":\"p/karapace.toml\"}" >expect &&
	test_cmp expect out &&
	test_cmp before p/karapace.toml
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

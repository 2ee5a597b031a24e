#!/bin/sh
test_description='pacman end to end: Debian'"'"'s pacman 6 in an Arch-style root, packages from repositories on 127.0.0.1'
. ./lib.sh
. "$TEST_DIRECTORY/lib-pacman.sh"

pacman_setup

# locked ENTRY...: each "NAME VERSION" is in proj/karapace.lock, arch any.
locked() {
	for e in "$@"; do
		grep -A2 "^name = \"${e% *}\"$" proj/karapace.lock >entry &&
		grep "^version = \"${e#* }\"$" entry && grep "^arch = \"any\"$" entry || return 1
	done
}

test_expect_success 'build installs the packages with their dependency; the lock records exact versions' '
	write_manifest proj ../img.tar kp-hello kp-note &&
	KARAPACE_LOG=info karapace build proj --name arch >id 2>err &&
	grep "built arch (3 package(s) installed)" err &&
	grep "^karapace: info: running pacman --noconfirm --needed --noprogressbar -Sy -- kp-hello kp-note$" err &&
	locked "kp-hello 1.0-1" "kp-greet 1.0-1" "kp-note 1.0-1" &&
	test $(grep -c "^\[\[packages\]\]" proj/karapace.lock) = 3 &&
	kp-resolve --check proj >/dev/null
'

test_expect_success 'exec runs the installed program; the install scriptlet ran; install reasons as pacman records them' '
	karapace exec arch -- kp-hello >out &&
	echo "kp-hello 1.0: greetings from kp-greet 1.0" >expect && test_cmp expect out &&
	karapace exec arch -- cat /var/lib/kp-note/stamp >out &&
	echo "noted 1.0-1" >expect && test_cmp expect out &&
	karapace exec arch -- pacman -Qi kp-greet >qi &&
	grep "^Install Reason *: Installed as a dependency for another package$" qi &&
	karapace exec arch -- pacman -Qi kp-hello >qi &&
	grep "^Install Reason *: Explicitly installed$" qi
'

test_expect_success 'the repository moves on to kp-hello 2.0: --locked installs exactly 1.0-1 (from the archive repository)' '
	pacman_serve v2 &&
	cp proj/karapace.lock lock.before &&
	KARAPACE_STORE="$HOME/fresh" KARAPACE_LOG=info karapace build --locked proj >id2 2>err &&
	test_cmp id id2 &&
	test_cmp lock.before proj/karapace.lock &&
	grep "^karapace: info: running pacman .* -Sy -- kp-greet=1.0-1 kp-hello=1.0-1 kp-note=1.0-1$" err &&
	grep "^karapace: info: running pacman -D --asdeps -- kp-greet$" err &&
	KARAPACE_STORE="$HOME/fresh" karapace exec $(cat id2) -- kp-hello >out &&
	echo "kp-hello 1.0: greetings from kp-greet 1.0" >expect && test_cmp expect out &&
	KARAPACE_STORE="$HOME/fresh" karapace exec $(cat id2) -- pacman -Qi kp-greet >qi &&
	grep "^Install Reason *: Installed as a dependency for another package$" qi
'

test_expect_success 'without the lock the same manifest resolves to 2.0-1' '
	mkdir new && cp proj/karapace.toml new/ &&
	KARAPACE_STORE="$HOME/new-store" karapace build new >id3 2>err &&
	! test_cmp id id3 &&
	grep -A1 "^name = \"kp-hello\"$" new/karapace.lock >entry &&
	grep "^version = \"2.0-1\"$" entry
'

test_expect_success 'pacman works again at runtime inside: -Sy and an upgrade to 2.0-1' '
	karapace exec arch -- pacman --noconfirm -Sy kp-hello >out 2>&1 &&
	karapace exec arch -- kp-hello >out &&
	echo "kp-hello 2.0: greetings from kp-greet 1.0" >expect && test_cmp expect out &&
	karapace exec arch -- pacman -Q kp-hello >out &&
	echo "kp-hello 2.0-1" >expect && test_cmp expect out
'

# fails DIR CODE LAST PATTERN...: `karapace build DIR` exits CODE; its last
# line is "karapace: error: LAST" exactly; each PATTERN (the manager's own
# message) is on stderr; no lock is written, no environment made, the store
# unchanged.
fails() {
	dir=$1 code=$2 last=$3
	shift 3
	karapace list --json >envs.before &&
	store_state "$KARAPACE_STORE" >state.before &&
	test_expect_code $code karapace build "$dir" >out 2>err &&
	test_must_be_empty out &&
	tail -n 1 err >last &&
	echo "karapace: error: $last" >expect &&
	test_cmp expect last &&
	for p in "$@"; do grep -F -- "$p" err || return 1; done &&
	test_path_is_missing "$dir/karapace.lock" &&
	karapace list --json >envs.after &&
	test_cmp envs.before envs.after &&
	store_state "$KARAPACE_STORE" >state.after &&
	store_unchanged
}

PAC="pacman --noconfirm --needed --noprogressbar -Sy --"

test_expect_success 'a locked version no repository has any more: pacman says so, nothing is made' '
	pacman_serve v2-only &&
	mkdir gone && cp proj/karapace.toml proj/karapace.lock gone/ &&
	(export KARAPACE_STORE="$HOME/new-store" &&
	cp gone/karapace.lock lock.before &&
	karapace list --json >envs.before &&
	store_state "$KARAPACE_STORE" >state.before &&
	test_expect_code 1 karapace build --locked gone >out 2>err &&
	grep -F "error: target not found: kp-hello=1.0-1" err &&
	tail -n 1 err >last &&
	echo "karapace: error: \`$PAC kp-greet=1.0-1 kp-hello=1.0-1 kp-note=1.0-1\` failed inside the environment (exit status 1)" >expect &&
	test_cmp expect last &&
	test_cmp lock.before gone/karapace.lock &&
	karapace list --json >envs.after && test_cmp envs.before envs.after &&
	store_state "$KARAPACE_STORE" >state.after &&
	store_unchanged)
'

test_expect_success 'corrupt repository database: pacman'"'"'s message, nothing made' '
	pacman_serve v1 &&
	mkdir -p corrupt-repo && echo "this is not a database" >corrupt-repo/kp.db &&
	rm serve/kp && ln -s "$HOME/corrupt-repo" serve/kp &&
	write_manifest corrupt ../img.tar kp-note &&
	fails corrupt 1 "\`$PAC kp-note\` failed inside the environment (exit status 1)" \
		"error: could not open file /var/lib/pacman/sync/kp.db: Unrecognized archive format" \
		"error: target not found: kp-note" &&
	pacman_serve v1
'

test_expect_success 'a package whose scriptlet fails: pacman exits 0, the build stops quoting it, nothing made' '
	write_manifest broken ../img.tar kp-broken &&
	fails broken 1 "\`$PAC kp-broken\` exited 0 inside the environment, but pacman said \"error: command failed to execute correctly\" while installing kp-broken (its output: \"kp-broken: this package refuses to install\"); Karapace keeps no install whose scriptlet failed" \
		"kp-broken: this package refuses to install"
'

test_expect_success 'a dependency no repository has: pacman'"'"'s message, nothing made' '
	write_manifest orphan ../img.tar kp-orphan &&
	fails orphan 1 "\`$PAC kp-orphan\` failed inside the environment (exit status 1)" \
		":: unable to satisfy dependency '"'"'kp-missing'"'"' required by kp-orphan"
'

# rootless AS USER DIR: as AS, in a store of its own: build, the lock, exec,
# and pacman again inside (the scriptlet of kp-note runs at runtime).
rootless() {
	(as=$1 && mkdir "$3" && cd "$3" &&
	 write_manifest proj ../../img.tar kp-hello &&
	 chown -R "$2" . &&
	 export KARAPACE_STORE="$PWD/st" &&
	 $as karapace build proj --name arch >id 2>err &&
	 grep "built arch (2 package(s) installed)" err &&
	 locked "kp-hello 1.0-1" "kp-greet 1.0-1" &&
	 $as karapace exec arch -- kp-hello >out &&
	 echo "kp-hello 1.0: greetings from kp-greet 1.0" >expect && test_cmp expect out &&
	 $as karapace exec arch -- pacman --noconfirm -Sy kp-note >out 2>&1 &&
	 $as karapace exec arch -- cat /var/lib/kp-note/stamp >out &&
	 echo "noted 1.0-1" >expect && test_cmp expect out &&
	 $as karapace exec arch -- ls -ln /usr/bin/kp-hello >ls &&
	 grep "^-rwxr-xr-x [0-9]* 0 0 " ls)
}

test_expect_success ROOTLESS_SINGLE 'rootless without a subordinate range (single-id map): the same' '
	rootless as_single_user $KP_TEST_USER_SINGLE rl
'

test_expect_success SUBUID 'rootless with a subordinate range: the same' '
	rootless as_user $KP_TEST_USER rs
'

test_done

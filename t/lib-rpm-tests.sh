# t/lib-rpm-tests.sh: the end-to-end tests of an RPM package manager, run by
# t3600-pkg-dnf.sh (M=dnf) and t3610-pkg-zypper.sh (M=zypper): the fixture's
# repository (t/lib-rpm.sh) served on 127.0.0.1, a root whose only package
# manager is $M, and builds over it as root and rootless in both id-map modes.

. "$TEST_DIRECTORY/lib-env.sh"
. "$TEST_DIRECTORY/lib-rpm.sh"

rpm_setup "$M"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# The manager's own words for each failure (quoted in the build's stderr).
case $M in
dnf)
	MSG_NO_VERSION="Unable to find a match: kp-hello-1.0-1"
	MSG_METADATA="Failed to download metadata for repo 'kp'"
	MSG_SCRIPTLET="Error in PREIN scriptlet in rpm package kp-badpre"
	MSG_UNRESOLVED="nothing provides kp-nowhere needed by kp-unresolved-1.0-1.noarch"
	;;
zypper)
	MSG_NO_VERSION="No provider of 'kp-hello=1.0-1' found."
	MSG_METADATA="Repository 'kp' is invalid."
	MSG_SCRIPTLET="%prein(kp-badpre-1.0-1.noarch) scriptlet failed, exit status 1"
	MSG_UNRESOLVED="Problem: nothing provides kp-nowhere needed by kp-unresolved-1.0-1.noarch"
	;;
esac

# repo_has PACKAGE-FILE...: the served repository holds exactly these.
repo_has() { rpm_repo "$HOME/repo" "$@"; }

test_expect_success "setup: the repository on 127.0.0.1, a $M root using it" '
	repo_has "kp-lib-*" "kp-hello-1.0-*" "kp-post-*" "kp-ep-*" "kp-tool-*" "kp-badpre-*" "kp-unresolved-*" &&
	image_httpd repo &&
	rpm_image $M "$HTTPD/" img &&
	test_path_is_missing img/usr/bin/apt-get &&
	tar -C img --numeric-owner -I "zstd -T2 -3" -cf image.tar.zst . && chmod 644 image.tar.zst &&
	rm -rf img
'

test_expect_success "build installs the packages with $M, a dependency and a %post scriptlet" '
	write_manifest proj ../image.tar.zst kp-hello kp-post kp-ep &&
	karapace build proj --name demo >id 2>err &&
	grep "built demo (4 package(s) installed)" err &&
	grep "GET /kp-hello-1.0-1.noarch.rpm 200" "$HTTPD_LOG"
'

test_expect_success 'the lock records each package as EPOCH:VERSION-RELEASE' '
	python3 -c "import tomllib; print(\"\\n\".join(\"%(name)s %(version)s %(arch)s\" % p for p in tomllib.load(open(\"proj/karapace.lock\", \"rb\"))[\"packages\"]))" >got &&
	cat >expect <<-\EOF &&
	kp-ep 3:2.0-1 noarch
	kp-hello 0:1.0-1 noarch
	kp-lib 0:1.0-1 noarch
	kp-post 0:1.0-1 noarch
	EOF
	test_cmp expect got
'

test_expect_success 'exec runs an installed program; the scriptlet ran at build' '
	karapace exec demo -- sh -c "kp-hello && cat /var/lib/kp-post/ran" >out &&
	printf "kp-hello 1.0\nran\n" >expect && test_cmp expect out &&
	karapace exec demo -- rpm -q --qf "%{NAME} %{EPOCH}\n" kp-ep >out &&
	echo "kp-ep 3" >expect && test_cmp expect out
'

case $M in
dnf) RUNTIME_INSTALL="dnf -y install kp-tool" ;;
zypper) RUNTIME_INSTALL="zypper --non-interactive install kp-tool" ;;
esac

test_expect_success "$M works again inside at run time" '
	karapace exec demo -- $RUNTIME_INSTALL >out 2>&1 &&
	karapace exec demo -- kp-tool >out &&
	echo "kp-tool 1.0" >expect && test_cmp expect out
'

# One store for all that runs as root (disk: each holds the image twice, its
# objects and its checkout).
test_expect_success '--locked reinstalls the locked version when the repository has a newer one' '
	repo_has "kp-lib-*" "kp-hello-1.*" "kp-post-*" "kp-ep-*" "kp-tool-*" &&
	karapace destroy demo >/dev/null &&
	karapace build --locked proj >id2 &&
	test_cmp id id2 &&
	karapace exec $(cat id2) -- kp-hello >out &&
	echo "kp-hello 1.0" >expect && test_cmp expect out &&
	mkdir fresh && cp proj/karapace.toml fresh/ &&
	karapace build fresh >id3 &&
	! test_cmp id id3 &&
	grep -A1 "^name = \"kp-hello\"" fresh/karapace.lock >entry &&
	grep "version = \"0:1.1-1\"" entry
'

# store_state: the objects, refs, environments and their records in the store,
# with sizes (caches and the images' use times may change).
store_state() {
	(cd store && find objects refs envs meta/envs meta/names run tmp -printf "%p %s\n" 2>/dev/null | sort)
}

# fails_cleanly DIR MESSAGE [--locked]: building DIR fails with exit status 1,
# quoting MESSAGE (the manager's) and naming the command; no environment is
# made and the store is as it was.
fails_cleanly() {
	dir=$1 msg=$2
	shift 2
	karapace --json list >list.before &&
	store_state >before &&
	test_expect_code 1 karapace build "$@" "$dir" >out 2>err &&
	test_must_be_empty out &&
	grep -F "$msg" err &&
	grep "karapace: error: .$M .* failed inside the environment (exit status [1-9][0-9]*)" err &&
	karapace --json list >list &&
	test_cmp list.before list &&
	store_state >after &&
	test_cmp before after &&
	{ test "$1" = --locked || test_path_is_missing "$dir/karapace.lock"; } &&
	ls store/tmp >left && test_must_be_empty left
}

test_expect_success 'a locked version no longer in the repository: the build stops, quoting the manager' '
	repo_has "kp-lib-*" "kp-hello-1.1-*" "kp-post-*" "kp-ep-*" &&
	karapace destroy $(cat id) >/dev/null &&
	fails_cleanly proj "$MSG_NO_VERSION" --locked
'

test_expect_success 'a failing scriptlet: the build stops, quoting rpm and the scriptlet' '
	repo_has "kp-lib-*" "kp-badpre-*" &&
	write_manifest bad ../image.tar.zst kp-badpre &&
	fails_cleanly bad "$MSG_SCRIPTLET" &&
	grep "kp-badpre: this package refuses to install" err
'

test_expect_success 'a dependency no package provides: the build stops, quoting the manager' '
	repo_has "kp-lib-*" "kp-unresolved-*" &&
	write_manifest unres ../image.tar.zst kp-unresolved &&
	fails_cleanly unres "$MSG_UNRESOLVED"
'

test_expect_success 'corrupt repository metadata: the build stops, quoting the manager' '
	repo_has "kp-lib-*" "kp-hello-1.0-*" &&
	for f in repo/repodata/*-primary.xml.gz; do
		echo "not gzip" >"$f" || return 1
	done &&
	write_manifest meta ../image.tar.zst kp-hello &&
	fails_cleanly meta "$MSG_METADATA"
'

# rootless AS DIR: as AS, in DIR, builds kp-hello over the image, runs it,
# installs kp-tool at run time, and checks the lock's versions; then removes
# the store (disk).
rootless() {
	(as=$1 && cd "$2" &&
	 export KARAPACE_STORE="$PWD/st" &&
	 $as karapace build proj --name mine >id 2>err &&
	 grep "built mine (2 package(s) installed)" err &&
	 grep -A1 "^name = \"kp-hello\"" proj/karapace.lock | grep "version = \"0:1.0-1\"" &&
	 $as karapace exec mine -- kp-hello >out &&
	 echo "kp-hello 1.0" >expect && test_cmp expect out &&
	 $as karapace exec mine -- $RUNTIME_INSTALL >log 2>&1 &&
	 $as karapace exec mine -- kp-tool >out &&
	 echo "kp-tool 1.0" >expect && test_cmp expect out &&
	 ls st/tmp >left && test_must_be_empty left &&
	 rm -rf st)
}

test_expect_success ROOTLESS_SINGLE "rootless without a subordinate range: $M installs with a single-id map" '
	repo_has "kp-lib-*" "kp-hello-1.0-*" "kp-tool-*" &&
	rm -rf store &&
	mkdir rl && write_manifest rl/proj ../../image.tar.zst kp-hello &&
	chown -R $KP_TEST_USER_SINGLE rl &&
	rootless as_single_user rl
'

test_expect_success SUBUID "rootless with a subordinate range: the same" '
	mkdir rs && write_manifest rs/proj ../../image.tar.zst kp-hello &&
	chown -R $KP_TEST_USER rs &&
	rootless as_user rs
'

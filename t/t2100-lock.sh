#!/bin/sh
test_description='kp-resolve: lock file, identity, integrity and intent checks'
. ./lib.sh

D=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
D2=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

test_expect_success 'setup' '
	mkdir env &&
	cat >env/karapace.toml <<-\EOF &&
	manifest_version = 1
	[base]
	image = "debian/bookworm"
	[system]
	packages = ["git", "curl"]
	[mounts]
	work = ".:/work"
	EOF
	cat >closure <<-\EOF
	# dpkg-query -W -f="${Package} ${Version} ${Architecture}\n"
	git 1:2.39.5-0+deb12u1 amd64
	curl 7.88.1-10+deb12u8 amd64
	libc6 2.36-9+deb12u9 amd64
	EOF
'

test_expect_success 'offline: an unpinned image without a known digest does not resolve' '
	test_expect_code 1 kp-resolve env 2>err &&
	test_path_is_missing env/karapace.lock &&
	echo "kp-resolve: error: cannot resolve base image \"debian/bookworm\": this build has no image resolver, and the digest is not known: pin the reference (REF@blake3:DIGEST), keep a karapace.lock that locks it, or pass --image-digest" >expect &&
	test_cmp expect err
'

test_expect_success 'offline: packages need a closure' '
	test_expect_code 1 kp-resolve --image-digest $D env 2>err &&
	test_path_is_missing env/karapace.lock
'

test_expect_success 'bad --image-digest is a usage error' '
	test_expect_code 64 kp-resolve --image-digest abc env
'

test_expect_success 'resolve writes karapace.lock beside the manifest and prints env_id' '
	kp-resolve --image-digest $D --closure closure env >id &&
	test_path_is_file env/karapace.lock &&
	grep "^env_id = \"$(cat id)\"$" env/karapace.lock &&
	echo "short_id = \"$(cut -c1-12 id)\"" >expect &&
	grep "^short_id" env/karapace.lock >actual &&
	test_cmp expect actual &&
	grep -c "^\[\[packages\]\]" env/karapace.lock >n &&
	echo 3 >expect && test_cmp expect n
'

test_expect_success 'env_id is the b3sum of the canonical lock' '
	kp-resolve --canonical env >canon &&
	b3sum --no-names canon >actual &&
	test_cmp id actual
'

test_expect_success 'the lock has the documented layout' '
	kp-resolve --stdout env >lock &&
	test_cmp env/karapace.lock lock &&
	sed -n "1,12p" lock >actual &&
	cat >expect <<-EOF &&
	# Written by Karapace (kp-resolve). Do not edit: see docs/lock.md.
	lock_version = 1
	env_id = "$(cat id)"
	short_id = "$(cut -c1-12 id)"

	[base]
	image = "debian/bookworm"
	digest = "$D"

	[system]
	packages = ["curl", "git"]

	EOF
	test_cmp expect actual
'

test_expect_success 're-resolving reuses the lock offline and gives the same env_id' '
	kp-resolve env >id2 &&
	test_cmp id id2
'

test_expect_success 'same env_id whatever the key order, spacing, comments and lock location' '
	mkdir other &&
	cat >other/karapace.toml <<-\EOF &&
	# the same environment, written differently
	manifest_version=1
	mounts = { work = "./:/work/" }
	[system]
	packages = [ "curl" , "git", "git" ]   # dup
	[base]
	image   =   "debian/bookworm"
	[runtime]
	backend = "Namespace"
	EOF
	kp-resolve --image-digest $D --closure closure other >id3 &&
	test_cmp id id3
'

test_expect_success 'check passes on a fresh lock' '
	kp-resolve --check env >out &&
	test_cmp id out
'

test_expect_success 'integrity: a hand-edited lock fails with exit 2' '
	cp env/karapace.lock saved.lock &&
	test_when_finished "cp saved.lock env/karapace.lock" &&
	sed -i "s/^version = \"2.36-9+deb12u9\"/version = \"2.36-9+deb12u10\"/" env/karapace.lock &&
	test_expect_code 2 kp-resolve --check env 2>err &&
	grep "integrity check failed: env_id is $(cat id) but the locked content hashes to" err
'

test_expect_success 'integrity: reordering or reformatting the lock is harmless' '
	cp env/karapace.lock saved.lock &&
	test_when_finished "cp saved.lock env/karapace.lock" &&
	sed -i "s/^packages = \[\"curl\", \"git\"\]/packages = [ \"git\",\n  \"curl\" ]  # reordered/" env/karapace.lock &&
	kp-resolve --check env >out &&
	test_cmp id out
'

test_expect_success 'intent: a changed manifest lists what drifted, exit 1' '
	cp env/karapace.toml saved.toml &&
	test_when_finished "cp saved.toml env/karapace.toml" &&
	sed -i "s/\"git\", \"curl\"/\"git\"/; s|.:/work|.:/work:ro|" env/karapace.toml &&
	test_expect_code 1 kp-resolve --check env 2>err &&
	cat >expect <<-\EOF &&
	kp-resolve: error: env/karapace.lock: lock is out of date with env/karapace.toml; these fields drifted:
	  mounts.work.read_only: locked false, manifest true
	  system.packages: locked ["curl","git"], manifest ["git"]
	run `kp-resolve` to lock the manifest again
	EOF
	test_cmp expect err
'

test_expect_success 'a pinned reference carries its own digest' '
	mkdir pinned &&
	printf "manifest_version = 1\n[base]\nimage = \"debian/bookworm@blake3:%s\"\n" $D2 >pinned/karapace.toml &&
	kp-resolve pinned >pid &&
	grep "^digest = \"$D2\"" pinned/karapace.lock &&
	kp-resolve --check pinned
'

test_expect_success 'a lock of another version, or with unknown keys, is invalid' '
	mkdir bad && cp env/karapace.toml bad/ &&
	sed "s/^lock_version = 1/lock_version = 9/" env/karapace.lock >bad/karapace.lock &&
	test_expect_code 2 kp-resolve --check bad 2>err &&
	grep "karapace.lock:2:16: lock_version: unsupported lock_version 9" err &&
	sed "s/^\[runtime\]/[runtime]\nfoo = 1/" env/karapace.lock >bad/karapace.lock &&
	test_expect_code 2 kp-resolve --check bad 2>err &&
	grep "runtime.foo: unknown field" err
'

test_done

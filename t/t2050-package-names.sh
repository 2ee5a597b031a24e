#!/bin/sh
test_description='package names are names: syntax is refused in one line with its exit status, the store unchanged; names with + install literally'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

# refused CODE DIR MESSAGE [AS]: `karapace build DIR` (as AS) exits CODE with
# one line, "karapace: error: MESSAGE...", writes no lock and leaves the store
# unchanged.
refused() {
	code=$1 dir=$2 msg=$3 as=$4
	store_state "$KARAPACE_STORE" >state.before &&
	test_expect_code "$code" $as karapace build "$dir" >out 2>err &&
	test_must_be_empty out &&
	test_line_count = 1 err &&
	case "$(cat err)" in
	"karapace: error: $msg"*) ;;
	*) echo "expected \"karapace: error: $msg...\", got \"$(cat err)\"" >&4; false ;;
	esac &&
	test_path_is_missing "$dir/karapace.lock" &&
	store_state "$KARAPACE_STORE" >state.after &&
	store_unchanged
}

test_expect_success 'setup: a store' '
	KARAPACE_STORE="$HOME/store" && export KARAPACE_STORE &&
	karapace init >/dev/null
'

test_expect_success 'syntax every manager shares is a manifest error (exit 2) at file:line:col; names pass' '
	for bad in "jq=1.6" "jq>=1" "core/jq" "jq:amd64" "lib*" "x[ab]" "-y" "/usr/bin/x" \
		"pkgconfig(foo)" "@group" "?exact-name(x)" "~njq" "!jq"; do
		write_manifest m debian:12 curl "$bad" &&
		refused 2 m "m/karapace.toml:5:21: system.packages[1]: invalid package name \"$bad\": " || return 1
	done &&
	write_manifest ok debian:12 "g++" "libstdc++6" "python3.11" "gcc-c++" &&
	kp-resolve --normalize ok/karapace.toml >out &&
	grep "\"g++\",\"gcc-c++\",\"libstdc++6\",\"python3.11\"" out
'

use_debian_image

# The fixture image with one more package in its local repository: kp-c++,
# whose name ends in "+", as a tarball image; imported and checked out by a
# first build (a refusal that needs the manager comes after both).
test_expect_success 'setup: an image whose repository has kp-c++, imported' '
	mkdir -p deb/DEBIAN deb/usr/share/kp-c++ repo/srv/kp-repo &&
	echo plus >deb/usr/share/kp-c++/marker &&
	printf "%s\n" "Package: kp-c++" "Version: 1.0" "Architecture: all" \
		"Maintainer: Karapace tests <t@example.invalid>" "Description: a name ending in +" >deb/DEBIAN/control &&
	dpkg-deb --root-owner-group -Zgzip --build deb repo/srv/kp-repo/kp-c++_1.0_all.deb >/dev/null &&
	cp "$IMAGE"/srv/kp-repo/*.deb repo/srv/kp-repo/ &&
	(cd repo/srv/kp-repo && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null) &&
	grep "^Package: kp-c++$" repo/srv/kp-repo/Packages &&
	tar -C "$IMAGE" --numeric-owner --exclude=./srv/kp-repo/Packages -cf image.tar . &&
	tar -C repo --numeric-owner -rf image.tar ./srv/kp-repo/Packages ./srv/kp-repo/kp-c++_1.0_all.deb &&
	chmod a+r image.tar &&
	write_manifest first ../image.tar hello &&
	karapace build first >/dev/null 2>&1
'

test_expect_success 'apt: a trailing - (remove), upper case, _ and one letter are refused before anything runs (exit 1)' '
	for bad in "jq-:a trailing '"'"'-'"'"' tells apt-get to remove the package" \
		"JQ:Debian package names are lower case" \
		"lib_jq:Debian package names use a-z, 0-9 and + - . only" \
		"j:Debian package names are at least two characters long"; do
		name=${bad%%:*} reason=${bad#*:} &&
		write_manifest apt ../image.tar hello "$name" &&
		refused 1 apt "apt: package name \"$name\": $reason" || return 1
	done
'

# A name with "+" is found as written; names no package has, which apt-get
# would read as a regex, a glob or an action suffix and install something else
# (libjq1 for lib.q, jq for jq+), are passed literally and apt finds nothing.
test_expect_success 'names match literally: kp-c++ installs, a name no package has installs nothing (no regex, glob or + suffix)' '
	write_manifest plus ../image.tar kp-c++ libstdc++6 &&
	karapace build plus --name plus >id 2>err &&
	grep "built plus (1 package(s) installed)" err &&
	grep "^name = \"kp-c++\"$" plus/karapace.lock &&
	karapace exec plus -- cat /usr/share/kp-c++/marker >out &&
	echo plus >expect && test_cmp expect out &&
	for name in lib.q "jq+"; do
		write_manifest lit ../image.tar "$name" &&
		store_state "$KARAPACE_STORE" >state.before &&
		test_expect_code 1 karapace build lit >out 2>err &&
		grep "Unable to locate package $name:native" err &&
		tail -n 1 err >last &&
		grep "^karapace: error: \`apt-get .* install -- $name:native\` failed inside the environment (exit status 100)$" last &&
		test_path_is_missing lit/karapace.lock &&
		store_state "$KARAPACE_STORE" >state.after &&
		store_unchanged || return 1
	done
'

# rootless AS USER DIR: as AS, in a store of its own: kp-c++ installs; jq-
# is refused with the store unchanged; lib.q installs nothing.
rootless() {
	(as=$1 && mkdir "$3" && cd "$3" &&
	 cp ../image.tar . &&
	 write_manifest plus ../image.tar kp-c++ &&
	 write_manifest apt ../image.tar "jq-" &&
	 write_manifest lit ../image.tar lib.q &&
	 chown -R "$2" . &&
	 KARAPACE_STORE="$PWD/st" && export KARAPACE_STORE &&
	 $as karapace build plus --name plus >id 2>err &&
	 grep "built plus (1 package(s) installed)" err &&
	 $as karapace exec plus -- cat /usr/share/kp-c++/marker >out &&
	 echo plus >expect && test_cmp expect out &&
	 refused 1 apt "apt: package name \"jq-\": a trailing '-' tells apt-get to remove the package" "$as" &&
	 store_state st >state.before &&
	 test_expect_code 1 $as karapace build lit >out 2>err &&
	 grep "Unable to locate package lib.q:native" err &&
	 test_path_is_missing lit/karapace.lock &&
	 store_state st >state.after && store_unchanged)
}

test_expect_success ROOTLESS_SINGLE 'rootless without a subordinate range: the same' '
	rootless as_single_user $KP_TEST_USER_SINGLE rl
'

test_expect_success SUBUID 'rootless with a subordinate range: the same' '
	rootless as_user $KP_TEST_USER rs
'

test_done

#!/bin/sh
test_description='manifest mounts: local roots, sensitive paths, remote environments and trust'
. ./lib.sh
. "$TEST_DIRECTORY/lib-env.sh"

use_debian_image

# refused WHAT CMD...: CMD exits 125 with one line of error naming WHAT, and
# nothing in the store changed.
refused() {
	what=$1 && shift &&
	snapshot >before &&
	{ "$@" 2>err; echo $? >status; } &&
	echo 125 >expect.status && test_cmp expect.status status &&
	test_line_count = 1 err &&
	grep -e "$what" err &&
	snapshot >after && test_cmp before after
}

# snapshot: the store's paths and its metadata's content.
snapshot() {
	(cd "$KARAPACE_STORE" && find . | sort && find meta -type f | sort | xargs cat)
}

# mounting DIR LINE...: a manifest in DIR over the image, no packages, with
# these [mounts] lines.
mounting() {
	dir=$1 && shift &&
	write_manifest "$dir" "$IMAGE" &&
	echo "[mounts]" >>"$dir/karapace.toml" &&
	for l in "$@"; do echo "$l" >>"$dir/karapace.toml"; done
}

# A directory in another home: under /home, not under $HOME.
other=/home/kp-t5200-other

# built DIR LINE...: mounting DIR LINE..., built as the environment DIR.
built() {
	mounting "$@" && karapace build "$1" --name "$(basename "$1")" >/dev/null 2>&1
}

# configured TEXT CMD...: CMD with TEXT as the configuration file.
configured() {
	mkdir -p .config/karapace && printf "$1" >.config/karapace/config.toml && shift &&
	"$@" && rm .config/karapace/config.toml
}

test_expect_success 'setup: keys in ~/.ssh, a directory in another home under /home' '
	mkdir -p .ssh shared && echo key >.ssh/id && echo shared >shared/f &&
	rm -rf "$other" && mkdir -p "$other" &&
	echo other >"$other/f" && chmod -R a+rX "$other" .ssh shared
'

test_expect_success 'a manifest kept directly in $HOME cannot mount . (it holds ~/.ssh)' '
	mounting "$HOME" "work = \".:/work\"" &&
	karapace build "$HOME" --name inhome >/dev/null 2>&1 &&
	refused "mounts.work \.: ~ contains ~/.ssh, a sensitive path" karapace exec inhome -- true &&
	refused "mounts.work \.: ~ contains ~/.gnupg, a sensitive path" karapace exec --allow-mount ~/.ssh inhome -- true &&
	configured "[sandbox]\nallow_mounts = [\"~/.ssh\", \"~/.gnupg\", \"~/.aws\", \"~/.kube\", \"~/.docker\", \"~/.config/karapace\", \"~/store\"]\n" \
		karapace exec inhome -- cat /work/.ssh/id >out &&
	echo key >expect && test_cmp expect out
'

test_expect_success '~/.ssh itself, or a file in it, is refused; allowing it on the command line or in the config works' '
	built keys "ssh = \"~/.ssh:/keys:ro\"" &&
	refused "mounts.ssh ~/.ssh: ~/.ssh is ~/.ssh, a sensitive path" karapace exec keys -- true &&
	built key1 "ssh = \"~/.ssh/id:/id:ro\"" &&
	refused "~/.ssh/id lies under ~/.ssh" karapace exec key1 -- true &&
	refused "~/.ssh/id lies under ~/.ssh" karapace exec --allow-mount "$HOME" key1 -- true &&
	karapace exec --allow-mount ~/.ssh/id key1 -- cat /id >out &&
	echo key >expect && test_cmp expect out &&
	configured "[sandbox]\nallow_mounts = [\"~/.ssh\"]\n" karapace exec keys -- cat /keys/id >out &&
	test_cmp expect out
'

test_expect_success 'the store and / are sensitive for every mount' '
	built st "store = \"~/store:/s\"" &&
	refused "~/store is ~/store, a sensitive path" karapace exec st -- true &&
	built root "all = \"/:/host\"" &&
	refused "resolves to /, outside the allowed roots" karapace exec root -- true &&
	refused "mounts.all /: / contains /etc, a sensitive path" karapace exec --allow-mount / root -- true
'

test_expect_success 'a local mount must lie under the manifest directory, $HOME, /tmp or an allowed root' '
	built far "far = \"$other:/far\"" &&
	refused "mounts.far $other: resolves to $other, outside the allowed roots" karapace exec far -- true &&
	karapace exec --allow-mount "$other" far -- cat /far/f >out &&
	echo other >expect && test_cmp expect out &&
	configured "[sandbox]\nallow_mounts = [\"$other\"]\n" karapace exec far -- cat /far/f >out &&
	test_cmp expect out
'

test_expect_success 'symlinks and .. are resolved before the roots are checked' '
	mounting esc "esc = \"./out:/esc\"" &&
	ln -s "$other" esc/out &&
	karapace build esc --name esc >/dev/null 2>&1 &&
	refused "mounts.esc out: resolves to $other, outside the allowed roots" karapace exec esc -- true &&
	built up "up = \"../..:/up\"" &&
	case "$(cd .. && pwd -P)" in
	/tmp | /tmp/*) say "this checkout lies under /tmp, an allowed root: the .. case cannot leave it here" ;;
	*) refused "mounts.up ../..: resolves to $(cd .. && pwd -P), outside the allowed roots" karapace exec up -- true ;;
	esac
'

test_expect_success 'the manifest directory, $HOME and /tmp stay allowed' '
	mkdir -p own/data && echo own >own/data/f &&
	tmpd=$(mktemp -d /tmp/kp-t5200.XXXXXX) && test_when_finished "rm -rf $tmpd" &&
	built own "d = \"./data:/d:ro\"" "s = \"~/shared:/s:ro\"" "t = \"$tmpd:/t:ro\"" &&
	karapace exec own -- cat /d/f /s/f >out &&
	printf "own\nshared\n" >expect && test_cmp expect out &&
	karapace --json inspect own >j && grep "\"origin\":\"local\"" j
'

# remote NAME DIR: records DIR's lock as a pulled environment, its env_id in
# DIR/id (the local build it came from is destroyed first).
remote() {
	karapace build "$2" >"$2/id" 2>/dev/null &&
	karapace destroy "$(cat "$2/id")" >/dev/null &&
	base=$(sed -n "s/^digest = \"\(.*\)\"$/\1/p" "$2/karapace.lock") &&
	kp-record-env "$2/karapace.lock" "$base" >"$2/rid" &&
	test_cmp "$2/id" "$2/rid"
}

test_expect_success 'a remote environment that asks for nothing of the host runs at once' '
	write_manifest plain "$IMAGE" &&
	echo "[integration]" >>plain/karapace.toml &&
	remote plain plain &&
	karapace --json inspect $(cat plain/id) >j && grep "\"origin\":\"remote\"" j &&
	karapace exec $(cat plain/id) -- true
'

test_expect_success 'a remote environment asking for mounts or integration is refused until trusted' '
	mounting rem "s = \"~/shared:/s:ro\"" &&
	printf "[integration]\nhome = true\n" >>rem/karapace.toml &&
	remote rem rem && id=$(cat rem/id) &&
	refused "environment $(echo $id | cut -c1-12) is remote and not trusted: it asks for mount s=~/shared:/s:ro, home;" \
		karapace exec $id -- true &&
	refused "remote and not trusted" karapace enter $id -- true &&
	karapace exec --trust $id -- cat /s/f >out &&
	echo shared >expect && test_cmp expect out &&
	refused "remote and not trusted" karapace exec $id -- true &&
	karapace trust $id >out && grep "trusted .*: it may use mount s=~/shared:/s:ro, home" out &&
	karapace trust --list >out && grep "$(echo $id | cut -c1-12)" out &&
	karapace --json trust $id >j && grep "\"origin\":\"remote\"" j && grep "\"trusted\":true" j &&
	karapace exec $id -- cat /s/f >out && test_cmp expect out &&
	karapace trust --revoke $id >out && grep "no longer trusting" out &&
	karapace --json trust --list >j && ! grep "$id" j &&
	refused "remote and not trusted" karapace exec $id -- true
'

test_expect_success 'building the same lock from a local manifest makes the environment local' '
	id=$(cat rem/id) &&
	karapace build rem >id2 2>/dev/null && echo $id >expect && test_cmp expect id2 &&
	karapace --json inspect $id >j && grep "\"origin\":\"local\"" j &&
	karapace exec $id -- cat /s/f >out &&
	echo shared >expect && test_cmp expect out
'

test_expect_success 'a trusted remote environment still follows the policy; relative sources have no directory' '
	mounting rel "d = \"./data:/d\"" &&
	remote rel rel && id=$(cat rel/id) &&
	karapace trust $id >/dev/null &&
	refused "mounts.d data: a relative source needs the manifest" karapace exec $id -- true &&
	mounting rkeys "k = \"~/.ssh:/k\"" &&
	remote rkeys rkeys &&
	refused "~/.ssh is ~/.ssh, a sensitive path" karapace exec --trust $(cat rkeys/id) -- true &&
	mounting rfar "far = \"$other:/far\"" &&
	remote rfar rfar &&
	refused "outside the allowed roots" karapace exec --trust $(cat rfar/id) -- true
'

test_expect_success 'kp-record-env refuses a recorded env_id, an edited lock and a missing layer' '
	base=$(sed -n "s/^digest = \"\(.*\)\"$/\1/p" plain/karapace.lock) &&
	snapshot >before &&
	test_expect_code 1 kp-record-env plain/karapace.lock $base 2>err &&
	grep "already in the store as environment" err &&
	sed "s|^host = \"/home/kp-t5200-other\"|host = \"/etc\"|" rfar/karapace.lock >edited.lock &&
	! test_cmp rfar/karapace.lock edited.lock &&
	test_expect_code 2 kp-record-env edited.lock $base 2>err &&
	grep "integrity check failed" err &&
	write_manifest fresh "$IMAGE" && echo "[integration]" >>fresh/karapace.toml &&
	echo "fonts = true" >>fresh/karapace.toml &&
	karapace build fresh >id 2>/dev/null && karapace destroy $(cat id) >/dev/null &&
	snapshot >before &&
	test_expect_code 1 kp-record-env fresh/karapace.lock $base $(printf "%064d" 0) 2>err &&
	grep "unknown revision" err &&
	snapshot >after && test_cmp before after
'

test_expect_success 'kp-sandbox refuses sensitive paths unless --allow names them' '
	test_expect_code 125 kp-sandbox --rootfs "$IMAGE" --allow "$HOME" --bind "$HOME:/tmp/h" -- true 2>err &&
	grep "contains ~/.ssh, a sensitive path; add it with --allow" err &&
	kp-sandbox --rootfs "$IMAGE" --allow "$HOME" --allow ~/.ssh --bind "$HOME/.ssh:/tmp/k" -- cat /tmp/k/id >out &&
	echo key >expect && test_cmp expect out
'

# rootless AS USER DIR: as the user that AS runs commands as (USER), in a
# home of its own (DIR) with keys in it, over a copy of the image it can read:
# . in $HOME, another home, a remote environment until trusted.
rootless() {
	(as=$1 h=$3 &&
	 mkdir -p $h/.ssh $h/shared && echo key >$h/.ssh/id && echo shared >$h/shared/f &&
	 tar -C "$IMAGE" --numeric-owner -cf $h/image.tar . &&
	 write_manifest $h image.tar && printf "[mounts]\nwork = \".:/work\"\n" >>$h/karapace.toml &&
	 write_manifest $h/far ../image.tar && printf "[mounts]\nfar = \"$other:/far\"\n" >>$h/far/karapace.toml &&
	 write_manifest $h/rem ../image.tar && printf "[mounts]\ns = \"~/shared:/s:ro\"\n" >>$h/rem/karapace.toml &&
	 chown -R $2 $h && cd $h && HOME=$PWD KARAPACE_STORE=$PWD/st && export HOME KARAPACE_STORE &&
	 $as karapace build . --name inhome >/dev/null 2>&1 &&
	 refused "mounts.work \.: ~ contains ~/.ssh, a sensitive path" $as karapace exec inhome -- true &&
	 $as karapace build far --name far >/dev/null 2>&1 &&
	 refused "mounts.far $other: resolves to $other, outside the allowed roots" $as karapace exec far -- true &&
	 $as karapace exec --allow-mount "$other" far -- cat /far/f >out &&
	 echo other >expect && test_cmp expect out &&
	 $as karapace build rem >id 2>/dev/null && $as karapace destroy $(cat id) >/dev/null &&
	 $as kp-record-env rem/karapace.lock $(sed -n "s/^digest = \"\(.*\)\"$/\1/p" rem/karapace.lock) >/dev/null &&
	 refused "remote and not trusted: it asks for mount s=~/shared:/s:ro;" $as karapace exec $(cat id) -- true &&
	 $as karapace trust $(cat id) >/dev/null &&
	 $as karapace exec $(cat id) -- cat /s/f >out &&
	 echo shared >expect && test_cmp expect out)
}

test_expect_success ROOTLESS 'as an unprivileged user: the same refusals, the same trust' '
	rootless as_user $KP_TEST_USER rl
'

test_expect_success ROOTLESS_SINGLE 'as an unprivileged user without a subordinate range: the same' '
	rootless as_single_user $KP_TEST_USER_SINGLE rs
'

test_expect_success 'cleanup' '
	rm -rf "$other"
'

test_done

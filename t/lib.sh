# t/lib.sh: the Karapace shell test library, in the style of git's test-lib.sh.
#
# A test script sets test_description, sources this file, runs test_expect_success
# blocks, and ends with test_done. Output is TAP, so `prove` runs the suite.
# Every script runs in a fresh "trash directory.<script>" that is also $HOME.
#
# Options for a script: -v (show commands' output), -i (stop at the first failure),
# -d (keep the trash directory), -x (trace the test bodies).

# Pinned environment, so results do not depend on the caller's.
LC_ALL=C
LANG=C
TZ=UTC
export LC_ALL LANG TZ
unset KARAPACE_STORE KARAPACE_LOG XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME CDPATH

TEST_DIRECTORY=$(cd "$(dirname "$0")" && pwd)
TEST_ROOT=$(cd "$TEST_DIRECTORY/.." && pwd)
export TEST_DIRECTORY TEST_ROOT

# Fixtures that are slow to make (a debootstrap tree) are kept across runs here.
: "${KP_TEST_CACHE:=/var/tmp/karapace-test-cache}"
export KP_TEST_CACHE

# The binaries under test.
: "${KP_BUILD_DIR:=$TEST_ROOT/target/debug}"
if ! test -x "$KP_BUILD_DIR/kp-init"; then
	echo "Bail out! no built binaries in $KP_BUILD_DIR (run cargo build first)"
	exit 1
fi
PATH="$KP_BUILD_DIR:$PATH"
export PATH KP_BUILD_DIR

verbose= immediate= debug= trace=
for arg in "$@"; do
	case "$arg" in
	-v|--verbose) verbose=t ;;
	-i|--immediate) immediate=t ;;
	-d|--debug) debug=t ;;
	-x) trace=t ;;
	*) echo "Bail out! unknown option $arg"; exit 1 ;;
	esac
done

this_test=$(basename "$0" .sh)
TRASH_DIRECTORY="$TEST_DIRECTORY/trash directory.$this_test"
rm -rf "$TRASH_DIRECTORY" || { echo "Bail out! cannot remove $TRASH_DIRECTORY"; exit 1; }
mkdir -p "$TRASH_DIRECTORY" || exit 1
# The rootless user must be able to reach its own test directories.
chmod 755 "$TRASH_DIRECTORY"
HOME="$TRASH_DIRECTORY"
export HOME
cd "$TRASH_DIRECTORY" || exit 1

test_count=0
test_failure=0
test_skipped=0
test_fixed=0
test_broken=0
test_cleanup=
skip_all=

exec 5>&1
exec 6<&0
if test -n "$verbose"; then
	exec 4>&2 3>&1
else
	exec 4>/dev/null 3>/dev/null
fi

say() { echo "$*"; }

# Run a test body in this shell, with output to fd 3/4 and errexit off.
test_eval_() {
	test_cleanup=:
	if test -n "$trace"; then
		eval "set -x; $1" </dev/null >&3 2>&4
	else
		eval "$1" </dev/null >&3 2>&4
	fi
	eval_ret=$?
	if test -n "$test_cleanup" && test "$test_cleanup" != ":"; then
		eval "$test_cleanup" </dev/null >&3 2>&4 || {
			echo "# cleanup failed: $test_cleanup" >&4
			test "$eval_ret" = 0 && eval_ret=1
		}
	fi
	set +x
	return $eval_ret
}

# test_when_finished CMD: run CMD after the current test, pass or fail.
test_when_finished() {
	test_cleanup="{ $*
		} && (exit \"\$eval_ret\"); eval_ret=\$?; $test_cleanup"
}

# Prerequisites: test_set_prereq NAME, test_lazy_prereq NAME 'script'.
satisfied_prereq=" "
lazily_testable_prereq=" "
test_set_prereq() { satisfied_prereq="$satisfied_prereq$1 "; }
test_lazy_prereq() {
	lazily_testable_prereq="$lazily_testable_prereq$1 "
	eval "test_prereq_lazily_$1=\$2"
}
unsatisfied_prereq=" "

test_have_prereq() {
	for p in $(echo "$1" | tr ',' ' '); do
		negate=
		case "$p" in !*) negate=t; p=${p#!} ;; esac
		case "$satisfied_prereq" in
		*" $p "*) ok=t ;;
		*)
			case "$unsatisfied_prereq" in
			*" $p "*) ok= ;;
			*)
				case "$lazily_testable_prereq" in
				*" $p "*)
					eval "script=\$test_prereq_lazily_$p"
					if (mkdir -p "$TRASH_DIRECTORY/prereq-$p" && cd "$TRASH_DIRECTORY/prereq-$p" && eval "$script") >&3 2>&4 </dev/null; then
						test_set_prereq "$p"; ok=t
					else
						unsatisfied_prereq="$unsatisfied_prereq$p "; ok=
					fi
					rm -rf "$TRASH_DIRECTORY/prereq-$p"
					;;
				*) ok= ;;
				esac
				;;
			esac
			;;
		esac
		if test -n "$negate"; then
			test -z "$ok" || return 1
		else
			test -n "$ok" || return 1
		fi
	done
	return 0
}

test_ok_() { test_count=$((test_count + 1)); say "ok $test_count - $1"; }
test_failure_() {
	test_count=$((test_count + 1)); test_failure=$((test_failure + 1))
	say "not ok $test_count - $1"
	shift
	echo "$*" | sed -e 's/^/#	/'
	test -z "$immediate" || { test_done_; exit 1; }
}
test_skip_() {
	test_count=$((test_count + 1)); test_skipped=$((test_skipped + 1))
	say "ok $test_count # skip $1 (missing $2)"
}

# test_expect_success [PREREQ] 'title' 'body'
test_expect_success() {
	test "$#" = 3 && { prereq=$1; shift; } || prereq=
	test "$#" = 2 || { echo "Bail out! bug in the test script: test_expect_success needs 2 or 3 arguments"; exit 1; }
	if test -n "$prereq" && ! test_have_prereq "$prereq"; then
		test_skip_ "$1" "$prereq"
		return
	fi
	echo "# running: $1" >&3
	if test_eval_ "$2"; then
		test_ok_ "$1"
	else
		test_failure_ "$@"
	fi
}

# test_expect_failure: a known breakage, reported as TODO.
test_expect_failure() {
	test "$#" = 3 && { prereq=$1; shift; } || prereq=
	if test -n "$prereq" && ! test_have_prereq "$prereq"; then
		test_skip_ "$1" "$prereq"
		return
	fi
	test_count=$((test_count + 1))
	if test_eval_ "$2"; then
		test_fixed=$((test_fixed + 1))
		say "ok $test_count - $1 # TODO known breakage vanished"
	else
		test_broken=$((test_broken + 1))
		say "not ok $test_count - $1 # TODO known breakage"
	fi
}

# test_must_fail [ok=CODE,...] CMD...: CMD must exit non-zero but not crash. A
# Rust panic exits 101 and a signal 129-192: those are failures of the test, not
# the expected clean refusal.
test_must_fail() {
	case "$1" in
	ok=*) _ok=${1#ok=}; shift ;;
	*) _ok= ;;
	esac
	"$@" 2>&7
	exit_code=$?
	if test $exit_code -eq 0; then
		echo >&4 "test_must_fail: command succeeded: $*"
		return 1
	elif test $exit_code -eq 101; then
		echo >&4 "test_must_fail: command panicked: $*"
		return 1
	elif test $exit_code -gt 128 && test $exit_code -le 192; then
		echo >&4 "test_must_fail: died by signal $((exit_code - 128)): $*"
		return 1
	elif test $exit_code -eq 127; then
		echo >&4 "test_must_fail: command not found: $*"
		return 1
	fi
	return 0
} 7>&2 2>&4

# test_expect_code CODE CMD...: CMD must exit with exactly CODE.
test_expect_code() {
	want=$1; shift
	"$@" 2>&7
	exit_code=$?
	test "$exit_code" = "$want" && return 0
	echo >&4 "test_expect_code: command exited with $exit_code, we wanted $want: $*"
	return 1
} 7>&2 2>&4

# test_cmp EXPECTED ACTUAL: the files are equal (shows a diff when not).
test_cmp() {
	diff -u "$1" "$2" >&4 || { echo >&4 "test_cmp: $1 and $2 differ"; return 1; }
}

# test_file_not_empty, test_path_is_file/dir/missing: checks with a message.
test_path_is_file() { test -f "$1" || { echo >&4 "file $1 does not exist"; return 1; }; }
test_path_is_dir() { test -d "$1" || { echo >&4 "directory $1 does not exist"; return 1; }; }
test_path_is_missing() { ! test -e "$1" && ! test -L "$1" || { echo >&4 "path $1 exists"; return 1; }; }
test_must_be_empty() { test -f "$1" && ! test -s "$1" || { echo >&4 "$1 is not empty or missing:"; cat "$1" >&4 2>/dev/null; return 1; }; }
test_file_not_empty() { test -s "$1" || { echo >&4 "file $1 is empty or missing"; return 1; }; }
test_line_count() {
	# test_line_count = N FILE
	n=$(wc -l <"$3")
	test "$n" "$1" "$2" || { echo >&4 "test_line_count: $3 has $n lines, expected $1 $2"; cat "$3" >&4; return 1; }
}

test_done_() {
	test_results_dir="$TEST_DIRECTORY/test-results"
	mkdir -p "$test_results_dir"
	printf 'total %s\nfailed %s\nskipped %s\n' "$test_count" "$test_failure" "$test_skipped" >"$test_results_dir/$this_test.counts"
	if test -n "$skip_all" && test "$test_count" = 0; then
		say "1..0 # SKIP $skip_all"
	else
		test -n "$skip_all" && say "# skipped the rest: $skip_all"
		say "1..$test_count"
	fi
}

test_done() {
	test_done_
	if test "$test_failure" = 0; then
		cd "$TEST_DIRECTORY" || exit 1
		test -n "$debug" || chmod -R u+w "$TRASH_DIRECTORY" 2>/dev/null
		test -n "$debug" || rm -rf "$TRASH_DIRECTORY"
		exit 0
	fi
	exit 1
}

# skip_all="reason"; test_done -- or, shorter:
test_skip_all() { skip_all=$1; test_done; }

# --- Karapace-specific helpers and prerequisites ---

test_lazy_prereq ROOT 'test "$(id -u)" = 0'

# An unprivileged user for rootless tests. As root, create it once if missing.
KP_TEST_USER=kp-test
test_lazy_prereq ROOTLESS '
	test "$(id -u)" = 0 &&
	{ id "$KP_TEST_USER" >/dev/null 2>&1 ||
	  useradd --system --create-home --home-dir /var/lib/kp-test --shell /bin/sh "$KP_TEST_USER"; } &&
	command -v setpriv >/dev/null
'

# as_user CMD...: run CMD as the unprivileged test user, with this PATH, in the
# current directory, HOME set to the current test HOME.
as_user() {
	setpriv --reuid="$KP_TEST_USER" --regid="$KP_TEST_USER" --init-groups \
		env HOME="$HOME" PATH="$PATH" LC_ALL=C TZ=UTC "$@"
}

# A second unprivileged user that never has a subordinate range: rootless
# with a single-id map.
KP_TEST_USER_SINGLE=kp-test-single
test_lazy_prereq ROOTLESS_SINGLE '
	test "$(id -u)" = 0 && command -v setpriv >/dev/null &&
	{ id "$KP_TEST_USER_SINGLE" >/dev/null 2>&1 ||
	  useradd --system --create-home --home-dir /var/lib/kp-test-single --shell /bin/sh "$KP_TEST_USER_SINGLE"; } &&
	! grep -q "^$KP_TEST_USER_SINGLE:" /etc/subuid /etc/subgid 2>/dev/null
'

# as_single_user CMD...: as_user, as the user without a subordinate range.
as_single_user() {
	KP_TEST_USER=$KP_TEST_USER_SINGLE as_user "$@"
}

# SUBUID: the test user has a subordinate id range (added when absent, as
# useradd does for ordinary users) and newuidmap exists.
test_lazy_prereq SUBUID '
	test_have_prereq ROOTLESS && command -v newuidmap >/dev/null &&
	for f in /etc/subuid /etc/subgid; do
		flock "$f" sh -c "grep -q \"^$KP_TEST_USER:\" $f || echo $KP_TEST_USER:100000:65536 >>$f" || return 1
	done
'

test_lazy_prereq USERNS 'unshare --user --map-root-user true'
test_lazy_prereq OVERLAY '
	mkdir lo up wk mnt &&
	unshare --user --map-root-user --mount sh -c "mount -t overlay -o userxattr,lowerdir=lo,upperdir=up,workdir=wk none mnt"
'
test_lazy_prereq XATTR 'touch f && setfattr -n user.kp -v 1 f && getfattr -n user.kp f'
test_lazy_prereq PYTHON3 'command -v python3'

# t/lib-backend.sh: the sandbox behaviour tests run against the native
# sandbox, or, with KP_TEST_BACKEND=oci (t41xx, which source the t40xx
# scripts), through an OCI runtime: `kp-sandbox` on PATH is then a wrapper
# that adds `--backend oci`, and the script skips, saying why, when no
# runtime works. Cases about the native executor alone need NATIVE.

test_lazy_prereq NATIVE 'test -z "$KP_TEST_BACKEND"'

if test -n "$KP_TEST_BACKEND"; then
	mkdir "$TRASH_DIRECTORY/backend-bin" &&
	printf '#!/bin/sh\nexec "%s/kp-sandbox" --backend %s "$@"\n' "$KP_BUILD_DIR" "$KP_TEST_BACKEND" \
		>"$TRASH_DIRECTORY/backend-bin/kp-sandbox" &&
	chmod 755 "$TRASH_DIRECTORY/backend-bin" "$TRASH_DIRECTORY/backend-bin/kp-sandbox" || exit 1
	PATH="$TRASH_DIRECTORY/backend-bin:$PATH"
	mkdir -p "$TRASH_DIRECTORY/backend-probe/proc" &&
	kp-sandbox --rootfs "$TRASH_DIRECTORY/backend-probe" --print-plan -- true >/dev/null || exit 1
	if ! kp-sandbox --rootfs "$TRASH_DIRECTORY/backend-probe" -- /no-such-command 2>"$TRASH_DIRECTORY/backend-probe.err" &&
		grep -q "OCI runtime" "$TRASH_DIRECTORY/backend-probe.err"; then
		test_skip_all "no OCI runtime works here: $(tail -n 1 "$TRASH_DIRECTORY/backend-probe.err")"
	fi
fi

#!/bin/sh
test_description='dnf (Debian'"'"'s dnf 4) end to end: builds, the lock, --locked, exec, rootless, bad input'
. ./lib.sh
M=dnf
. "$TEST_DIRECTORY/lib-rpm-tests.sh"
test_done

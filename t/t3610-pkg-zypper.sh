#!/bin/sh
test_description='zypper (Debian'"'"'s zypper 1.14) end to end: builds, the lock, --locked, exec, rootless, bad input'
. ./lib.sh
M=zypper
. "$TEST_DIRECTORY/lib-rpm-tests.sh"
test_done

#!/bin/sh
# t4050's boundary cases (host root is not root inside, /proc read-only or
# masked, no caller state crosses, mounts locked, seccomp) through the OCI backend.
KP_TEST_BACKEND=oci
. ./t4050-sandbox-boundary.sh

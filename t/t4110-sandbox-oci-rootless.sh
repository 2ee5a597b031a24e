#!/bin/sh
# t4010's cases (single and subordinate id maps, overlay roots, isolation, as
# an unprivileged user) through the OCI backend.
KP_TEST_BACKEND=oci
. ./t4010-sandbox-rootless.sh

#!/bin/sh
# t4000's cases (exit statuses, signals, streaming, stdin, namespaces,
# read-only roots, overlays) through the OCI backend.
KP_TEST_BACKEND=oci
. ./t4000-sandbox-basic.sh

#!/bin/sh
# The operator passes the command to run (e.g. `bash -c kubernetes-jobmanager.sh ...`).
exec "$@"

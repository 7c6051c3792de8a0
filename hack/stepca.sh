#!/usr/bin/env bash
# Builds smallstep's step-ca, the end-to-end tests' second ACME server, into
# bin/step-ca from its own pinned module in hack/stepca. CGO_ENABLED=0: its
# PIV (YubiKey) support otherwise links libpcsclite, which this machine has
# no headers for and the tests never use. A stamp of the module's inputs
# makes a second run a no-op: no rebuild, not even a relink.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
stamp=$bin/.stepca-stamp
want=$(cd hack/stepca && cat go.mod go.sum tools.go | sha256sum | cut -d' ' -f1)

if [[ -x $bin/step-ca && -f $stamp && $(<"$stamp") == "$want" ]]; then
	exit 0
fi
echo "hack/stepca.sh: building step-ca into bin/ (from scratch this takes a few minutes)" >&2
mkdir -p "$bin"
rm -f "$stamp"
start=$SECONDS
(cd hack/stepca && CGO_ENABLED=0 go build -o "$bin/step-ca" github.com/smallstep/certificates/cmd/step-ca)
echo "hack/stepca.sh: built step-ca in $((SECONDS - start))s" >&2
echo "$want" >"$stamp"

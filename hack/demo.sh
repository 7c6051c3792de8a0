#!/usr/bin/env bash
# make demo: start the local environment (kube-apiserver + Pebble), register an
# issuer, issue a certificate for two names and one IP, and show the status.
# KEEP=1 leaves the environment running and says how to use it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEMO_DIR:-$root/.testenv/demo}

"$root/hack/testenv" up "$dir" >/dev/null
if [[ ${KEEP:-} != 1 ]]; then
	trap '"$root/hack/testenv" down "$dir" >/dev/null' EXIT
fi
# shellcheck disable=SC1091
. "$dir/env"

run() {
	printf '\n\033[1m$ %s\033[0m\n' "$*"
	"$@"
}

kubectl create namespace demo >/dev/null
until kubectl get serviceaccount default -n demo >/dev/null 2>&1; do sleep 0.1; done

run kubectl acme create issuer pebble -n demo --server "$ACME_SERVER" --ca-bundle "$ACME_CA_BUNDLE" \
	--email demo@example.com --ingress-class nginx --agree-tos
# --connect-to sends the self-check to the local ingress controller, as you
# would to a load balancer before DNS points at it.
run kubectl acme issue web -n demo --issuer pebble --domain web.example.test --domain www.example.test \
	--ip 127.0.0.1 --connect-to "$INGRESS_HTTP"
run kubectl acme status -n demo
run kubectl acme get issuers -n demo
run kubectl get secret web -n demo

if [[ ${KEEP:-} == 1 ]]; then
	cat <<MSG

The environment is still running in $dir. Use it from a shell:
  . $dir/env
  kubectl acme status -n demo
  kubectl acme status web -n demo
Stop it with: hack/testenv down $dir
MSG
fi

#!/usr/bin/env bash
# Builds the test environment's programs into bin/ from the pinned hack/tools
# module, and installs busybox for simnode's pods. A stamp of the module's
# inputs makes a second run a no-op: no rebuild, not even a relink.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
stamp=$bin/.tools-stamp
programs=(kube-apiserver kube-controller-manager kubectl pebble pebble-challtestsrv etcd)
packages=(
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kubectl
	github.com/letsencrypt/pebble/v2/cmd/pebble
	github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv
	./etcd
)

want=$(cd hack/tools && cat go.mod go.sum etcd/main.go | sha256sum | cut -d' ' -f1)

up_to_date() {
	[[ -f $stamp && $(<"$stamp") == "$want" ]] || return 1
	local p
	for p in "${programs[@]}"; do
		[[ -x $bin/$p ]] || return 1
	done
}

if ! up_to_date; then
	echo "hack/tools.sh: building ${programs[*]} into bin/ (from scratch this takes several minutes)" >&2
	mkdir -p "$bin"
	rm -f "$stamp"
	(cd hack/tools && go build -o "$bin/" "${packages[@]}")
	echo "$want" >"$stamp"
fi

# Krew (kubectl krew), for the plugin install test, from its own pinned module;
# go build leaves an up-to-date binary alone.
(cd hack/krew && go build -o "$bin/kubectl-krew" sigs.k8s.io/krew/cmd/krew)

# simnode runs solver pods' httpd with it; the static build needs no libraries.
if [[ ! -x /bin/busybox ]]; then
	echo "hack/tools.sh: installing busybox-static" >&2
	sudo=()
	[[ $(id -u) == 0 ]] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

#!/usr/bin/env bash
# Builds the test environment's programs into bin/ from the pinned hack/tools
# module, and installs the Debian packages the node needs: busybox-static
# (simnode's pods, and the solver image of the real node), containerd and runc
# (the real node's container runtime). A stamp of the module's inputs makes a
# second run a no-op: no rebuild, not even a relink.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
stamp=$bin/.tools-stamp
programs=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl pebble pebble-challtestsrv etcd)
packages=(
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kube-scheduler
	k8s.io/kubernetes/cmd/kubelet
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
	echo "hack/tools.sh: building ${programs[*]} into bin/ (from scratch about 16 minutes on two cores, most of it the first, kube-apiserver, whose packages the others share)" >&2
	mkdir -p "$bin"
	rm -f "$stamp"
	# One program at a time, so the log says which one a slow or failed
	# build is; the build cache makes the shared packages compile once.
	for i in "${!packages[@]}"; do
		echo "hack/tools.sh: [$((i + 1))/${#packages[@]}] building ${programs[$i]} (${packages[$i]})" >&2
		start=$SECONDS
		(cd hack/tools && go build -o "$bin/${programs[$i]}" "${packages[$i]}")
		echo "hack/tools.sh: [$((i + 1))/${#packages[@]}] built ${programs[$i]} in $((SECONDS - start))s" >&2
	done
	echo "$want" >"$stamp"
fi

# step-ca, the second ACME server (test/e2e/issue_stepca_test.go), from its own
# pinned module, with a stamp of its own.
hack/stepca.sh

# Krew (kubectl krew), for the plugin install test, from its own pinned module;
# go build leaves an up-to-date binary alone.
(cd hack/krew && go build -o "$bin/kubectl-krew" sigs.k8s.io/krew/cmd/krew)

# cert-manager's module source, for its CRDs (test/e2e/export_test.go), at the
# release its own module pins; a no-op once it is in the module cache.
(cd hack/certmanager && go mod download github.com/cert-manager/cert-manager)

# Debian packages, by the program each provides: busybox-static for simnode's
# pods and the real node's solver image (the static build needs no
# libraries), containerd and runc for the real node (test/env realnode.go).
declare -A debs=([/bin/busybox]=busybox-static [/usr/bin/containerd]=containerd [/usr/sbin/runc]=runc)
missing=()
for prog in "${!debs[@]}"; do
	[[ -x $prog ]] || missing+=("${debs[$prog]}")
done
if ((${#missing[@]})); then
	echo "hack/tools.sh: installing ${missing[*]}" >&2
	sudo=()
	[[ $(id -u) == 0 ]] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Builds the kubectl-acme container image as an OCI image layout tarball,
# without a container engine (hack/image, go-containerregistry): the static
# linux binaries built as hack/release.sh builds them (-trimpath, no VCS
# stamp, the commit's time), one image per platform under one index. Two
# runs on the same commit and Go toolchain give the same digest.
#
#   hack/image.sh [--out DIR] [--platforms "linux/amd64 linux/arm64"] [--ref REF]
#
# Writes DIR/kubectl-acme-oci.tar and DIR/kubectl-acme-oci.digest (the
# index's sha256 digest; a registry copy is pulled as REF@DIGEST). Prints
# REF@DIGEST on stdout. Environment: VERSION, COMMIT, SOURCE_DATE_EPOCH as
# for hack/release.sh; IMAGE_REPO (default ghcr.io/kubectl-acme/kubectl-acme)
# names the image, REF defaults to IMAGE_REPO:VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist/image
platforms="linux/$(go env GOARCH)"
ref=
while (($#)); do
	case $1 in
	--out) out=$2; shift 2 ;;
	--platforms) platforms=$2; shift 2 ;;
	--ref) ref=$2; shift 2 ;;
	*) echo "hack/image.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

version=${VERSION:-$(hack/release.sh --version)}
commit=${COMMIT:-$(git rev-parse HEAD)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
ref=${ref:-${IMAGE_REPO:-ghcr.io/kubectl-acme/kubectl-acme}:$version}
# The binary in the image does not know the image's digest (it cannot: the
# digest covers it); `schedule` in the image is not used to install itself.
ldflags="-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date"

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
args=()
for platform in $platforms; do
	os=${platform%/*}
	arch=${platform#*/}
	if [[ $os != linux ]]; then
		echo "hack/image.sh: $platform: images are linux only" >&2
		exit 2
	fi
	GOOS=$os GOARCH=$arch CGO_ENABLED=0 go build -trimpath -buildvcs=false \
		-ldflags "$ldflags" -o "$stage/kubectl-acme-$arch" ./cmd/kubectl-acme
	args+=("$platform=$stage/kubectl-acme-$arch")
done
go -C hack/image run . -epoch "$epoch" -out "$out" -ref "$ref" -version "$version" "${args[@]}"
echo "$ref@$(cat "$out/kubectl-acme-oci.digest")"

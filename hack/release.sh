#!/usr/bin/env bash
# Builds reproducible release archives of kubectl-acme: for each platform a
# tar.gz holding the binary and LICENSE (and kubectl_complete-acme on Unix),
# the container image of the linux platforms (kubectl-acme-oci.tar and
# .digest, hack/image.sh), plus SHA256SUMS. Two runs on the same commit and Go toolchain give
# byte-identical archives: the build is -trimpath with no VCS stamping, the
# date comes from the last commit, and tar/gzip store no times, owners or
# names of their own.
#
#   hack/release.sh [--out DIR] [--platforms "linux/amd64 darwin/arm64 ..."]
#   hack/release.sh --version        # print the version a release would get
#
# Environment: VERSION (default: the exact v* tag of HEAD, else a Go-style
# pseudo-version v0.0.0-YYYYMMDDHHMMSS-COMMIT; -dirty is appended when the
# tree has changes), COMMIT (default: HEAD), SOURCE_DATE_EPOCH (default: the
# commit time of HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."

all_platforms="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
out=dist
platforms=$all_platforms
print_version=

while (($#)); do
	case $1 in
	--out) out=$2; shift 2 ;;
	--platforms) platforms=$2; shift 2 ;;
	--version) print_version=1; shift ;;
	*) echo "hack/release.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

dirty() { [[ -n $(git status --porcelain) ]]; }

default_version() {
	local v
	if ! v=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
		v=v0.0.0-$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd)-$(git rev-parse --short=12 HEAD)
	fi
	if dirty; then
		v+=-dirty
	fi
	echo "$v"
}

version=${VERSION:-$(default_version)}
if [[ -n $print_version ]]; then
	echo "$version"
	exit 0
fi
# Krew and the ldflags take the version as is: it must be semver with a v.
if [[ ! $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
	echo "hack/release.sh: VERSION=$version is not a semantic version like v1.2.3" >&2
	exit 2
fi
commit=${COMMIT:-$(git rev-parse HEAD)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
if dirty; then
	echo "hack/release.sh: warning: the work tree has uncommitted changes; the archives contain them (version $version)" >&2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

ldflags="-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date"
echo "hack/release.sh: kubectl-acme $version (commit $commit, $date) with $(go env GOVERSION) into $out" >&2

# The container image first (hack/image.sh, its linux platforms), so the
# archives' binaries can name it by digest: `kubectl acme schedule` runs
# IMAGE_REPO:VERSION@DIGEST unless told --image.
image_platforms=
for platform in $platforms; do
	[[ $platform == linux/* ]] && image_platforms+=" $platform"
done
images=()
if [[ -n $image_platforms ]]; then
	image=$(VERSION=$version COMMIT=$commit SOURCE_DATE_EPOCH=$epoch hack/image.sh --out "$out" --platforms "${image_platforms# }")
	ldflags+=" -X main.image=$image"
	images=(kubectl-acme-oci.tar)
	echo "  kubectl-acme-oci.tar  $image" >&2
fi

archives=()
for platform in $platforms; do
	os=${platform%/*}
	arch=${platform#*/}
	name=kubectl-acme_${version}_${os}_${arch}
	dir=$stage/$name
	bin=kubectl-acme
	[[ $os == windows ]] && bin=kubectl-acme.exe
	files=(LICENSE "$bin")
	mkdir -p "$dir"
	GOOS=$os GOARCH=$arch CGO_ENABLED=0 go build -trimpath -buildvcs=false \
		-ldflags "$ldflags" -o "$dir/$bin" ./cmd/kubectl-acme
	chmod 0755 "$dir/$bin"
	install -m 0644 LICENSE "$dir/LICENSE"
	# kubectl runs it to complete `kubectl acme <TAB>`; Windows needs a
	# different kind of file, so it is left out there.
	if [[ $os != windows ]]; then
		install -m 0755 kubectl_complete-acme "$dir/kubectl_complete-acme"
		files+=(kubectl_complete-acme)
	fi
	# Sorted names, a fixed time and owner, no PAX times; gzip -n stores no
	# name or time of its own.
	tar --create --format=gnu --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
		--directory="$dir" "${files[@]}" | gzip -9 -n >"$out/$name.tar.gz"
	archives+=("$name.tar.gz")
	echo "  $name.tar.gz  $(stat -c %s "$out/$name.tar.gz") bytes" >&2
done

(cd "$out" && sha256sum "${archives[@]}" "${images[@]}" >SHA256SUMS)

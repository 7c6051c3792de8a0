# Targets for building and testing kubectl-acme. `make help` lists them.
# The test environment's programs (etcd, kube-apiserver, Pebble, ...) are
# built from the pinned module in hack/tools into bin/, once.

GO ?= go
BIN := $(CURDIR)/bin
# go test -timeout for the end-to-end tests (per package).
E2E_TIMEOUT ?= 20m

.PHONY: help tools build testenv-bin testenv lint test test-unit test-e2e demo

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

tools: ## Build the test environment's programs into bin/ (only when out of date); install busybox
	hack/tools.sh

build: ## Build bin/kubectl-acme
	$(GO) build -o bin/kubectl-acme ./cmd/kubectl-acme

# Always handed to go build, which relinks only when something changed.
# pause is the real node's sandbox program, static for its image.
testenv-bin:
	$(GO) build -o bin/testenv ./test/cmd/testenv
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags=-buildid= -o bin/pause ./test/cmd/pause

testenv: tools build testenv-bin ## Run a test environment in .testenv/ until Ctrl-C
	bin/testenv run .testenv

demo: tools build testenv-bin ## Issue a certificate against a local apiserver + Pebble and show the status (KEEP=1 leaves it running)
	hack/demo.sh

lint: ## gofmt, go vet, the layers' import rules (hack/importcheck) and the generated docs
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./hack/importcheck

test: test-unit test-e2e ## Unit tests, then end-to-end tests in a fresh environment

test-unit: ## Unit tests (everything but test/e2e and test/harness), with the race detector
	$(GO) test -race $$($(GO) list ./... | grep -v -e '/test/e2e' -e '/test/harness')

# test/e2e and test/harness (the environment's own checks) each start one
# environment; go test runs the two packages side by side.
test-e2e: tools build testenv-bin ## End-to-end tests and the environment's checks; TESTENV_DIR=DIR reuses a running `hack/testenv up DIR`
	PATH="$(BIN):$$PATH" $(GO) test -count=1 -timeout $(E2E_TIMEOUT) ./test/e2e/... ./test/harness/...

# Releases: reproducible archives (hack/release.sh) and the Krew manifest.
# VERSION defaults to HEAD's v* tag, else a pseudo-version v0.0.0-DATE-COMMIT.
VERSION ?= $(shell hack/release.sh --version)

.PHONY: release image krew-manifest docs verify-docs

image: ## Container image as an OCI layout tarball + digest in dist/image, built without Docker (IMAGE_PLATFORMS="linux/amd64 linux/arm64")
	hack/image.sh --out dist/image $(if $(IMAGE_PLATFORMS),--platforms "$(IMAGE_PLATFORMS)")

release: ## Reproducible archives for linux, darwin, windows x amd64, arm64, the container image (OCI layout) and SHA256SUMS in dist/ (VERSION=vX.Y.Z)
	rm -rf dist
	VERSION=$(VERSION) hack/release.sh --out dist

krew-manifest: release ## Render krew/acme.yaml from krew/acme.yaml.tmpl with the archives' sha256; refresh .krew.yaml
	$(GO) run ./hack/krewmanifest -tag $(VERSION) -dist dist -o krew/acme.yaml krew/acme.yaml.tmpl
	cp krew/acme.yaml.tmpl .krew.yaml

docs: ## Regenerate the command reference in docs/reference from the commands' help
	$(GO) run ./hack/gendocs docs/reference

verify-docs: ## Fail if docs/reference differs from what `make docs` generates
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) run ./hack/gendocs "$$tmp" && \
	if ! diff -ru docs/reference "$$tmp"; then echo "docs/reference is out of date: run make docs" >&2; exit 1; fi

lint: verify-docs

# Benchmark (issue 8): not part of `make test`; it starts and stops its own
# environment. BENCH_FLAGS=... passes flags (go run ./bench/cmd/bench -h).
.PHONY: bench

bench: tools build testenv-bin ## Speed and cost vs the floor and lego: a table, and bench/results.json
	PATH="$(BIN):$$PATH" $(GO) run ./bench/cmd/bench -bin-dir $(BIN) -out bench/results.json $(BENCH_FLAGS)

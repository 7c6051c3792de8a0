//go:build tools

// Package tools pins the cert-manager release whose CRDs (deploy/crds in
// its module source) test/e2e's TestExportToCertManager installs to check
// what `kubectl acme export` prints; it reads them from the module cache
// through `go list -m -json` in this module. A module of its own, so
// neither the main module's dependencies nor the test programs' in
// hack/tools change. The import keeps `go mod tidy` from dropping the
// requirement; nothing here is built.
package tools

import (
	_ "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
)

//go:build tools

// Package krew pins Krew, the kubectl plugin manager, for the install test
// (test/e2e/dist_krew_test.go) and `make tools`, which builds it as
// bin/kubectl-krew. It is a module of its own, apart from hack/tools: Krew
// v0.4.3 requires k8s.io/client-go v11.0.0+incompatible, which would replace
// the Kubernetes 1.37 requirements pinned there, and here it builds with the
// exact dependencies Krew released with.
package krew

import _ "sigs.k8s.io/krew/cmd/krew"

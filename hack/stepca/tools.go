//go:build tools

// Package stepca pins smallstep's step-ca, the second ACME server the
// end-to-end tests run against (test/e2e/issue_stepca_test.go), so nothing there
// depends on Pebble's quirks. hack/stepca.sh builds it as bin/step-ca. It is
// a module of its own, apart from hack/tools: step-ca's dependency graph
// (cloud KMS clients, its own x/crypto and gRPC pins) would otherwise move
// the versions the Kubernetes programs are built with.
package stepca

import _ "github.com/smallstep/certificates/cmd/step-ca"

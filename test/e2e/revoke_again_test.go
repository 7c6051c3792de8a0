package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRevokeAgainPebble: the second revoke of a certificate, against
// Pebble (which answers alreadyRevoked, as step-ca does).
func TestRevokeAgainPebble(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	mustACME(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", "again."+ns+".example.test", "-q")...)
	revokeTwice(t, ns, "web")
}

// revokeTwice revokes certificate name, then again with another reason:
// the second says "already revoked" and keeps the first reason and time.
func revokeTwice(t *testing.T, ns, name string) {
	t.Helper()
	out := mustACME(t, env.Kubeconfig, "revoke", name, "-n", ns, "--reason", "keyCompromise")
	if !strings.Contains(out, "certificate/"+name+" revoked") || !strings.Contains(out, "reason keyCompromise") {
		t.Errorf("first revoke said %q", out)
	}
	first := revocation(t, ns, name)
	if first.Reason != "keyCompromise" || first.Time.IsZero() {
		t.Fatalf("after the first revoke the record is %+v, want reason keyCompromise and a time", first)
	}
	out = mustACME(t, env.Kubeconfig, "revoke", name, "-n", ns, "--reason", "superseded")
	if !strings.Contains(out, "certificate/"+name+" already revoked") || !strings.Contains(out, "reason keyCompromise") ||
		!strings.Contains(out, "--reason superseded is not applied") {
		t.Errorf("second revoke said %q, want already revoked with the first reason", out)
	}
	if strings.Contains(out, name+" revoked (") {
		t.Errorf("second revoke reads as a fresh revocation: %q", out)
	}
	if again := revocation(t, ns, name); again.Reason != first.Reason || !again.Time.Equal(first.Time) || again.Serial != first.Serial {
		t.Errorf("the second revoke changed the record: %+v, was %+v", again, first)
	}
	if out := mustACME(t, env.Kubeconfig, "status", "-n", ns); !strings.Contains(out, "Revoked") {
		t.Errorf("status does not show the revocation:\n%s", out)
	}
}

type revocationRecord struct {
	Serial, Reason string
	Time           time.Time
}

// revocation is the revocation stored for certificate name (status -o json).
func revocation(t *testing.T, ns, name string) revocationRecord {
	t.Helper()
	var cert struct {
		Status struct {
			Revoked *revocationRecord `json:"revoked"`
		} `json:"status"`
	}
	out := mustACME(t, env.Kubeconfig, "status", name, "-n", ns, "-o", "json")
	if err := json.Unmarshal([]byte(out), &cert); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if cert.Status.Revoked == nil {
		t.Fatalf("no revocation recorded for %s:\n%s", name, out)
	}
	return *cert.Status.Revoked
}

package certmanager

import (
	"net"
	"time"
)

// State is the one-word health of a Certificate shown by `kubectl acme status`.
type State string

const (
	// StateReady: a certificate is stored and not yet due for renewal.
	StateReady State = "Ready"
	// StateExpiring: past the renewal time, still valid.
	StateExpiring State = "Expiring"
	// StateExpired: past notAfter.
	StateExpired State = "Expired"
	// StateFailed: the last attempt failed (any stored certificate is still served).
	StateFailed State = "Failed"
	// StatePending: requested but never issued.
	StatePending State = "Pending"
	// StateRevoked: the stored certificate was revoked.
	StateRevoked State = "Revoked"
)

// Summary is the computed status of a Certificate at a point in time.
type Summary struct {
	State  State
	Reason string
}

// Summarize computes a Certificate's state at now. A failed last attempt
// wins over the validity window, because that is what the operator must act
// on; an expired certificate wins over both, because clients are failing.
func Summarize(st *CertificateStatus, now time.Time) Summary {
	switch {
	case st.NotAfter != nil && !now.Before(st.NotAfter.Time):
		return Summary{State: StateExpired, Reason: "expired " + st.NotAfter.UTC().Format(time.RFC3339)}
	case st.Revoked != nil && st.Revoked.Serial == st.Serial:
		return Summary{State: StateRevoked, Reason: st.Revoked.Reason}
	case st.LastFailure != "":
		return Summary{State: StateFailed, Reason: st.LastFailure}
	case st.NotAfter == nil:
		return Summary{State: StatePending, Reason: "not issued yet"}
	case st.RenewalTime != nil && !now.Before(st.RenewalTime.Time):
		return Summary{State: StateExpiring, Reason: "due for renewal"}
	}
	return Summary{State: StateReady}
}

// RenewalTime is when a certificate valid from notBefore to notAfter should
// be renewed: renewBefore ahead of expiry when set and shorter than the
// lifetime, otherwise when a third of the lifetime remains (cert-manager's
// default, which also suits 6-day and 45-day certificates).
func RenewalTime(notBefore, notAfter time.Time, renewBefore time.Duration) time.Time {
	lifetime := notAfter.Sub(notBefore)
	if renewBefore > 0 && renewBefore < lifetime {
		return notAfter.Add(-renewBefore)
	}
	return notAfter.Add(-lifetime / 3)
}

func isIP(s string) bool { return net.ParseIP(s) != nil }

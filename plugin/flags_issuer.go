package plugin

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// issuerFlags are --issuer NAME and --cluster-issuer, naming the Issuer
// (of the command's namespace) or ClusterIssuer a command uses.
type issuerFlags struct {
	Issuer        string
	ClusterIssuer bool
}

// addFlags adds --issuer (with usage) and --cluster-issuer.
func (f *issuerFlags) addFlags(fl *pflag.FlagSet, usage string) {
	fl.StringVar(&f.Issuer, "issuer", f.Issuer, usage)
	fl.BoolVar(&f.ClusterIssuer, "cluster-issuer", f.ClusterIssuer, "--issuer names a ClusterIssuer")
}

// validate checks --issuer and --cluster-issuer together.
func (f *issuerFlags) validate() error {
	return validateIssuerRef(f.Issuer, f.ClusterIssuer)
}

// validateIssuerRef checks an issuer name and its --cluster-issuer.
func validateIssuerRef(issuer string, cluster bool) error {
	if cluster && issuer == "" {
		return errors.New("--cluster-issuer needs --issuer NAME")
	}
	return nil
}

// ref is the issuerRef the flags name (Name is empty without --issuer).
func (f *issuerFlags) ref() certmanager.IssuerRef {
	r := certmanager.IssuerRef{Name: f.Issuer, Kind: certmanager.KindIssuer, Group: certmanager.Group}
	if f.ClusterIssuer {
		r.Kind = certmanager.KindClusterIssuer
	}
	return r
}

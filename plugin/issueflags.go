package plugin

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spf13/pflag"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/issuance"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
	"github.com/kubectl-acme/kubectl-acme/solver"
)

// issueFlags are the flags of every command that issues (issue, apply,
// renew): how to solve challenges and how long to try. They mean the same
// in each, so a renewal can be run as its first issue was.
type issueFlags struct {
	Timeout          time.Duration
	SolverImage      string
	ConnectTo        string
	SelfCheckTimeout time.Duration
	Wait             bool
	Quiet            bool
	// IngressPathType overrides the challenge paths' pathType for this run.
	IngressPathType string
	Concurrency     int

	// classes is shared by every certificate of the command.
	classes *solver.IngressClasses
	// WaitInsteadOfSelfCheck replaces the self-check with a wait when
	// its flag was given (waitFlag.Changed), as a solver's
	// waitInsteadOfSelfCheck does.
	WaitInsteadOfSelfCheck time.Duration
	waitFlag               *pflag.Flag
	// AllowSolverTraffic and IngressControllerNamespace: see
	// issuance.Options.
	AllowSolverTraffic         bool
	IngressControllerNamespace string
}

func defaultIssueFlags() issueFlags {
	return issueFlags{Timeout: 10 * time.Minute, SelfCheckTimeout: 2 * time.Minute, Concurrency: 5, classes: &solver.IngressClasses{}}
}

func (f *issueFlags) addFlags(fl *pflag.FlagSet) {
	fl.DurationVar(&f.Timeout, "timeout", f.Timeout, "Give up on a certificate (and clean up its solver) after this long; each certificate has its own, counted from when its turn comes")
	fl.StringVar(&f.SolverImage, "solver-image", f.SolverImage, "Image of the solver pods; it must provide busybox sh, mkdir, printf and httpd (default "+solver.DefaultImage+")")
	fl.StringVar(&f.ConnectTo, "connect-to", f.ConnectTo, "Send self-check requests to HOST:PORT (e.g. the load balancer) instead of what DNS says")
	fl.DurationVar(&f.SelfCheckTimeout, "self-check-timeout", f.SelfCheckTimeout, "How long to retry the self-check before giving up")
	fl.BoolVar(&f.Wait, "wait", f.Wait, "If someone else is issuing a certificate, wait for them to finish instead of failing")
	fl.BoolVarP(&f.Quiet, "quiet", "q", f.Quiet, "Print no progress, only results and errors")
	fl.DurationVar(&f.WaitInsteadOfSelfCheck, "wait-instead-of-self-check", f.WaitInsteadOfSelfCheck, "Skip the self-check and wait this long before asking the CA, for every solver (as cert-manager's waitInsteadOfSelfCheck; for split-horizon DNS or NAT hairpinning; 0 asks at once)")
	f.waitFlag = fl.Lookup("wait-instead-of-self-check")
	fl.IntVar(&f.Concurrency, "concurrency", f.Concurrency, "How many certificates to issue at the same time")
	addIngressPathTypeFlag(fl, &f.IngressPathType, "pathType of the challenge paths in the solver's Ingress, over the issuer's setting: Exact, Prefix or ImplementationSpecific (default: decided by the ingress class's controller)")
	fl.BoolVar(&f.AllowSolverTraffic, "allow-solver-traffic", f.AllowSolverTraffic, "If the namespace's NetworkPolicies would drop traffic to the solver pod, add a temporary NetworkPolicy admitting TCP to its port, removed with it (issuer annotation "+solver.AnnotationAllowSolverTraffic+"=true)")
	fl.StringVar(&f.IngressControllerNamespace, "ingress-controller-namespace", f.IngressControllerNamespace, "Namespace the ingress controller runs in, to judge NetworkPolicies that admit some namespaces only (issuer annotation "+solver.AnnotationIngressControllerNamespace+")")
}

// addIngressPathTypeFlag is --ingress-path-type, of issue, apply, renew
// and create issuer.
func addIngressPathTypeFlag(fl *pflag.FlagSet, p *string, usage string) {
	fl.StringVar(p, "ingress-path-type", *p, usage)
}

func (f *issueFlags) validate() error {
	if err := positive("--timeout", f.Timeout); err != nil {
		return err
	}
	if f.Concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	if err := positive("--self-check-timeout", f.SelfCheckTimeout); err != nil {
		return err
	}
	if f.IngressPathType != "" {
		if err := certmanager.ValidateIngressPathType("--ingress-path-type", f.IngressPathType); err != nil {
			return err
		}
	}
	if f.WaitInsteadOfSelfCheck < 0 {
		return errors.New("--wait-instead-of-self-check must not be negative (0 asks the CA at once)")
	}
	if f.ConnectTo != "" {
		if err := validateConnectTo(f.ConnectTo); err != nil {
			return err
		}
	}
	if ns := f.IngressControllerNamespace; ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--ingress-controller-namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	if f.SolverImage != "" {
		return validateImage("--solver-image", f.SolverImage)
	}
	return nil
}

// options are the issuance options these flags set.
func (f *issueFlags) options(st *store.Store, fac *Factory) issuance.Options {
	var wait *time.Duration
	if f.waitFlag != nil && f.waitFlag.Changed {
		wait = &f.WaitInsteadOfSelfCheck
	}
	return issuance.Options{
		WaitInsteadOfSelfCheck: wait,
		Store:                  st,
		SolverImage:            f.SolverImage,
		ConnectTo:              f.ConnectTo,
		SelfCheckTimeout:       f.SelfCheckTimeout,
		WaitForLease:           f.Wait,
		IngressPathType:        f.IngressPathType,
		IngressClasses:         f.classes,
		UserAgent:              fac.UserAgent,

		AllowSolverTraffic:         f.AllowSolverTraffic,
		IngressControllerNamespace: f.IngressControllerNamespace,
	}
}

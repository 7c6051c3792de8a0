package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// pathTypeWatch records the pathType of every challenge path of every
// Ingress written in ns while it runs: the solver Ingress lives for a
// fraction of a second, so only a watch sees it.
type pathTypeWatch struct {
	mu    sync.Mutex
	types map[networkingv1.PathType]int
	stop  func()
	done  chan struct{}
}

func watchPathTypes(t *testing.T, ns string) *pathTypeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := kube.NetworkingV1().Ingresses(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("watch ingresses: %v", err)
	}
	pw := &pathTypeWatch{types: map[networkingv1.PathType]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			ing, ok := ev.Object.(*networkingv1.Ingress)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			for _, r := range ing.Spec.Rules {
				if r.HTTP == nil {
					continue
				}
				for _, p := range r.HTTP.Paths {
					if strings.HasPrefix(p.Path, "/.well-known/acme-challenge/") && p.PathType != nil {
						pw.mu.Lock()
						pw.types[*p.PathType]++
						pw.mu.Unlock()
					}
				}
			}
		}
	}()
	t.Cleanup(cancel)
	return pw
}

// only stops the watch and fails unless every challenge path seen had
// type want, and there was one.
func (pw *pathTypeWatch) only(t *testing.T, want networkingv1.PathType) {
	t.Helper()
	pw.stop()
	<-pw.done
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.types[want] == 0 {
		t.Errorf("no challenge path of type %s seen (seen: %v)", want, pw.types)
	}
	for typ, n := range pw.types {
		if typ != want {
			t.Errorf("%d challenge path(s) of type %s, want only %s", n, typ, want)
		}
	}
}

// TestSimnodeNginxAdmission checks the environment's stand-in for
// ingress-nginx's admission webhook: the real API server denies an Ingress
// of class nginx whose Exact or Prefix path has a character outside
// ingress-nginx's validPathType, with the webhook's name and message, and
// admits ImplementationSpecific paths and other classes' Ingresses.
func TestSimnodeNginxAdmission(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ings := kube.NetworkingV1().Ingresses(ns)
	mk := func(name string, class *string, annotations map[string]string, typ networkingv1.PathType, path string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: networkingv1.IngressSpec{
				IngressClassName: class,
				Rules: []networkingv1.IngressRule{{Host: "a.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &typ, Backend: networkingv1.IngressBackend{
						Service: &networkingv1.IngressServiceBackend{Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}},
					}}},
				}}}},
			},
		}
	}
	nginx := ptr.To(env.IngressClass)
	legacy := map[string]string{"kubernetes.io/ingress.class": env.IngressClass}
	exact, prefix, impl := networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific
	tests := []struct {
		name    string
		ing     *networkingv1.Ingress
		allowed bool
	}{
		{"exact path with a dot", mk("a", nginx, nil, exact, "/.well-known/acme-challenge/tok"), false},
		{"prefix path with a dot", mk("b", nginx, nil, prefix, "/a.b"), false},
		{"exact path with a regex", mk("c", nginx, nil, exact, "/api/(.*)"), false},
		{"legacy annotation", mk("d", nil, legacy, exact, "/.well-known/acme-challenge/tok"), false},
		// The DefaultIngressClass plugin sets the default class, nginx.
		{"no class", mk("e", nil, nil, exact, "/.well-known/acme-challenge/tok"), false},
		{"exact path of letters, digits, - _ /", mk("f", nginx, nil, exact, "/Ab-9_/x"), true},
		{"ImplementationSpecific path with a dot", mk("g", nginx, nil, impl, "/.well-known/acme-challenge/tok"), true},
		{"another class", mk("h", ptr.To("traefik"), nil, exact, "/.well-known/acme-challenge/tok"), true},
	}
	for _, tt := range tests {
		_, err := ings.Create(t.Context(), tt.ing, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s: denied: %v", tt.name, err)
		case !tt.allowed && err == nil:
			t.Errorf("%s: admitted", tt.name)
		case !tt.allowed:
			msg := err.Error()
			p := tt.ing.Spec.Rules[0].HTTP.Paths[0]
			for _, want := range []string{testenv.NginxAdmissionPolicy, "ingress contains invalid paths: path " + p.Path + " cannot be used with pathType " + string(*p.PathType)} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: denial %q lacks %q", tt.name, msg, want)
				}
			}
		}
	}

	// UPDATE is judged too: an existing Ingress cannot gain such a path,
	// which is what edit-in-place (http01.ingress.name) does.
	if _, err := ings.Create(t.Context(), mk("web", nginx, nil, prefix, "/"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// simnode writes the Ingress's status meanwhile.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ok, err := ings.Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ok.Spec.Rules[0].HTTP.Paths = append(ok.Spec.Rules[0].HTTP.Paths, mk("", nil, nil, exact, "/.well-known/acme-challenge/tok").Spec.Rules[0].HTTP.Paths[0])
		_, err = ings.Update(t.Context(), ok, metav1.UpdateOptions{})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), testenv.NginxAdmissionPolicy) {
		t.Errorf("update adding an Exact path with a dot: %v, want a denial by %s", err, testenv.NginxAdmissionPolicy)
	}
}

// TestPathTypeIssueNginx: with ingress-nginx's admission rule active,
// `issue` through class nginx succeeds, its Ingress used
// ImplementationSpecific, and nothing is left.
func TestPathTypeIssueNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	pw := watchPathTypes(t, ns)
	name := "web." + ns + ".example.test"
	out, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "pebble", "--domain", name, "--domain", "www."+name)...)
	if code != 0 {
		t.Fatalf("issue failed (exit %d): %s", code, errOut)
	}
	wantAll(t, "issue", out, "certificate/web issued")
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific: ingress-nginx")
	// A route a moment old is not an alarm (issue 12, item 8).
	if strings.Contains(errOut, "(retrying)") {
		t.Errorf("a normal route propagation was explained as a failure:\n%s", errOut)
	}
	verifySecret(t, ns, "web", []string{name, "www." + name})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoSolverObjects(t, ns)
}

// TestPathTypeApplyNginx: `apply -f` through class nginx, with a created
// solver Ingress and with the paths added to the user's Ingress
// (http01.ingress.name), both ImplementationSpecific, nothing left.
func TestPathTypeApplyNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	v := varsFor(t, ns)
	prefix := networkingv1.PathTypePrefix
	web := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(v.Class),
			Rules: []networkingv1.IngressRule{{Host: v.Host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}},
				}}},
			}}}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(t.Context(), web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	docs := renderManifest(t, dir, "v1-docs.yaml", v)
	existing := renderManifest(t, dir, "existing-ingress.yaml", v)
	pw := watchPathTypes(t, ns)
	_, errOut := mustApply(t, nil, "-n", ns, "-f", docs, "-f", existing, "--agree-tos", "--connect-to", env.IngressHTTP)
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific")
	verifySecret(t, ns, "example-com-tls", []string{v.Host, "www." + v.Host})
	verifySecret(t, ns, "web-tls", []string{v.Host, "www." + v.Host})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoLabeledSolverObjects(t, ns)
	got, err := kube.NetworkingV1().Ingresses(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.Rules[0].HTTP.Paths); n != 1 {
		t.Errorf("ingress web has %d paths after apply, want its own 1", n)
	}
}

// TestPathTypeIssueIngressNginx: `issue --ingress` through class nginx,
// in a created solver Ingress and edited in place.
func TestPathTypeIssueIngressNginx(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIssuer(t, env.Kubeconfig, ns, "pebble", env.IngressClass)
	host := ns + ".example.test"
	prefix := networkingv1.PathTypePrefix
	mk := func(name string, ann map[string]string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To(env.IngressClass),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{name + "." + host}, SecretName: name + "-tls"}},
				Rules: []networkingv1.IngressRule{{Host: name + "." + host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
						Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}},
					}}},
				}}}},
			},
		}
	}
	for _, ing := range []*networkingv1.Ingress{
		mk("shop", map[string]string{"cert-manager.io/issuer": "pebble"}),
		mk("inplace", map[string]string{"cert-manager.io/issuer": "pebble", "acme.cert-manager.io/http01-edit-in-place": "true"}),
	} {
		if _, err := kube.NetworkingV1().Ingresses(ns).Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pw := watchPathTypes(t, ns)
	for _, name := range []string{"shop", "inplace"} {
		out := mustACME(t, env.Kubeconfig, "issue", "--ingress", name, "-n", ns, "--connect-to", env.IngressHTTP)
		wantAll(t, "issue --ingress "+name, out, "certificate/"+name+"-tls issued")
		verifySecret(t, ns, name+"-tls", []string{name + "." + host})
	}
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoLabeledSolverObjects(t, ns)
}

// TestPathTypeOverrideExport: --ingress-path-type on create issuer is
// stored as the Issuer's annotation, export keeps it with a note on
// cert-manager's feature gate, and applying the export back keeps it.
func TestPathTypeOverrideExport(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	mustACME(t, env.Kubeconfig, "create", "issuer", "pinned", "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle,
		"--email", "e2e@example.com", "--ingress-class", env.IngressClass, "--agree-tos", "--ingress-path-type", "Exact")
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "acme-issuer-pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "stored issuer", cm.Data["issuer.yaml"], "acme.kubectl.io/http01-ingress-path-type: Exact")

	out, errOut, code := acmeCmd(t, env.Kubeconfig, "export", "--all", "-n", ns)
	if code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	wantAll(t, "export", out, "acme.kubectl.io/http01-ingress-path-type: Exact")
	wantAll(t, "export notes", out+errOut, "ACMEHTTP01IngressPathTypeExact")

	// The export, applied back to a fresh namespace, keeps the override.
	ns2 := newNamespace(t)
	file := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(out, "namespace: "+ns, "namespace: "+ns2)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustApply(t, nil, "-n", ns2, "-f", file, "--agree-tos", "--dry-run=client")
	mustApply(t, nil, "-n", ns2, "-f", file, "--agree-tos")
	cm, err = kube.CoreV1().ConfigMaps(ns2).Get(t.Context(), "acme-issuer-pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "re-applied issuer", cm.Data["issuer.yaml"], "acme.kubectl.io/http01-ingress-path-type: Exact")

	// A bad value is refused with the choices, before anything is done.
	_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "x", "pinned", "--domain", "x."+ns+".example.test", "--ingress-path-type", "exact")...)
	if code == 0 {
		t.Fatal("issue --ingress-path-type exact succeeded")
	}
	wantAll(t, "error", errOut, `--ingress-path-type "exact"`, "Exact, Prefix, ImplementationSpecific")
}

// gkeClass is the GKE-like class simnode serves (simnode.GKEClasses),
// chosen by the legacy annotation as on GKE.
const gkeClass = "gce"

// TestSimnodeGKE checks the GKE-like class: ImplementationSpecific paths
// are URL map rules (exact, or a prefix with "/*"), and an Ingress with
// any other path type is not routed at all and gets ingress-gce's
// Translate event.
func TestSimnodeGKE(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), simTimeout)
	defer cancel()
	o := newSimObjects(ns)
	o.ing.Spec.IngressClassName = nil
	o.ing.Annotations = map[string]string{"kubernetes.io/ingress.class": gkeClass}
	impl := networkingv1.PathTypeImplementationSpecific
	wild := o.ing.Spec.Rules[0].HTTP.Paths[0]
	wild.Path, wild.PathType = "/.well-known/acme-challenge/sub/*", &impl
	// A Service that does not exist: a route to it answers 503.
	wild.Backend = networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "missing", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	o.ing.Spec.Rules[0].HTTP.Paths = append(o.ing.Spec.Rules[0].HTTP.Paths, wild)
	o.create(ctx, t, ns)
	waitSimServed(ctx, t, o.host, simPath, o.body)
	for _, tt := range []struct {
		path string
		code int
	}{
		{simPath + "x", http.StatusNotFound}, // an exact rule, no prefix match
		{"/.well-known/acme-challenge/sub/x", http.StatusServiceUnavailable},
		{"/.well-known/acme-challenge/sub", http.StatusNotFound}, // "/sub/*" is not "/sub"
	} {
		code, _, err := simGet(ctx, o.host, tt.path)
		if err != nil || code != tt.code {
			t.Errorf("GET %s = %d, %v; want %d", tt.path, code, err, tt.code)
		}
	}

	// Exact: the whole Ingress is not translated; an event says why.
	exact := networkingv1.PathTypeExact
	bad := o.ing.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "exact", Annotations: bad.Annotations}
	bad.Spec.Rules[0].Host = "exact." + o.host
	bad.Spec.Rules[0].HTTP.Paths = bad.Spec.Rules[0].HTTP.Paths[:1]
	bad.Spec.Rules[0].HTTP.Paths[0].PathType = &exact
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	simWaitEvent(ctx, t, ns, "exact", "Translate")
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=exact,reason=Translate"})
	if err != nil || len(evs.Items) == 0 {
		t.Fatalf("Translate events: %v", err)
	}
	ev := evs.Items[0]
	if ev.Type != "Warning" || ev.Source.Component != "loadbalancer-controller" ||
		ev.Message != `Translation failed: invalid ingress spec: only "ImplementationSpecific" path type is supported` {
		t.Errorf("event %s %s from %s: %q", ev.Type, ev.Reason, ev.Source.Component, ev.Message)
	}
	simAssertNotServed(t, "exact."+o.host, simPath, o.body, http.StatusNotFound)
}

// TestPathTypeGKE: an issuer of the GKE-like class issues with
// ImplementationSpecific paths; overridden to Exact, the controller
// refuses the Ingress (an event, no route) and the self-check fails
// clearly, before the CA is asked to validate, leaving nothing.
func TestPathTypeGKE(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	mustACME(t, env.Kubeconfig, "create", "issuer", "gke", "-n", ns,
		"--server", env.ACMEServer, "--ca-bundle", env.ACMECABundle, "--email", "e2e@example.com",
		"--ingress-class", gkeClass, "--legacy-class-annotation", "--agree-tos")
	pw := watchPathTypes(t, ns)
	name := "gke." + ns + ".example.test"
	_, errOut, code := acmeCmd(t, env.Kubeconfig, issueArgs(ns, "web", "gke", "--domain", name)...)
	if code != 0 {
		t.Fatalf("issue through class %s failed: %s", gkeClass, errOut)
	}
	wantAll(t, "progress", errOut, "pathType ImplementationSpecific: GKE")
	verifySecret(t, ns, "web", []string{name})
	pw.only(t, networkingv1.PathTypeImplementationSpecific)
	assertNoSolverObjects(t, ns)

	pw = watchPathTypes(t, ns)
	_, errOut, code = acmeCmd(t, env.Kubeconfig, issueArgs(ns, "exact", "gke", "--domain", "exact."+name,
		"--ingress-path-type", "Exact", "--self-check-timeout", "8s")...)
	if code == 0 {
		t.Fatal("issue with Exact paths through the GKE-like class succeeded")
	}
	wantAll(t, "error", errOut, "pathType Exact: set on the issuer or with --ingress-path-type", "HTTP 404 (the ingress controller has no route for this path")
	if strings.Contains(errOut, "invalid") && strings.Contains(errOut, "authorization") {
		t.Errorf("the CA was asked to validate a route the self-check found missing:\n%s", errOut)
	}
	pw.only(t, networkingv1.PathTypeExact)
	assertNoSolverObjects(t, ns)
}

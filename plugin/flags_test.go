package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// wantErr fails t unless err contains want, or is nil when want is "".
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func TestNamespaceFlags(t *testing.T) {
	n := namespaceFlags{Namespace: "app"}
	if n.listNamespace() != "app" || n.where() != "in app namespace" {
		t.Errorf("-n app: list %q, where %q", n.listNamespace(), n.where())
	}
	wantErr(t, n.requireAll(false), "")
	n.AllNamespaces = true
	if n.listNamespace() != "" || n.where() != "in any namespace" {
		t.Errorf("-A: list %q, where %q", n.listNamespace(), n.where())
	}
	wantErr(t, n.requireAll(true), "")
	wantErr(t, n.requireAll(false), "--all-namespaces needs --all")
}

func TestIssuerFlags(t *testing.T) {
	tests := []struct {
		name string
		f    issuerFlags
		kind string
		err  string
	}{
		{"none", issuerFlags{}, certmanager.KindIssuer, ""},
		{"issuer", issuerFlags{Issuer: "le"}, certmanager.KindIssuer, ""},
		{"cluster issuer", issuerFlags{Issuer: "le", ClusterIssuer: true}, certmanager.KindClusterIssuer, ""},
		{"cluster without name", issuerFlags{ClusterIssuer: true}, certmanager.KindClusterIssuer, "--cluster-issuer needs --issuer NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.f.validate(), tt.err)
			if r := tt.f.ref(); r.Name != tt.f.Issuer || r.Kind != tt.kind || r.Group != certmanager.Group {
				t.Errorf("ref %+v", r)
			}
		})
	}
}

func TestDurationChecks(t *testing.T) {
	wantErr(t, positive("--timeout", time.Second), "")
	wantErr(t, positive("--timeout", 0), "--timeout must be positive")
	wantErr(t, positive("--timeout", -time.Second), "--timeout must be positive")
	wantErr(t, notNegative("--duration", 0), "")
	wantErr(t, notNegative("--duration", -time.Hour), "--duration must not be negative")
}

func TestOutputFlags(t *testing.T) {
	for _, tt := range []struct {
		format string
		err    string
		table  bool
	}{
		{"", "", true}, {"wide", "", true}, {"json", "", false}, {"yaml", "", false}, {"name", "", false},
		{"xml", `unsupported output format "xml": use one of ["" "wide" "json" "yaml" "name"]`, false},
	} {
		o := newOutputFlags("", "wide", "json", "yaml", "name").set(tt.format)
		wantErr(t, o.validate(), tt.err)
		if tt.err == "" && o.table() != tt.table {
			t.Errorf("-o %q: table() = %v", tt.format, o.table())
		}
	}
	if newOutputFlags("yaml", "json").Format() != "yaml" {
		t.Error("the first format is not the default")
	}
}

func testIssuers() []*certmanager.Issuer {
	a := &certmanager.Issuer{}
	a.APIVersion, a.Kind, a.Name, a.Namespace = certmanager.GroupVersion, certmanager.KindIssuer, "le", "app"
	b := &certmanager.Issuer{}
	b.APIVersion, b.Kind, b.Name = certmanager.GroupVersion, certmanager.KindClusterIssuer, "shared"
	return []*certmanager.Issuer{a, b}
}

func TestPrintList(t *testing.T) {
	for format, want := range map[string][]string{
		"json": {"{\n    \"apiVersion\": \"v1\",\n    \"items\": [", `"kind": "List"`, `"name": "le"`, `"kind": "ClusterIssuer"`},
		"yaml": {"apiVersion: v1\nitems:\n- apiVersion: cert-manager.io/v1\n", "kind: List\n"},
		"name": {"issuer.cert-manager.io/le\nclusterissuer.cert-manager.io/shared\n"},
	} {
		var b bytes.Buffer
		if err := newOutputFlags(format).printList(&b, testIssuers()); err != nil {
			t.Fatalf("-o %s: %v", format, err)
		}
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("-o %s: %q lacks %q", format, b.String(), w)
			}
		}
	}
	var b bytes.Buffer
	if err := newOutputFlags("json").printList(&b, []*certmanager.Issuer(nil)); err != nil || !strings.Contains(b.String(), `"items": []`) {
		t.Errorf("empty list: %v %q", err, b.String())
	}
}

func TestPrintDocuments(t *testing.T) {
	var b bytes.Buffer
	if err := newOutputFlags("yaml").printDocuments(&b, testIssuers()); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(b.String(), "---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "name: le") || !strings.Contains(docs[1], "name: shared") || strings.Contains(b.String(), "kind: List") {
		t.Errorf("yaml documents:\n%s", b.String())
	}
	b.Reset()
	if err := newOutputFlags("json").printDocuments(&b, testIssuers()); err != nil || !strings.Contains(b.String(), `"kind": "List"`) {
		t.Errorf("json: %v\n%s", err, b.String())
	}
}

func TestScheduleObjectsPrintFresh(t *testing.T) {
	sa := &corev1.ServiceAccount{}
	sa.APIVersion, sa.Kind, sa.Name, sa.Namespace = "v1", "ServiceAccount", "kubectl-acme-renew", "app"
	pod := &corev1.Pod{}
	pod.APIVersion, pod.Kind, pod.Name = "v1", "Pod", "p"
	var b bytes.Buffer
	o := NewScheduleOptions(genericStreams(&b), BuildInfo{})
	o.Output.set("yaml")
	if err := o.printObjects([]runtime.Object{sa, pod}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "creationTimestamp") || strings.Contains(s, "status: {}") || !strings.Contains(s, "---\n") || !strings.Contains(s, "name: kubectl-acme-renew") {
		t.Errorf("got\n%s", s)
	}
	b.Reset()
	o.Output.set("name")
	if err := o.printObjects([]runtime.Object{sa, pod}); err != nil || b.String() != "serviceaccount/kubectl-acme-renew\npod/p\n" {
		t.Errorf("-o name: %v %q", err, b.String())
	}
}

func genericStreams(out *bytes.Buffer) genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &bytes.Buffer{}}
}

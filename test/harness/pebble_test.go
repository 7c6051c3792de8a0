package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestPebbleHTTP01ByHand checks the environment itself, without
// kubectl-acme: Pebble issues a certificate for a DNS name and an IP address
// once a hand-written ConfigMap, busybox httpd Pod, Service and Ingress serve
// the http-01 key authorizations through simnode's ingress controller.
func TestPebbleHTTP01ByHand(t *testing.T) {
	ns := newNamespace(t)
	// x/crypto/acme retries 5xx answers until its context ends: always bound it.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// The solver must pass the policy that clusters commonly enforce.
	restricted := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`)
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, restricted, metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace: %v", err)
	}

	client := newACMEClient(t)
	if _, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register ACME account: %v", err)
	}
	const domain = "demo.example.test"
	ip := net.ParseIP("127.0.0.1")
	// Pebble picks a random profile for orders that name none.
	order, err := client.AuthorizeOrder(ctx, []acme.AuthzID{{Type: "dns", Value: domain}, {Type: "ip", Value: ip.String()}},
		acme.WithOrderIssuanceProfile("default"))
	if err != nil {
		t.Fatalf("create order: %v", err)
	}

	// Identifier value -> its http-01 challenge and key authorization.
	type pending struct {
		chal    *acme.Challenge
		keyAuth string
	}
	challenges := map[string]pending{}
	for _, u := range order.AuthzURLs {
		authz, err := client.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatalf("get authorization: %v", err)
		}
		// Pebble runs with PEBBLE_AUTHZREUSE=0: nothing may be valid yet.
		if authz.Status != acme.StatusPending {
			t.Fatalf("authorization for %s is %q, want pending", authz.Identifier.Value, authz.Status)
		}
		for _, c := range authz.Challenges {
			if c.Type != "http-01" {
				continue
			}
			keyAuth, err := client.HTTP01ChallengeResponse(c.Token)
			if err != nil {
				t.Fatalf("key authorization: %v", err)
			}
			challenges[authz.Identifier.Value] = pending{chal: c, keyAuth: keyAuth}
		}
	}
	if len(challenges) != 2 {
		t.Fatalf("got http-01 challenges for %v, want %s and %s", challenges, domain, ip)
	}

	tokens := map[string]string{}
	for _, p := range challenges {
		tokens[p.chal.Token] = p.keyAuth
	}
	deploySolver(ctx, t, ns, domain, tokens)

	// Check what Pebble will see before asking it to look: the ingress
	// routes by Host, and Pebble sends HOST:PORT.
	_, port, _ := net.SplitHostPort(env.IngressHTTP)
	for id, p := range challenges {
		waitServed(ctx, t, net.JoinHostPort(id, port), "/.well-known/acme-challenge/"+p.chal.Token, p.keyAuth)
	}

	for _, p := range challenges {
		if _, err := client.Accept(ctx, p.chal); err != nil {
			t.Fatalf("accept challenge: %v", err)
		}
	}
	order, err = client.WaitOrder(ctx, order.URI)
	if err != nil {
		t.Fatalf("wait for order: %v", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{domain}, IPAddresses: []net.IP{ip}}, key)
	if err != nil {
		t.Fatal(err)
	}
	// Not CreateOrderCert: it finds the order through the finalize
	// response's Location header, which Pebble does not send.
	chain, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		t.Fatalf("finalize order: %v", err)
	}

	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	intermediates := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("parse chain: %v", err)
		}
		intermediates.AddCert(c)
	}
	roots := certPool(t, env.ACMERoots)
	for _, name := range []string{domain, ip.String()} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: intermediates}); err != nil {
			t.Errorf("verify certificate for %s against ACME_ROOTS: %v", name, err)
		}
	}
	if got, want := leaf.NotAfter.Sub(leaf.NotBefore).Round(time.Hour), 90*24*time.Hour; got != want {
		t.Errorf("validity %s, want %s (the default profile)", got, want)
	}
	if !resolvedBy(ctx, t, domain) {
		t.Errorf("pebble-challtestsrv saw no DNS query for %s; Pebble did not use it", domain)
	}
}

// deploySolver serves each token's key authorization from busybox httpd,
// behind a Service and an Ingress of class nginx: rules for domain, and a
// rule without host for the IP identifier (Ingress hosts cannot be IPs).
func deploySolver(ctx context.Context, t *testing.T, ns, domain string, tokens map[string]string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "challenges"}, Data: tokens}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}

	labels := map[string]string{"app": "solver"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "solver", Labels: labels},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65534),
				RunAsGroup:     ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:    "httpd",
				Image:   "busybox:1.36",
				Command: []string{"httpd", "-f", "-p", "8080", "-h", "/var/www"},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "challenges", MountPath: "/var/www/.well-known/acme-challenge", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{
				Name:         "challenges",
				VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}},
			}},
		},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "solver"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}

	// ImplementationSpecific: class nginx has ingress-nginx's admission
	// rule, which denies an Exact path with a dot.
	implSpecific := networkingv1.PathTypeImplementationSpecific
	var paths []networkingv1.HTTPIngressPath
	for token := range tokens {
		paths = append(paths, networkingv1.HTTPIngressPath{
			Path:     "/.well-known/acme-challenge/" + token,
			PathType: &implSpecific,
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: svc.Name, Port: networkingv1.ServiceBackendPort{Name: "http"},
			}},
		})
	}
	rule := networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "solver"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(env.IngressClass),
			Rules:            []networkingv1.IngressRule{{Host: domain, IngressRuleValue: rule}, {IngressRuleValue: rule}},
		},
	}
	if _, err := kube.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ingress: %v", err)
	}
}

// waitServed polls the ingress controller, as Pebble would ask for host,
// until it answers path with want.
func waitServed(ctx context.Context, t *testing.T, host, path, want string) {
	t.Helper()
	httpc := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+env.IngressHTTP+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := httpc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == want {
				return
			}
			last = fmt.Sprintf("%s: %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			pods, _, _ := kubectl(t, "get", "pods,svc,ingress,endpointslices", "-A", "-o", "wide")
			t.Fatalf("ingress never served %s%s (last answer %s); cluster:\n%s\nsimnode log: %s", host, path, last, pods, env.LogFile("simnode"))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// resolvedBy reports whether pebble-challtestsrv answered a DNS query for host.
func resolvedBy(ctx context.Context, t *testing.T, host string) bool {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"host": host})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.ChallTestSrvManagement+"/dns-request-history", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query DNS history: %v", err)
	}
	defer resp.Body.Close()
	var history []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&history); err != nil {
		t.Fatalf("decode DNS history: %v", err)
	}
	return len(history) > 0
}

// newACMEClient returns a client with a fresh account key for the
// environment's Pebble.
func newACMEClient(t *testing.T) *acme.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &acme.Client{
		Key:          key,
		DirectoryURL: env.ACMEServer,
		UserAgent:    "kubectl-acme-e2e",
		HTTPClient: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(t, env.ACMECABundle)}},
		},
	}
}

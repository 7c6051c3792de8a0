// Package solver answers ACME HTTP-01 challenges from inside a Kubernetes
// cluster: it creates a busybox httpd Pod serving the key authorizations,
// a Service and an Ingress or a Gateway API HTTPRoute routing
// /.well-known/acme-challenge/<token> to it, checks the challenge URLs are reachable, and deletes all of it
// afterwards.
package solver

import (
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// Labels put on every solver object.
const (
	// LabelSolver carries the solver's name, shared by all objects of one order.
	LabelSolver = "acme.kubectl.io/solver"
	// LabelCertificate names the Certificate the order is for, on the
	// objects of a solver that serves one Certificate; a solver shared by
	// the orders of several (see Config.Certificates) lists them in
	// AnnotationCertificates instead.
	LabelCertificate = "acme.kubectl.io/certificate"
	// LabelRun carries the id of the run (one apply, renew --all, ...)
	// whose orders share the solver.
	LabelRun = "acme.kubectl.io/run"
	// AnnotationCertificates lists, comma-separated, the Certificates
	// whose orders a shared solver serves.
	AnnotationCertificates = "acme.kubectl.io/certificates"
	// LabelManagedBy marks objects kubectl-acme created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "kubectl-acme"
	// LabelComponent tells solver objects apart from stored state.
	LabelComponent = "app.kubernetes.io/component"
	// AnnotationCreated records when the solver started, for cleanup of
	// leftovers of killed runs.
	AnnotationCreated = "acme.kubectl.io/created"
)

// DefaultImage serves the challenges with busybox's httpd.
const DefaultImage = "busybox:1.37"

// ChallengePath is where HTTP-01 tokens are served (RFC 8555 section 8.3).
const ChallengePath = "/.well-known/acme-challenge/"

const (
	httpPort = 8089
	portName = "http"
	// webRoot is where the pod writes the challenge files and httpd
	// serves them from: /dev/shm is the one writable place under
	// readOnlyRootFilesystem, the tmpfs the runtime mounts in every
	// container (mode 1777, 64 MiB: runc's default spec, containerd's
	// sandbox shm in internal/cri/server/podsandbox/sandbox_run_linux.go).
	webRoot   = "/dev/shm/acme-http01"
	nobodyUID = 65534
	// terminationGrace is the solver pod's terminationGracePeriodSeconds.
	// busybox httpd runs as the container's PID 1, which the kernel spares
	// signals it sets no handler for, so SIGTERM does nothing and the
	// kubelet waits out the whole grace period (30 s by default) before
	// SIGKILL. The pod only serves static files: nothing to drain. 2 is
	// the least the kubelet grants anyway (minimumGracePeriodInSeconds in
	// kubernetes pkg/kubelet/kuberuntime/kuberuntime_manager.go).
	terminationGrace = 2
)

// Config says how to build the solver's objects.
type Config struct {
	Namespace string
	// CertManagerCPU keeps the pod at cert-manager's CPU limit, 100m: set
	// when the cluster refused the larger one (see solverCPULimitMilli).
	CertManagerCPU bool
	Name           string // shared name of the Pod, Service and Ingress
	// Certificate is the Certificate whose order the solver serves; a
	// solver shared by several orders leaves it empty and names them in
	// Certificates, with the Run that shares it.
	Certificate  string
	Certificates []string
	Run          string
	Image        string
	// IngressClassName sets spec.ingressClassName; LegacyClass the
	// kubernetes.io/ingress.class annotation instead (cert-manager's `class`).
	IngressClassName string
	LegacyClass      string
	// ExistingIngress names an Ingress to add the challenge paths to,
	// instead of creating one (cert-manager's http01.ingress.name).
	ExistingIngress string
	// PathType of the challenge paths; empty decides it from the ingress
	// class's controller (see PathTypeFor).
	PathType networkingv1.PathType
	// ReadinessProbe gives the solver container a TCP readiness probe. It
	// is needed only when nothing else proves the pod serves before the CA
	// is told to validate: with waitInsteadOfSelfCheck the run waits
	// instead of self-checking, and without the probe the kubelet reports
	// the pod Ready as soon as its container starts, before httpd listens.
	// With the self-check (retrying from 50 ms) the probe only adds its
	// first period to every run.
	ReadinessProbe bool
	// ServiceType of the solver Service; ClusterIP if empty.
	ServiceType corev1.ServiceType
	// PodTemplate and IngressTemplate are merged into the solver Pod and
	// Ingress as cert-manager merges them (see template.go).
	PodTemplate     *certmanager.ACMEChallengeSolverHTTP01IngressPodTemplate
	IngressTemplate *certmanager.ACMEChallengeSolverHTTP01IngressTemplate
	// ParentRefs are the Gateways the HTTPRoute solver's routes attach to,
	// and RouteLabels labels added to those routes
	// (cert-manager's http01.gatewayHTTPRoute).
	ParentRefs  []gatewayv1.ParentReference
	RouteLabels map[string]string
	// AllowSolverTraffic lets the solver add a NetworkPolicy admitting
	// TCP to the solver pod's port when the namespace's policies would
	// drop it; IngressControllerNamespace, when known, is where the
	// ingress controller runs (see networkpolicy.go).
	AllowSolverTraffic         bool
	IngressControllerNamespace string
}

func (c *Config) labels() map[string]string {
	l := map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelComponent: "http01-solver",
		LabelSolver:    c.Name,
	}
	if c.Certificate != "" {
		l[LabelCertificate] = c.Certificate
	}
	if c.Run != "" {
		l[LabelRun] = c.Run
	}
	return l
}

func (c *Config) meta(created string, owner *metav1.OwnerReference) metav1.ObjectMeta {
	m := metav1.ObjectMeta{
		Name:        c.Name,
		Namespace:   c.Namespace,
		Labels:      c.labels(),
		Annotations: map[string]string{AnnotationCreated: created},
	}
	if len(c.Certificates) > 0 {
		m.Annotations[AnnotationCertificates] = strings.Join(c.Certificates, ",")
	}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

// solverCPULimitMilli is the solver pod's CPU limit: one CPU. The limit
// is only a ceiling on bursts (the request, 10m, is what the scheduler
// reserves), and the pod's largest burst is its start: the pod's
// cgroup holds the sandbox and runc's init as well as the shell and
// httpd, and at cert-manager's 100m (its
// --acme-http01-solver-resource-limits-cpu default) that start was
// throttled in 5 CFS periods, 0.40 s of a 0.63 s start on the real node
// (cpu.stat of the pod's cgroup: nr_throttled 5, throttled_time 400 ms);
// at one CPU the pod started in 0.22-0.29 s. A pod shared by many orders
// also answers their self-checks and the CA's validations at once
// (busybox httpd forks for each).
//
// A quota on limits.cpu, a LimitRange or a policy may refuse one CPU
// where 100m passes: the pod's create (and dry run) is then sent again
// with cert-manager's 100m (CertManagerCPU).
const (
	solverCPULimitMilli      = 1000
	certManagerCPULimitMilli = 100
)

func (c *Config) cpuLimitMilli() int64 {
	if c.CertManagerCPU {
		return certManagerCPULimitMilli
	}
	return solverCPULimitMilli
}

// pod serves the key authorizations given on its command line: the shell
// writes each to a file named after its token, then runs httpd over them.
// The pod is the whole solver state in one object, like cert-manager's
// acmesolver, which takes its token and key as arguments. It mounts no
// volume: before it creates the sandbox of a pod with volumes, the kubelet
// waits for them in a 300 ms poll (podAttachAndMountRetryInterval in
// kubernetes pkg/kubelet/volumemanager/volume_manager.go), which was a
// third of the pod's start. It is the anchor of the order: the Service and
// Ingress are owned by it, so deleting it lets the garbage collector
// remove anything a killed run left behind.
func (c *Config) pod(chals []acme.Challenge, created string) *corev1.Pod {
	image := c.Image
	if image == "" {
		image = DefaultImage
	}
	no, yes := false, true
	uid := int64(nobodyUID)
	grace := int64(terminationGrace)
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("10m"),
		corev1.ResourceMemory: resource.MustParse("16Mi"),
	}
	limits := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(c.cpuLimitMilli(), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("64Mi"),
	}
	meta := c.meta(created, nil)
	pod := &corev1.Pod{
		ObjectMeta: meta,
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   &yes,
				RunAsUser:      &uid,
				RunAsGroup:     &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:      "http01",
				Image:     image,
				Command:   podCommand(chals),
				Ports:     []corev1.ContainerPort{{Name: portName, ContainerPort: httpPort, Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{Requests: res, Limits: limits},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					ReadOnlyRootFilesystem:   &yes,
					RunAsNonRoot:             &yes,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if c.ReadinessProbe {
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(portName)}},
			PeriodSeconds: 1,
		}
	}
	c.applyPodTemplate(pod)
	return pod
}

// podScript writes each key authorization argument to the file named
// after its token, the part before the dot (RFC 8555 section 8.1: token
// "." thumbprint; start admits only base64url tokens), and hands the
// container to httpd in the foreground on the files.
var podScript = `set -e
d=` + webRoot + `/.well-known/acme-challenge
mkdir -p "$d"
for ka do printf %s "$ka" >"$d/${ka%%.*}"; done
exec httpd -f -p ` + strconv.Itoa(httpPort) + ` -h ` + webRoot

// podCommand is the solver container's command: podScript with one
// argument per challenge.
func podCommand(chals []acme.Challenge) []string {
	cmd := make([]string, 0, 4+len(chals))
	cmd = append(cmd, "sh", "-c", podScript, "http01")
	for _, ch := range chals {
		cmd = append(cmd, ch.KeyAuthorization)
	}
	return cmd
}

func (c *Config) service(owner *metav1.OwnerReference, created string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: c.meta(created, owner),
		Spec: corev1.ServiceSpec{
			Type:     c.serviceType(),
			Selector: map[string]string{LabelSolver: c.Name},
			Ports: []corev1.ServicePort{{
				Name: portName, Port: httpPort, TargetPort: intstr.FromString(portName), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// ingress routes each token's path to the solver Service, with path type
// Exact until setPathType says otherwise. An IP identifier gets a rule
// without host: the CA connects to the IP itself and sends it as Host,
// which no Ingress host may be.
func (c *Config) ingress(chals []acme.Challenge, owner *metav1.OwnerReference, created string) *networkingv1.Ingress {
	byHost := c.challengePaths(chals, networkingv1.PathTypeExact)
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	ing := &networkingv1.Ingress{ObjectMeta: c.meta(created, owner)}
	for _, h := range hosts {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
			Host:             h,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: byHost[h]}},
		})
	}
	if c.LegacyClass != "" {
		ing.Annotations["kubernetes.io/ingress.class"] = c.LegacyClass
	} else if c.IngressClassName != "" {
		name := c.IngressClassName
		ing.Spec.IngressClassName = &name
	}
	c.applyIngressTemplate(ing)
	return ing
}

// setPathType sets the type of every path of ing, which holds only
// challenge paths.
func setPathType(ing *networkingv1.Ingress, t networkingv1.PathType) {
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			pt := t
			r.HTTP.Paths[i].PathType = &pt
		}
	}
}

package solver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
)

// Workload is what every HTTP-01 solver shares, whatever routes the CA's
// requests: the pod serving the key authorizations and the Service in front
// of it, the wait for the pod, the self-check, and the deletion of every
// object created. Ingress embeds it.
type Workload struct {
	Client kubernetes.Interface
	// Dynamic creates and deletes the objects client-go has no typed
	// client for: HTTPRoutes.
	Dynamic dynamic.Interface
	Config  Config
	// Checker verifies the challenge URLs before the CA is asked to.
	Checker *SelfCheck
	Observe acme.Observer
	// Policies, when set, shares the namespace's NetworkPolicies list
	// between the solvers of one run.
	Policies *NetworkPolicies
	// Now is injectable for tests.
	Now func() time.Time

	mu      sync.Mutex
	created []kindName
	// openTraffic: the dry run found NetworkPolicies dropping the
	// solver's traffic and the user opted in to a policy admitting it.
	openTraffic bool
	// podUID is the pod start created, once its create has answered.
	podUID types.UID
}

type kindName struct{ kind, name string }

// tokenPattern is RFC 8555's base64url token: it becomes a file name and a
// URL path, so nothing else is accepted from the CA.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// start creates the pod and the Service, and returns the owner reference
// that makes the pod the anchor of whatever else the solver creates, and
// the creation stamp all its objects carry.
//
// Each object is tracked before it is created: a create whose answer is
// lost may still have happened, and cleanUp ignores what is not there.
// Names are unique per order, so AlreadyExists means a retried create of
// ours already went through.
func (w *Workload) start(ctx context.Context, chals []acme.Challenge) (*metav1.OwnerReference, string, error) {
	for _, ch := range chals {
		if !tokenPattern.MatchString(ch.Token) {
			return nil, "", fmt.Errorf("the CA sent challenge token %q for %s, which is not base64url", ch.Token, ch.Identifier)
		}
		if !strings.HasPrefix(ch.KeyAuthorization, ch.Token+".") {
			// The pod names each file after its argument's token part.
			return nil, "", fmt.Errorf("key authorization for %s does not begin with its token and a dot (RFC 8555 section 8.1)", ch.Identifier)
		}
	}
	created := w.now().UTC().Format(time.RFC3339)
	cfg := &w.Config
	ns := cfg.Namespace
	pods := w.Client.CoreV1().Pods(ns)

	w.track(KindPod, cfg.Name)
	pod, smallCPU, err := createPod(ctx, pods, cfg, cfg.pod(chals, created), chals, created, metav1.CreateOptions{})
	if smallCPU {
		cfg.CertManagerCPU = true
	}
	if apierrors.IsAlreadyExists(err) {
		pod, err = pods.Get(ctx, cfg.Name, metav1.GetOptions{})
		if err == nil && pod.Labels[LabelSolver] != cfg.Name {
			return nil, "", fmt.Errorf("pod %s/%s exists and is not this solver's", ns, cfg.Name)
		}
	}
	if err != nil {
		return nil, "", Admission(err, "pod", ns, cfg.Name, "create")
	}
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
	w.mu.Lock()
	w.podUID = pod.UID
	w.mu.Unlock()

	w.track(KindService, cfg.Name)
	_, err = w.Client.CoreV1().Services(ns).Create(ctx, cfg.service(owner, created), metav1.CreateOptions{})
	if ignoreExists(err) != nil {
		return nil, "", Admission(err, "service", ns, cfg.Name, "create")
	}
	w.mu.Lock()
	open := w.openTraffic
	w.mu.Unlock()
	if open {
		w.track(KindNetworkPolicy, cfg.Name)
		if _, err := w.Client.NetworkingV1().NetworkPolicies(ns).Create(ctx, cfg.networkPolicy(owner, created), metav1.CreateOptions{}); ignoreExists(err) != nil {
			return nil, "", Admission(err, "networkpolicy", ns, cfg.Name, "create")
		}
		w.emit(acme.StatePresenting, fmt.Sprintf("created networkpolicy %s/%s admitting TCP to the solver port %d", ns, cfg.Name, httpPort))
	}
	return owner, created, nil
}

func (w *Workload) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// ready waits for the pod, then self-checks every challenge URL.
func (w *Workload) ready(ctx context.Context, chals []acme.Challenge) error {
	if err := w.waitPodReady(ctx); err != nil {
		return err
	}
	if w.Checker == nil || w.Checker.WaitInstead != nil {
		w.emit(acme.StatePresenting, "solver pod ready")
	} else {
		w.emit(acme.StatePresenting, "solver pod ready; self-checking")
	}
	return check(ctx, w.Checker, chals, w.Observe)
}

// check self-checks chals with chk, if any.
func check(ctx context.Context, chk *SelfCheck, chals []acme.Challenge, observe acme.Observer) error {
	if chk == nil {
		return nil
	}
	return chk.CheckAll(ctx, chals, observe)
}

// TrafficOpened reports whether the dry run decided a NetworkPolicy must
// admit the solver's traffic (Config.AllowSolverTraffic and policies
// that would drop it).
func (w *Workload) TrafficOpened() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.openTraffic
}

// OpenTraffic has Start create the NetworkPolicy admitting the solver's
// traffic, as a dry run of another solver with the same configuration
// decided (see TrafficOpened).
func (w *Workload) OpenTraffic() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.openTraffic = true
}

// waitPodReady watches the solver pod until it is Ready, and fails fast
// when it cannot start (image pull, crash loop, admission, scheduling).
func (w *Workload) waitPodReady(ctx context.Context) error {
	ns, name := w.Config.Namespace, w.Config.Name
	wt, err := w.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return kube.Describe(err, "watch", "pods", ns)
	}
	defer wt.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			if last != "" {
				return fmt.Errorf("solver pod %s/%s not ready (%s): %w", ns, name, last, ctx.Err())
			}
			return fmt.Errorf("solver pod %s/%s not ready: %w", ns, name, ctx.Err())
		case ev, ok := <-wt.ResultChan():
			if !ok {
				// The apiserver closes watches now and then: start again.
				return w.waitPodReady(ctx)
			}
			switch ev.Type {
			case watch.Deleted:
				return fmt.Errorf("solver pod %s/%s was deleted while waiting for it", ns, name)
			case watch.Error:
				return fmt.Errorf("watch solver pod: %v", apierrors.FromObject(ev.Object))
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			ready, why, fatal := podState(pod)
			if ready {
				return nil
			}
			if fatal {
				return fmt.Errorf("solver pod %s/%s cannot run: %s", ns, name, why)
			}
			if why != last && why != "" {
				last = why
				w.emit(acme.StatePresenting, "solver pod: "+why)
			}
		}
	}
}

// podState reads a pod's readiness and, when not ready, why; fatal marks
// states that will not resolve by waiting.
func podState(pod *corev1.Pod) (ready bool, why string, fatal bool) {
	switch pod.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		return false, fmt.Sprintf("pod %s: %s %s", strings.ToLower(string(pod.Status.Phase)), pod.Status.Reason, pod.Status.Message), true
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true, "", false
		}
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			why = "unschedulable: " + c.Message
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			why = strings.TrimSpace(w.Reason + " " + w.Message)
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff":
				return false, why, true
			}
		}
		if t := cs.LastTerminationState.Terminated; t != nil && cs.RestartCount > 0 {
			return false, fmt.Sprintf("container exited with code %d (%s) %s", t.ExitCode, t.Reason, t.Message), true
		}
	}
	if why == "" {
		why = string(pod.Status.Phase)
	}
	return false, why, false
}

// createPod creates pod, cfg's pod serving chals, with opts (a dry run or
// not), and sends it again at cert-manager's CPU limit when the cluster
// refused the larger one (solverCPULimitMilli): certManagerCPU reports
// that the second one went through.
func createPod(ctx context.Context, pods corev1client.PodInterface, cfg *Config, pod *corev1.Pod, chals []acme.Challenge, created string, opts metav1.CreateOptions) (_ *corev1.Pod, certManagerCPU bool, _ error) {
	pod, err := pods.Create(ctx, pod, opts)
	if !cpuRefused(err) || cfg.CertManagerCPU {
		return pod, false, err
	}
	small := *cfg
	small.CertManagerCPU = true
	pod, err = pods.Create(ctx, small.pod(chals, created), opts)
	return pod, err == nil, err
}

// cpuRefused tells a refusal that a smaller CPU limit may pass: admission
// (a quota, a LimitRange, a policy), not RBAC.
func cpuRefused(err error) bool {
	return apierrors.IsForbidden(err) && !kube.IsRBACForbidden(err)
}

// cleanUp deletes every object created, all at once: a run ends as soon
// as its objects are gone, and nothing waits on another. The Service,
// Ingress and NetworkPolicy are the pod's dependents, so the garbage
// collector also removes any of them a killed run could not; waiting for
// it instead (a foreground deletion) cost 0.1-0.14 s a run on an idle
// cluster for two requests fewer, and more where the collector is busy.
// removePaths takes out the paths added to an existing Ingress
// (KindIngressPaths), which only the Ingress solver knows.
func (w *Workload) cleanUp(ctx context.Context, removePaths func(context.Context) error) error {
	w.mu.Lock()
	created, podUID := w.created, w.podUID
	w.created = nil
	w.mu.Unlock()
	ns := w.Config.Namespace
	errs := make([]error, len(created))
	var wg sync.WaitGroup
	for i, o := range created {
		wg.Go(func() {
			var err error
			if o.kind == KindIngressPaths {
				err = removePaths(ctx)
			} else {
				err = deleteObject(ctx, w.Client, w.Dynamic, o.kind, ns, o.name, podUID)
			}
			if err != nil {
				errs[i] = fmt.Errorf("delete %s %s/%s: %w", o.kind, ns, o.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *Workload) track(kind, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.created = append(w.created, kindName{kind, name})
}

// emit reports a step of the solver as a whole: one pod serves every
// challenge of the order, so its progress is not repeated per name.
func (w *Workload) emit(state, detail string) {
	if w.Observe != nil {
		w.Observe(acme.Event{State: state, Detail: detail})
	}
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

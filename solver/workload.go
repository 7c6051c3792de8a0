package solver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	// ownerBlockRefused: the API server refused blockOwnerDeletion on the
	// pod's dependents (the OwnerReferencesPermissionEnforcement admission
	// plugin, where enabled, asks for update on pods/finalizers), found by
	// the dry run or by the create itself. Otherwise they block the pod's
	// deletion, and cleanUp deletes the pod in the foreground, letting the
	// garbage collector remove the Service, Ingress and NetworkPolicy: one
	// request instead of four.
	ownerBlockRefused bool
	// podWatch is the solver pod's watch, kept open from waitPodReady to
	// cleanUp, which reads the foreground deletion's end from it without
	// another request; podUID is the pod the run created.
	podWatch watch.Interface
	podUID   types.UID
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
	block := !w.ownerBlockRefused
	w.mu.Unlock()
	if block {
		owner.BlockOwnerDeletion = &block
	}

	w.track(KindService, cfg.Name)
	_, err = w.Client.CoreV1().Services(ns).Create(ctx, cfg.service(owner, created), metav1.CreateOptions{})
	if err != nil && ownerBlockRefused(err) {
		// A shared workload's own dry run did not run: learn it here.
		block, owner.BlockOwnerDeletion = false, nil
		_, err = w.Client.CoreV1().Services(ns).Create(ctx, cfg.service(owner, created), metav1.CreateOptions{})
	}
	if ignoreExists(err) != nil {
		return nil, "", Admission(err, "service", ns, cfg.Name, "create")
	}
	w.mu.Lock()
	w.ownerBlockRefused = !block
	w.mu.Unlock()
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
	// The watch outlives ctx: cleanUp reads the end of the pod's deletion
	// from it, after a shared workload's start context has ended.
	wt, err := w.Client.CoreV1().Pods(ns).Watch(context.WithoutCancel(ctx), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return kube.Describe(err, "watch", "pods", ns)
	}
	kept := false
	defer func() {
		if !kept {
			wt.Stop()
		}
	}()
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
				w.keepPodWatch(wt)
				kept = true
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

// dependentsCollected: the garbage collector has deleted the blocking
// dependents of pod, deleted in the foreground, and removed its
// foregroundDeletion finalizer.
func dependentsCollected(pod *corev1.Pod) bool {
	return !slices.Contains(pod.Finalizers, metav1.FinalizerDeleteDependents)
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

// keepPodWatch keeps wt, the ready pod's watch, for cleanUp.
func (w *Workload) keepPodWatch(wt watch.Interface) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.podWatch != nil {
		w.podWatch.Stop()
	}
	w.podWatch = wt
}

// ownerCleanupWait bounds the wait for the garbage collector in cleanUp;
// it takes well under a second on a healthy cluster, and past this bound
// the objects are deleted directly as if it were not there.
const ownerCleanupWait = 10 * time.Second

// cleanUp deletes every object created, newest first, so the anchor pod
// goes last and a run killed half-way still leaves the garbage collector
// something to work from. removePaths takes out the paths added to an
// existing Ingress (KindIngressPaths), which only the Ingress solver knows.
//
// When the pod's dependents block its deletion (not ownerBlockRefused) and its watch
// is still open, the pod is deleted in the foreground instead of each
// object on its own: the garbage collector deletes the Service, Ingress
// and NetworkPolicy, and removes the pod's foregroundDeletion finalizer
// only once they are gone, which the watch shows, so nothing outlives the
// run either way. HTTPRoutes and the paths in a user's Ingress are still
// removed directly: the collector learns of a CRD's kind only at its next
// discovery, and the user's Ingress is not the pod's.
func (w *Workload) cleanUp(ctx context.Context, removePaths func(context.Context) error) error {
	w.mu.Lock()
	created := w.created
	w.created = nil
	// The watch exists only once start has created everything, so the
	// dependents block the pod unless the API server refused it.
	wt, uid, block := w.podWatch, w.podUID, !w.ownerBlockRefused
	w.podWatch = nil
	w.mu.Unlock()
	if wt != nil {
		defer wt.Stop()
	}
	ns := w.Config.Namespace
	byOwner := block && watching(wt) && uid != "" && len(created) > 0 && created[0].kind == KindPod
	var errs []error
	var owned []kindName
	for i := len(created) - 1; i >= 0; i-- {
		o := created[i]
		var err error
		switch {
		case o.kind == KindIngressPaths:
			err = removePaths(ctx)
		case byOwner && (o.kind == KindService || o.kind == KindIngress || o.kind == KindNetworkPolicy):
			owned = append(owned, o)
			continue
		case byOwner && o.kind == KindPod:
			continue
		default:
			err = deleteObject(ctx, w.Client, w.Dynamic, o.kind, ns, o.name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", o.kind, ns, o.name, err))
		}
	}
	if byOwner {
		collected, err := w.deletePodWithDependents(ctx, wt, uid)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", KindPod, ns, created[0].name, err))
		}
		if !collected {
			for _, o := range owned {
				if err := deleteObject(ctx, w.Client, w.Dynamic, o.kind, ns, o.name); err != nil {
					errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", o.kind, ns, o.name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// pollPodCollected lists the pod (the minimal Role grants list, not get)
// every 100 ms until it is gone or has lost its foregroundDeletion
// finalizer (true), or until stop or an error.
func (w *Workload) pollPodCollected(ctx context.Context, stop <-chan time.Time) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sel := fields.OneTermEqualSelector("metadata.name", w.Config.Name).String()
	for {
		pods, err := w.Client.CoreV1().Pods(w.Config.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false
		}
		if len(pods.Items) == 0 || dependentsCollected(&pods.Items[0]) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-tick.C:
		}
	}
}

// watching reports whether wt is still open, reading what it has queued:
// a watch the API server ended (it restarted) cannot show the end of a
// foreground deletion, so cleanUp then deletes each object itself.
func watching(wt watch.Interface) bool {
	if wt == nil {
		return false
	}
	for {
		select {
		case _, ok := <-wt.ResultChan():
			if !ok {
				return false
			}
		default:
			return true
		}
	}
}

// deletePodWithDependents deletes the solver pod in the foreground and
// waits on wt, its watch, for the garbage collector to remove its
// foregroundDeletion finalizer, which it does once every dependent with
// blockOwnerDeletion is gone (Kubernetes docs, "Garbage Collection",
// foreground cascading deletion). collected is false when that was not
// seen: the pod was already gone, the watch ended, or ownerCleanupWait
// passed; the caller then deletes the dependents itself.
func (w *Workload) deletePodWithDependents(ctx context.Context, wt watch.Interface, uid types.UID) (collected bool, _ error) {
	ns, name := w.Config.Namespace, w.Config.Name
	fg := metav1.DeletePropagationForeground
	zero := int64(0)
	err := w.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy:  &fg,
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return false, nil // deleted (or replaced) by someone else
	case err != nil:
		return false, err
	}
	timer := time.NewTimer(ownerCleanupWait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-timer.C:
			w.emit(acme.StatePresenting, fmt.Sprintf("the garbage collector did not delete the objects of pod %s/%s within %s: deleting them directly", ns, name, ownerCleanupWait))
			return false, nil
		case ev, ok := <-wt.ResultChan():
			if !ok {
				// The API server ended the watch (a restart): a few
				// reads to see the end, rather than a pod left behind.
				return w.pollPodCollected(ctx, timer.C), nil
			}
			if ev.Type == watch.Deleted {
				return true, nil
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok && pod.DeletionTimestamp != nil && dependentsCollected(pod) {
				return true, nil
			}
		}
	}
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

package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/acme"
	"github.com/kubectl-acme/kubectl-acme/acme/store"
)

// Ingress solves HTTP-01 challenges with a Pod, Service and Ingress.
type Ingress struct {
	Client kubernetes.Interface
	Config Config
	// Checker verifies the challenge URLs before the CA is asked to.
	Checker *SelfCheck
	Observe acme.Observer
	// Now is injectable for tests.
	Now func() time.Time

	mu        sync.Mutex
	created   []kindName
	edit      *ingressEdit // what was added to Config.ExistingIngress
	stopWatch context.CancelFunc
}

var _ acme.Solver = (*Ingress)(nil)

type kindName struct{ kind, name string }

// Present creates the solver objects, waits for the pod to become ready
// and self-checks every challenge URL.
func (s *Ingress) Present(ctx context.Context, chals []acme.Challenge) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	created := now().UTC().Format(time.RFC3339)
	cfg := &s.Config
	ns := cfg.Namespace
	// Each object is tracked before it is created: a create whose answer
	// is lost may still have happened, and CleanUp ignores what is not there.
	// Names are unique per order, so AlreadyExists means a retried create
	// of ours already went through.
	s.track("configmap", cfg.Name)
	cm, err := s.Client.CoreV1().ConfigMaps(ns).Create(ctx, cfg.configMap(chals, created), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cm, err = s.Client.CoreV1().ConfigMaps(ns).Get(ctx, cfg.Name, metav1.GetOptions{})
		if err == nil && cm.Labels[LabelSolver] != cfg.Name {
			return fmt.Errorf("configmap %s/%s exists and is not this solver's", ns, cfg.Name)
		}
	}
	if err != nil {
		return store.Describe(err, "create", "configmaps", ns)
	}
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}

	s.track("pod", cfg.Name)
	if _, err := s.Client.CoreV1().Pods(ns).Create(ctx, cfg.pod(owner, created), metav1.CreateOptions{}); ignoreExists(err) != nil {
		return store.Describe(err, "create", "pods", ns)
	}
	s.track("service", cfg.Name)
	if _, err := s.Client.CoreV1().Services(ns).Create(ctx, cfg.service(owner, created), metav1.CreateOptions{}); ignoreExists(err) != nil {
		return store.Describe(err, "create", "services", ns)
	}
	if cfg.ExistingIngress != "" {
		if err := s.addPaths(ctx, chals); err != nil {
			return err
		}
		s.emit(acme.StatePresenting, fmt.Sprintf("created pod, service %s/%s", ns, cfg.Name))
	} else {
		s.track("ingress", cfg.Name)
		if _, err := s.Client.NetworkingV1().Ingresses(ns).Create(ctx, cfg.ingress(chals, owner, created), metav1.CreateOptions{}); ignoreExists(err) != nil {
			return store.Describe(err, "create", "ingresses.networking.k8s.io", ns)
		}
		wctx, stopWatch := context.WithCancel(ctx)
		s.mu.Lock()
		s.stopWatch = stopWatch
		s.mu.Unlock()
		go s.watchIngressAddress(wctx)
		s.emit(acme.StatePresenting, fmt.Sprintf("created pod, service, ingress %s/%s", ns, cfg.Name))
	}

	if err := s.waitPodReady(ctx); err != nil {
		return err
	}
	s.emit(acme.StatePresenting, "solver pod ready; self-checking")
	if s.Checker == nil {
		return nil
	}
	return s.Checker.CheckAll(ctx, chals, s.Observe)
}

// waitPodReady watches the solver pod until it is Ready, and fails fast
// when it cannot start (image pull, crash loop, admission, scheduling).
func (s *Ingress) waitPodReady(ctx context.Context) error {
	ns, name := s.Config.Namespace, s.Config.Name
	w, err := s.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return store.Describe(err, "watch", "pods", ns)
	}
	defer w.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			if last != "" {
				return fmt.Errorf("solver pod %s/%s not ready (%s): %w", ns, name, last, ctx.Err())
			}
			return fmt.Errorf("solver pod %s/%s not ready: %w", ns, name, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The apiserver closes watches now and then: start again.
				return s.waitPodReady(ctx)
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
				s.emit(acme.StatePresenting, "solver pod: "+why)
			}
		}
	}
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// ingressAdmitWait is how long to wait for an ingress controller to
// publish an address before saying that none may serve the class.
const ingressAdmitWait = 10 * time.Second

// watchIngressAddress reports when an ingress controller publishes an
// address for the solver Ingress, and warns when none does: the usual
// sign of an ingress class no controller serves. It only informs; the
// self-check decides.
func (s *Ingress) watchIngressAddress(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ingressAdmitWait)
	defer cancel()
	ns, name := s.Config.Namespace, s.Config.Name
	w, err := s.Client.NetworkingV1().Ingresses(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				class := s.Config.IngressClassName
				if class == "" {
					class = s.Config.LegacyClass
				}
				s.emit(acme.StatePresenting, fmt.Sprintf("no ingress controller has published an address for ingress %s/%s after %s: is class %q served?", ns, name, ingressAdmitWait, class))
			}
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			ing, ok := ev.Object.(*networkingv1.Ingress)
			if !ok {
				continue
			}
			if lb := ing.Status.LoadBalancer.Ingress; len(lb) > 0 {
				addr := lb[0].IP
				if addr == "" {
					addr = lb[0].Hostname
				}
				s.emit(acme.StatePresenting, "ingress admitted by its controller at "+addr)
				return
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

// CleanUp deletes every object Present created. Pods go with no grace
// period: they only serve public tokens, and the command should not
// leave a Terminating pod behind.
func (s *Ingress) CleanUp(ctx context.Context) error {
	s.mu.Lock()
	created := s.created
	s.created = nil
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.mu.Unlock()
	ns := s.Config.Namespace
	zero := int64(0)
	bg := metav1.DeletePropagationBackground
	var errs []error
	// Reverse order: the anchor ConfigMap goes last, so if this run is
	// killed half-way the garbage collector still removes the rest.
	for i := len(created) - 1; i >= 0; i-- {
		o := created[i]
		opts := metav1.DeleteOptions{PropagationPolicy: &bg}
		var err error
		switch o.kind {
		case "ingress-paths":
			err = s.removePaths(ctx)
		case "ingress":
			err = s.Client.NetworkingV1().Ingresses(ns).Delete(ctx, o.name, opts)
		case "service":
			err = s.Client.CoreV1().Services(ns).Delete(ctx, o.name, opts)
		case "pod":
			opts.GracePeriodSeconds = &zero
			err = s.Client.CoreV1().Pods(ns).Delete(ctx, o.name, opts)
		case "configmap":
			err = s.Client.CoreV1().ConfigMaps(ns).Delete(ctx, o.name, opts)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", o.kind, ns, o.name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Ingress) track(kind, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created = append(s.created, kindName{kind, name})
}

// emit reports a step of the solver as a whole: one pod serves every
// challenge of the order, so its progress is not repeated per name.
func (s *Ingress) emit(state, detail string) {
	if s.Observe != nil {
		s.Observe(acme.Event{State: state, Detail: detail})
	}
}

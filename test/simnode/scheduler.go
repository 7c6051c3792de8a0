package simnode

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

const schedulerName = corev1.DefaultSchedulerName

// scheduler binds pending pods to the one node there is, after the checks
// kube-scheduler's filters would make for it: node selector, required node
// affinity, taints and tolerations, scheduling gates.
type scheduler struct {
	cs    kubernetes.Interface
	node  string
	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	rec   record.EventRecorder
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]
}

func wantsScheduling(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == schedulerName) &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

func (s *scheduler) enqueue(pod *corev1.Pod) {
	if !wantsScheduling(pod) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
		s.queue.Add(key)
	}
}

// retryAll re-queues every pending pod, as the scheduler does when a node
// changes (e.g. the not-ready taint goes away).
func (s *scheduler) retryAll() {
	pods, err := s.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		s.enqueue(p)
	}
}

func (s *scheduler) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		err := s.schedule(ctx, key)
		if err != nil && ctx.Err() == nil {
			s.log.Error("schedule pod", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func (s *scheduler) schedule(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod: %w", err)
	}
	if !wantsScheduling(pod) || len(pod.Spec.SchedulingGates) > 0 {
		return nil
	}
	node, err := s.nodes.Get(s.node)
	if err != nil {
		return fmt.Errorf("get node: %w", err)
	}
	if reason := unfit(pod, node); reason != "" {
		msg := fmt.Sprintf("0/1 nodes are available: 1 %s. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.", reason)
		s.log.Info("pod unschedulable", "pod", key, "reason", reason)
		s.rec.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
		return s.markUnschedulable(ctx, pod, msg)
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: s.node},
	}
	if err := s.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or bound meanwhile
		}
		return fmt.Errorf("bind pod: %w", err)
	}
	s.log.Info("pod scheduled", "pod", key, "node", s.node)
	s.rec.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, s.node)
	return nil
}

func (s *scheduler) markUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) error {
	cp := pod.DeepCopy()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: now}
	found := false
	for i, c := range cp.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			if c.Status == cond.Status && c.Message == msg {
				return nil
			}
			cp.Status.Conditions[i] = cond
			found = true
		}
	}
	if !found {
		cp.Status.Conditions = append(cp.Status.Conditions, cond)
	}
	_, err := s.cs.CoreV1().Pods(cp.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("mark pod unschedulable: %w", err)
	}
	return nil
}

// unfit returns why pod cannot run on node in kube-scheduler's words, or
// "" if it can.
func unfit(pod *corev1.Pod, node *corev1.Node) string {
	nodeLabels := labels.Set(node.Labels)
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(nodeLabels) {
		return "node(s) didn't match Pod's node affinity/selector"
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		ok := false
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if termMatches(term, node) {
				ok = true
				break
			}
		}
		if !ok {
			return "node(s) didn't match Pod's node affinity/selector"
		}
	}
	if node.Spec.Unschedulable && !tolerates(pod.Spec.Tolerations, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return "node(s) were unschedulable"
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !tolerates(pod.Spec.Tolerations, t) {
			return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
		}
	}
	return ""
}

// termMatches evaluates one nodeSelectorTerm; an empty term matches
// nothing, as in the API.
func termMatches(term corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, r := range term.MatchExpressions {
		if !requirementMatches(r, labels.Set(node.Labels)) {
			return false
		}
	}
	for _, r := range term.MatchFields {
		if r.Key != "metadata.name" || !requirementMatches(r, labels.Set{"metadata.name": node.Name}) {
			return false
		}
	}
	return true
}

func requirementMatches(r corev1.NodeSelectorRequirement, set labels.Set) bool {
	var op selection.Operator
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		op = selection.In
	case corev1.NodeSelectorOpNotIn:
		op = selection.NotIn
	case corev1.NodeSelectorOpExists:
		op = selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		op = selection.DoesNotExist
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		v, ok := set[r.Key]
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	default:
		return false
	}
	req, err := labels.NewRequirement(r.Key, op, r.Values)
	if err != nil {
		return false
	}
	return req.Matches(set)
}

// tolerates reports whether some toleration matches the taint.
func tolerates(tols []corev1.Toleration, t corev1.Taint) bool {
	for _, tol := range tols {
		if tol.Effect != "" && tol.Effect != t.Effect {
			continue
		}
		switch tol.Operator {
		case corev1.TolerationOpExists:
			if tol.Key == "" || tol.Key == t.Key {
				return true
			}
		case corev1.TolerationOpEqual, "":
			if tol.Key == t.Key && tol.Value == t.Value {
				return true
			}
		}
	}
	return false
}

package simnode

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func isGone(err error) bool {
	// A UID precondition failure means the name now holds another pod.
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

func statusEqual(a, b *corev1.PodStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// phase is the kubelet's getPhase over the worker's container states.
func (w *podWorker) phase(pod *corev1.Pod) corev1.PodPhase {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.terminal != "" {
		return w.terminal
	}
	for _, c := range pod.Spec.InitContainers {
		st := w.ctrs[c.Name]
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case st == nil:
			return corev1.PodPending
		case sidecar:
			if st.id == "" {
				return corev1.PodPending
			}
		case st.running || st.lastTerm == nil:
			return corev1.PodPending
		case st.lastTerm.ExitCode != 0:
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				return corev1.PodFailed
			}
			return corev1.PodPending
		}
	}
	var running, waiting, stopped, succeeded int
	for _, c := range pod.Spec.Containers {
		st := w.ctrs[c.Name]
		switch {
		case st == nil:
			waiting++
		case st.running:
			running++
		case st.lastTerm != nil:
			stopped++
			if st.lastTerm.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch pod.Spec.RestartPolicy {
		case corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case corev1.RestartPolicyOnFailure:
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	return corev1.PodPending
}

// writeStatus publishes the worker's state as the pod's status.
func (w *podWorker) writeStatus(ctx context.Context) error {
	w.mu.Lock()
	pod := w.pod
	w.mu.Unlock()
	phase := w.phase(pod)
	err := w.k.writePodStatus(ctx, pod, func(cur *corev1.Pod) corev1.PodStatus {
		return w.buildStatus(cur, phase)
	})
	if err != nil {
		w.log.Error("write pod status", "err", err)
	}
	return err
}

func (w *podWorker) buildStatus(cur *corev1.Pod, phase corev1.PodPhase) corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := *cur.Status.DeepCopy()
	st.Phase = phase
	st.HostIP = w.k.hostIP
	st.HostIPs = []corev1.HostIP{{IP: w.k.hostIP}}
	if w.sb != nil && w.sb.ns != nil {
		st.PodIP = w.sb.ip
		st.PodIPs = []corev1.PodIP{{IP: w.sb.ip}}
	}
	if !w.startTime.IsZero() && st.StartTime == nil {
		t := mtime(w.startTime)
		st.StartTime = &t
	}
	if w.terminal != "" {
		st.Reason, st.Message = w.terminalReason, w.terminalMessage
	}
	terminal := phase == corev1.PodSucceeded || phase == corev1.PodFailed

	var notInit, notReady []string
	st.InitContainerStatuses = nil
	for _, c := range cur.Spec.InitContainers {
		cs := w.containerStatus(&c, terminal)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
			if !sidecar || cs.State.Running == nil {
				notInit = append(notInit, c.Name)
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	for _, c := range cur.Spec.Containers {
		cs := w.containerStatus(&c, terminal)
		if st := w.ctrs[c.Name]; len(notInit) > 0 && cs.State.Waiting != nil && (st == nil || st.id == "") {
			cs.State.Waiting.Reason = "PodInitializing"
			cs.State.Waiting.Message = ""
		}
		if !cs.Ready {
			notReady = append(notReady, c.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	now := metav1.Now()
	now.Time = now.Truncate(time.Second)
	setCond := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		status := corev1.ConditionFalse
		if ok {
			status, reason, msg = corev1.ConditionTrue, "", ""
		}
		for i := range st.Conditions {
			if st.Conditions[i].Type == t {
				c := &st.Conditions[i]
				if c.Status != status {
					c.LastTransitionTime = now
				}
				c.Status, c.Reason, c.Message = status, reason, msg
				c.ObservedGeneration = 0
				return
			}
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
	}
	setCond(corev1.PodReadyToStartContainers, w.sb != nil && w.sb.ns != nil && !terminal, "", "")
	initReason, initMsg := "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " "))
	setCond(corev1.PodInitialized, len(notInit) == 0, initReason, initMsg)
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	if phase == corev1.PodSucceeded {
		readyReason, readyMsg = "PodCompleted", ""
	}
	containersReady := len(notReady) == 0 && !terminal
	setCond(corev1.ContainersReady, containersReady, readyReason, readyMsg)
	// Readiness gates: Ready also needs each gate's condition True.
	var missing []string
	for _, g := range cur.Spec.ReadinessGates {
		ok := false
		for _, c := range st.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, string(g.ConditionType))
		}
	}
	switch {
	case !containersReady:
		setCond(corev1.PodReady, false, readyReason, readyMsg)
	case len(missing) > 0:
		setCond(corev1.PodReady, false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", missing[0]))
	default:
		setCond(corev1.PodReady, true, "", "")
	}
	return st
}

// containerStatus renders one container's state. Guarded by w.mu.
func (w *podWorker) containerStatus(c *corev1.Container, podTerminal bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:    c.Name,
		Image:   c.Image,
		ImageID: imageID(c.Image),
	}
	st := w.ctrs[c.Name]
	if st == nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		return cs
	}
	cs.RestartCount = st.restarts
	cs.ContainerID = st.id
	f := false
	cs.Started = &f
	switch {
	case st.running:
		started := st.started
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(st.startedAt)}
		cs.Started = &started
		cs.Ready = st.ready
		if st.lastTerm != nil {
			cs.LastTerminationState.Terminated = st.lastTerm.DeepCopy()
		}
	case st.lastTerm != nil && (podTerminal || st.waiting == "" && !w.restartDue(c, st)):
		cs.State.Terminated = st.lastTerm.DeepCopy()
		if st.prevTerm != nil {
			cs.LastTerminationState.Terminated = st.prevTerm.DeepCopy()
		}
	case st.lastTerm != nil:
		reason, msg := st.waiting, st.waitMsg
		if reason == "" {
			reason = "CrashLoopBackOff"
			wait := st.backoff
			if wait == 0 {
				wait = backoffInitial
			}
			msg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", wait, c.Name, w.pod.Name, w.pod.Namespace, w.pod.UID)
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		cs.LastTerminationState.Terminated = st.lastTerm.DeepCopy()
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: st.waiting, Message: st.waitMsg}
	}
	return cs
}

// restartDue reports whether an exited container will be restarted, so
// its status is "waiting" rather than "terminated". Guarded by w.mu.
func (w *podWorker) restartDue(c *corev1.Container, st *ctr) bool {
	if st.init {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return true
		}
		return st.lastTerm.ExitCode != 0 && w.pod.Spec.RestartPolicy != corev1.RestartPolicyNever
	}
	switch w.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return st.lastTerm.ExitCode != 0
	}
	return true
}

// imageID fakes the digest reference a runtime reports for an image.
func imageID(image string) string {
	repo := image
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		return repo
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	if !strings.Contains(repo, "/") {
		repo = "docker.io/library/" + repo
	}
	return repo + "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
}

package simnode

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestPhase(t *testing.T) {
	running := func() *ctr { return &ctr{id: "x", running: true} }
	exited := func(code int32) *ctr {
		return &ctr{id: "x", lastTerm: &corev1.ContainerStateTerminated{ExitCode: code}}
	}
	waiting := func() *ctr { return &ctr{waiting: "ContainerCreating"} }
	tests := []struct {
		name   string
		policy corev1.RestartPolicy
		init   map[string]*ctr // container "i"
		ctrs   map[string]*ctr // containers "a", "b"
		want   corev1.PodPhase
	}{
		{"nothing started", corev1.RestartPolicyAlways, nil, map[string]*ctr{}, corev1.PodPending},
		{"one waiting", corev1.RestartPolicyAlways, nil, map[string]*ctr{"a": running(), "b": waiting()}, corev1.PodPending},
		{"all running", corev1.RestartPolicyAlways, nil, map[string]*ctr{"a": running(), "b": running()}, corev1.PodRunning},
		{"crashed, Always restarts", corev1.RestartPolicyAlways, nil, map[string]*ctr{"a": exited(1), "b": exited(0)}, corev1.PodRunning},
		{"Never, one failed", corev1.RestartPolicyNever, nil, map[string]*ctr{"a": exited(1), "b": exited(0)}, corev1.PodFailed},
		{"Never, one still running", corev1.RestartPolicyNever, nil, map[string]*ctr{"a": exited(1), "b": running()}, corev1.PodRunning},
		{"Never, all succeeded", corev1.RestartPolicyNever, nil, map[string]*ctr{"a": exited(0), "b": exited(0)}, corev1.PodSucceeded},
		{"OnFailure, all succeeded", corev1.RestartPolicyOnFailure, nil, map[string]*ctr{"a": exited(0), "b": exited(0)}, corev1.PodSucceeded},
		{"OnFailure, one failed", corev1.RestartPolicyOnFailure, nil, map[string]*ctr{"a": exited(2), "b": exited(0)}, corev1.PodRunning},
		{"init running", corev1.RestartPolicyAlways, map[string]*ctr{"i": running()}, map[string]*ctr{}, corev1.PodPending},
		{"init failed, Never", corev1.RestartPolicyNever, map[string]*ctr{"i": exited(1)}, map[string]*ctr{}, corev1.PodFailed},
		{"init failed, Always retries", corev1.RestartPolicyAlways, map[string]*ctr{"i": exited(1)}, map[string]*ctr{}, corev1.PodPending},
		{"init done", corev1.RestartPolicyAlways, map[string]*ctr{"i": exited(0)}, map[string]*ctr{"a": running(), "b": running()}, corev1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{
				RestartPolicy: tt.policy,
				Containers:    []corev1.Container{{Name: "a"}, {Name: "b"}},
			}}
			w := &podWorker{pod: pod, ctrs: map[string]*ctr{}}
			for n, c := range tt.ctrs {
				w.ctrs[n] = c
			}
			if tt.init != nil {
				pod.Spec.InitContainers = []corev1.Container{{Name: "i"}}
				for n, c := range tt.init {
					c.init = true
					w.ctrs[n] = c
				}
			}
			if got := w.phase(pod); got != tt.want {
				t.Errorf("phase = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestContainerStatusStates(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "c"}}}}
	pod.Name, pod.Namespace, pod.UID = "p", "ns", "u"
	term := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	tests := []struct {
		name       string
		st         *ctr
		terminal   bool
		wantState  string
		wantReason string
	}{
		{"creating", &ctr{waiting: "ContainerCreating"}, false, "waiting", "ContainerCreating"},
		{"config error", &ctr{waiting: "CreateContainerConfigError", waitMsg: "x"}, false, "waiting", "CreateContainerConfigError"},
		{"running", &ctr{id: "x", running: true, started: true, startedAt: time.Now()}, false, "running", ""},
		{"crashed, backing off", &ctr{id: "x", lastTerm: term, restarts: 1, backoff: 10 * time.Second}, false, "waiting", "CrashLoopBackOff"},
		{"crashed, pod finished", &ctr{id: "x", lastTerm: term}, true, "terminated", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &podWorker{pod: pod, ctrs: map[string]*ctr{"c": tt.st}}
			cs := w.containerStatus(&pod.Spec.Containers[0], tt.terminal)
			var state, reason string
			switch {
			case cs.State.Waiting != nil:
				state, reason = "waiting", cs.State.Waiting.Reason
			case cs.State.Running != nil:
				state = "running"
			case cs.State.Terminated != nil:
				state = "terminated"
			}
			if state != tt.wantState || reason != tt.wantReason {
				t.Errorf("state %s %s, want %s %s", state, reason, tt.wantState, tt.wantReason)
			}
			if tt.st.lastTerm != nil && state == "waiting" && cs.LastTerminationState.Terminated == nil {
				t.Error("a restarting container must report its last termination")
			}
		})
	}
}

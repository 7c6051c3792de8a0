package simnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
	// minGrace is the kubelet's minimum termination grace period.
	minGrace = 2 * time.Second
	// configRetry is how often a container whose config cannot be built
	// (missing ConfigMap key, ...) is retried besides on object changes.
	configRetry = 5 * time.Second
)

// ctr is the runtime state of one container of a pod. Guarded by the
// worker's mu.
type ctr struct {
	init      bool
	id        string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the current process has exited
	running   bool
	startedAt time.Time
	restarts  int32
	lastTerm  *corev1.ContainerStateTerminated // latest exit
	prevTerm  *corev1.ContainerStateTerminated // the exit before it
	waiting   string
	waitMsg   string
	nextTry   time.Time // backoff gate for the next start
	backoff   time.Duration
	ready     bool
	started   bool // startup probe passed (or none)
	cancel    context.CancelFunc
	stopping  bool // simnode is killing it
}

// podWorker owns one pod's sandbox and containers, like the kubelet's pod
// workers: it reacts to pod updates, process exits and probe results.
type podWorker struct {
	k     *kubelet
	uid   types.UID
	log   *slog.Logger
	kickc chan struct{}

	mu       sync.Mutex
	pod      *corev1.Pod
	gone     bool // deleted from the API
	sb       *sandbox
	ctrs     map[string]*ctr
	tokens   map[string]cachedToken
	mountErr string
	// terminal is the phase once the pod has finished; nothing restarts.
	terminal        corev1.PodPhase
	terminalReason  string
	terminalMessage string
	startTime       time.Time
	lastEvent       map[string]time.Time
}

func (w *podWorker) update(pod *corev1.Pod, gone bool) {
	w.mu.Lock()
	w.pod = pod
	w.gone = w.gone || gone
	w.mu.Unlock()
	w.kick()
}

func (w *podWorker) kick() {
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

func (w *podWorker) sandboxRef() *sandbox {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sb
}

func (w *podWorker) run(ctx context.Context) {
	defer w.k.removeWorker(w.uid)
	for {
		wake, done := w.sync(ctx)
		if done {
			return
		}
		var timer <-chan time.Time
		if wake > 0 {
			t := time.NewTimer(wake)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
			w.stopAll(ctx, 0)
			w.removeSandbox()
			return
		case <-w.kickc:
		case <-timer:
		}
	}
}

// event records an event on the pod, at most every 10s for the same
// message, as the kubelet's retries would otherwise flood.
func (w *podWorker) event(pod *corev1.Pod, typ, reason, msg string) {
	key := reason + "\x00" + msg
	w.mu.Lock()
	if w.lastEvent == nil {
		w.lastEvent = map[string]time.Time{}
	}
	last, seen := w.lastEvent[key]
	if seen && time.Since(last) < 10*time.Second {
		w.mu.Unlock()
		return
	}
	w.lastEvent[key] = time.Now()
	w.mu.Unlock()
	w.k.rec.Event(pod, typ, reason, msg)
}

// sync moves the pod one step towards its desired state and writes its
// status. It returns when to run again, and done once the pod is gone.
func (w *podWorker) sync(ctx context.Context) (time.Duration, bool) {
	w.mu.Lock()
	pod, gone := w.pod, w.gone
	w.mu.Unlock()
	if gone || pod.DeletionTimestamp != nil {
		w.terminate(ctx, pod, gone)
		return 0, true
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished before this worker started (e.g. an earlier simnode).
		return 0, false
	}
	w.mu.Lock()
	terminal := w.terminal
	w.mu.Unlock()
	if terminal != "" {
		w.writeStatus(ctx)
		return 0, false
	}

	if w.sandboxRef() == nil {
		if err := w.createSandbox(pod); err != nil {
			w.log.Error("create pod root failed", "err", err)
			w.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
			return 5 * time.Second, false
		}
	}

	var wake time.Duration
	soon := func(d time.Duration) {
		if d > 0 && (wake == 0 || d < wake) {
			wake = d
		}
	}

	if err := w.syncVolumes(ctx, pod); err != nil {
		w.mu.Lock()
		started := false
		for _, c := range w.ctrs {
			started = started || c.id != ""
		}
		changed := w.mountErr != err.Error()
		w.mountErr = err.Error()
		w.mu.Unlock()
		// One event per volume, as the kubelet's volume manager reports.
		for _, e := range unjoin(err) {
			w.event(pod, corev1.EventTypeWarning, "FailedMount", e.Error())
		}
		if changed {
			w.log.Info("volume mount failed", "err", err, "containersStarted", started)
		}
		if !started {
			w.writeStatus(ctx)
			return 2 * time.Second, false
		}
		soon(2 * time.Second)
	} else {
		w.mu.Lock()
		w.mountErr = ""
		w.mu.Unlock()
	}
	if err := w.createNetwork(pod); err != nil {
		w.log.Error("create sandbox network failed", "err", err)
		w.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		w.writeStatus(ctx)
		return 5 * time.Second, false
	}

	if d, ok := w.deadlineExceeded(pod); ok {
		w.stopAll(ctx, gracePeriod(pod))
		w.finish(corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		w.writeStatus(ctx)
		return 0, false
	} else {
		soon(d)
	}

	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		// Sidecars (restartPolicy Always) run for the pod's lifetime and
		// only need to have started.
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		st := w.container(c.Name, true)
		w.mu.Lock()
		succeeded := st.lastTerm != nil && st.lastTerm.ExitCode == 0 && !st.running
		running := st.running
		failedNever := st.lastTerm != nil && st.lastTerm.ExitCode != 0 && !st.running && pod.Spec.RestartPolicy == corev1.RestartPolicyNever
		w.mu.Unlock()
		if succeeded && !sidecar || running && sidecar {
			continue
		}
		if failedNever {
			w.finish(corev1.PodFailed, "", "")
			initDone = false
			break
		}
		if !running {
			// Restart policy Never with a failed init container was
			// handled above, so every other init container (re)starts.
			soon(w.maybeStart(ctx, pod, c, st, true))
		}
		initDone = false
		break
	}
	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			st := w.container(c.Name, false)
			w.mu.Lock()
			running := st.running
			w.mu.Unlock()
			if running {
				continue
			}
			soon(w.maybeStart(ctx, pod, c, st, w.shouldRestart(pod, st)))
		}
	}
	if phase := w.phase(pod); phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		w.finish(phase, "", "")
		// Sidecars do not outlive the pod.
		w.stopAll(ctx, gracePeriodSpec(pod))
	}
	w.writeStatus(ctx)
	return wake, false
}

// unjoin splits an errors.Join result.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (w *podWorker) container(name string, init bool) *ctr {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.ctrs[name]
	if !ok {
		st = &ctr{init: init, waiting: "ContainerCreating"}
		if init {
			st.waiting = "PodInitializing"
		}
		w.ctrs[name] = st
	}
	return st
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func (w *podWorker) shouldRestart(pod *corev1.Pod, st *ctr) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st.lastTerm == nil {
		return true // never ran
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return st.lastTerm.ExitCode != 0
	}
	return true
}

func (w *podWorker) finish(phase corev1.PodPhase, reason, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.terminal == "" {
		w.terminal, w.terminalReason, w.terminalMessage = phase, reason, msg
		w.log.Info("pod finished", "phase", phase, "reason", reason)
	}
}

func (w *podWorker) deadlineExceeded(pod *corev1.Pod) (time.Duration, bool) {
	w.mu.Lock()
	start := w.startTime
	w.mu.Unlock()
	if pod.Spec.ActiveDeadlineSeconds == nil || start.IsZero() {
		return 0, false
	}
	left := time.Until(start.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second))
	if left <= 0 {
		return 0, true
	}
	return left, false
}

func (w *podWorker) createSandbox(pod *corev1.Pod) error {
	k := w.k
	dir := filepath.Join(k.workDir, "pods", string(pod.UID))
	sb := &sandbox{dir: dir, root: filepath.Join(dir, "root"), written: map[string]map[string]fileProjection{}}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("create pod dir: %w", err)
	}
	if err := populateRoot(sb.root, k.busybox, k.applets, pod); err != nil {
		os.RemoveAll(dir)
		return err
	}
	if readOnlyRoot(pod) {
		// A read-only root cannot be had without mount namespaces; this at
		// least stops non-root processes from writing to /tmp.
		if err := os.Chmod(filepath.Join(sb.root, "tmp"), 0o755); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("chmod /tmp: %w", err)
		}
	}
	w.mu.Lock()
	w.sb = sb
	w.startTime = time.Now()
	w.mu.Unlock()
	return nil
}

// readOnlyRoot reports whether every container asks for a read-only root
// filesystem; the containers share one root here.
func readOnlyRoot(pod *corev1.Pod) bool {
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			return false
		}
	}
	return true
}

// createNetwork gives the sandbox its network namespace and pod IP.
func (w *podWorker) createNetwork(pod *corev1.Pod) error {
	k := w.k
	sb := w.sandboxRef()
	if ns, _ := w.network(); ns != nil {
		return nil
	}
	ip, err := k.allocateIP(pod.UID)
	if err != nil {
		return err
	}
	ns, err := k.nss.newNetNS(podHostname(pod))
	if err != nil {
		k.releaseIP(ip)
		return err
	}
	if err := writeHosts(sb.root, pod, ip); err != nil {
		ns.Close()
		k.releaseIP(ip)
		return err
	}
	w.mu.Lock()
	sb.ns, sb.ip = ns, ip
	w.mu.Unlock()
	w.log.Info("pod sandbox created", "ip", ip, "root", sb.root)
	return nil
}

// network returns the sandbox's namespace and IP, nil before it has them.
func (w *podWorker) network() (*netNS, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sb == nil {
		return nil, ""
	}
	return w.sb.ns, w.sb.ip
}

func (w *podWorker) removeSandbox() {
	w.mu.Lock()
	sb := w.sb
	w.sb = nil
	w.mu.Unlock()
	if sb == nil {
		return
	}
	if sb.ns != nil {
		sb.ns.Close()
		w.k.releaseIP(sb.ip)
	}
	if err := os.RemoveAll(sb.dir); err != nil {
		w.log.Error("remove pod dir", "err", err)
	}
}

// syncVolumes (re)writes every volume whose content changed. Errors are
// joined in the kubelet's wording; volumes that could be set up are.
func (w *podWorker) syncVolumes(ctx context.Context, pod *corev1.Pod) error {
	sb := w.sandboxRef()
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := filepath.Join(sb.root, volumesDir, v.Name)
		payload, isData, err := volumePayload(ctx, pod, v, w.k.src, w.token, w.k.node, w.k.hostIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err))
			continue
		}
		if !isData {
			if err := os.MkdirAll(dir, 0o777); err != nil {
				errs = append(errs, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err))
				continue
			}
			os.Chmod(dir, 0o777)
			continue
		}
		if prev, ok := sb.written[v.Name]; ok && payloadEqual(prev, payload) {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err))
			continue
		}
		var gid *int64
		if pod.Spec.SecurityContext != nil {
			gid = pod.Spec.SecurityContext.FSGroup
		}
		if err := writeAtomic(dir, payload, gid); err != nil {
			errs = append(errs, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err))
			continue
		}
		_, updated := sb.written[v.Name]
		sb.written[v.Name] = payload
		if updated {
			w.log.Info("volume updated", "volume", v.Name)
		}
	}
	return errors.Join(errs...)
}

// token returns the projected token for src, renewing it when due.
func (w *podWorker) token(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	key := src.Audience + "\x00" + src.Path
	w.mu.Lock()
	t, ok := w.tokens[key]
	w.mu.Unlock()
	if ok && time.Now().Before(t.renew) {
		return t.data, nil
	}
	data, renew := w.k.requestToken(ctx, pod, src)
	w.mu.Lock()
	w.tokens[key] = cachedToken{data: data, renew: renew}
	w.mu.Unlock()
	return data, nil
}

// maybeStart starts a container that is due to (re)start, and returns
// when to look at it again if it is waiting for a backoff or retry.
func (w *podWorker) maybeStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *ctr, restart bool) time.Duration {
	w.mu.Lock()
	if !restart {
		w.mu.Unlock()
		return 0
	}
	if wait := time.Until(st.nextTry); wait > 0 {
		w.mu.Unlock()
		return wait
	}
	w.mu.Unlock()
	return w.startContainer(ctx, pod, c, st)
}

func (w *podWorker) setWaiting(st *ctr, reason, msg string) {
	w.mu.Lock()
	st.waiting, st.waitMsg = reason, msg
	w.mu.Unlock()
}

// startContainer builds a container's process and starts it, reporting
// failures with the kubelet's reasons and events.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *ctr) time.Duration {
	k := w.k
	sb := w.sandboxRef()
	ns, _ := w.network()
	img, err := resolveImage(c, k.isApp)
	if err != nil {
		w.mu.Lock()
		st.backoff = nextBackoff(st.backoff)
		st.nextTry = time.Now().Add(st.backoff)
		wait := st.backoff
		first := st.waiting != "ErrImagePull" && st.waiting != "ImagePullBackOff"
		st.waiting, st.waitMsg = "ErrImagePull", err.Error()
		if !first {
			st.waiting, st.waitMsg = "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %v", c.Image, err)
		}
		w.mu.Unlock()
		w.log.Info("cannot run container image", "container", c.Name, "image", c.Image, "err", err)
		w.event(pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
		w.event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return wait
	}
	configErr := func(err error) time.Duration {
		w.mu.Lock()
		changed := st.waitMsg != err.Error()
		w.mu.Unlock()
		w.setWaiting(st, "CreateContainerConfigError", err.Error())
		if changed {
			w.log.Info("container config error", "container", c.Name, "err", err)
		}
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return configRetry
	}
	env, order, err := containerEnv(pod, c, k.src, k.node, k.hostIP)
	if err != nil {
		return configErr(err)
	}
	id, err := containerIdentity(pod, c, img)
	if err != nil {
		return configErr(err)
	}
	for _, m := range c.VolumeMounts {
		vol := volumeByName(pod, m.Name)
		if vol == nil {
			return configErr(fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, c.Name))
		}
		if err := mountVolume(sb.root, m, vol, env); err != nil {
			return configErr(err)
		}
	}
	w.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))

	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	procEnv := runtimeEnv(img, hostname, id, env, order)
	argv := containerArgv(c, img, env)
	pathEnv := ""
	for _, kv := range procEnv {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	workDir := c.WorkingDir
	if workDir == "" {
		workDir = img.WorkingDir
	}
	var startErr error
	var exe string
	if len(argv) == 0 {
		startErr = errors.New("no command specified")
	} else {
		exe, startErr = lookPath(argv[0], pathEnv, func(p string) bool {
			fi, err := os.Stat(filepath.Join(sb.root, p))
			return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
		})
	}
	logPath := filepath.Join(sb.dir, "logs", c.Name+".log")
	var cmd *exec.Cmd
	if startErr == nil {
		termPath := c.TerminationMessagePath
		if termPath == "" {
			termPath = "/dev/termination-log"
		}
		_ = os.WriteFile(filepath.Join(sb.root, termPath), nil, 0o666)
		var logf *os.File
		logf, startErr = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if startErr == nil {
			cmd, startErr = k.nss.start(sb.root, ns, procSpec{path: exe, argv: argv, env: procEnv, dir: workDir, id: id, out: logf})
			logf.Close()
		}
	}
	now := time.Now()
	cid := newContainerID()

	w.mu.Lock()
	restarted := st.id != ""
	if restarted {
		st.restarts++
	}
	st.id = cid
	st.waiting, st.waitMsg = "", ""
	if startErr != nil {
		// Like a runtime that cannot exec the entrypoint: the container is
		// created, fails to start with exit code 128, and is restarted per
		// restartPolicy.
		msg := fmt.Sprintf("failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: %v: unknown", startErr)
		st.prevTerm = st.lastTerm
		st.lastTerm = &corev1.ContainerStateTerminated{
			ExitCode: 128, Reason: "StartError", Message: msg,
			StartedAt: metav1.NewTime(time.Unix(0, 0)), FinishedAt: mtime(now), ContainerID: cid,
		}
		wait := scheduleRestart(st, now)
		w.mu.Unlock()
		w.log.Info("container failed to start", "container", c.Name, "err", startErr)
		w.event(pod, corev1.EventTypeWarning, "Failed", "Error: "+msg)
		if wait == 0 {
			w.kick()
		}
		return wait
	}
	cctx, cancel := context.WithCancel(ctx)
	st.cmd, st.running, st.startedAt, st.done, st.cancel = cmd, true, now, make(chan struct{}), cancel
	st.ready = false
	st.started = c.StartupProbe == nil
	done := st.done
	w.mu.Unlock()

	w.log.Info("container started", "container", c.Name, "pid", cmd.Process.Pid, "argv", argv, "uid", id.uid, "restarts", st.restarts)
	w.event(pod, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	w.event(pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)

	go w.waitExit(pod, c, st, cmd, done, logPath)
	w.startProbes(cctx, pod, c, st, id, procEnv)
	return 0
}

// waitExit records a container's exit, its termination message, and
// schedules the restart backoff.
func (w *podWorker) waitExit(pod *corev1.Pod, c *corev1.Container, st *ctr, cmd *exec.Cmd, done chan struct{}, logPath string) {
	err := cmd.Wait()
	code, reason := exitInfo(err)
	now := time.Now()
	msg := w.terminationMessage(c, code, logPath)
	w.mu.Lock()
	stopping := st.stopping
	st.stopping = false
	st.cancel()
	st.running, st.ready, st.cmd = false, false, nil
	st.prevTerm = st.lastTerm
	st.lastTerm = &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: msg,
		StartedAt: mtime(st.startedAt), FinishedAt: mtime(now), ContainerID: st.id,
	}
	// A container that ran for twice the maximum backoff starts afresh.
	if now.Sub(st.startedAt) > 2*backoffMax {
		st.backoff = 0
	}
	scheduleRestart(st, now)
	close(done)
	w.mu.Unlock()
	lvl := slog.LevelInfo
	if code != 0 && !stopping {
		lvl = slog.LevelWarn
	}
	w.log.Log(context.Background(), lvl, "container exited", "container", c.Name, "exitCode", code, "output", tail(logPath, 512))
	w.kick()
}

// scheduleRestart sets when an exited container may start again: the
// kubelet restarts the first crash at once, then backs off 10s, 20s, ...
// up to 5m. Guarded by w.mu.
func scheduleRestart(st *ctr, now time.Time) time.Duration {
	if st.restarts == 0 && st.backoff == 0 {
		st.nextTry = now
		return 0
	}
	st.backoff = nextBackoff(st.backoff)
	st.nextTry = now.Add(st.backoff)
	return st.backoff
}

func nextBackoff(cur time.Duration) time.Duration {
	if cur == 0 {
		return backoffInitial
	}
	return min(2*cur, backoffMax)
}

func (w *podWorker) terminationMessage(c *corev1.Container, code int32, logPath string) string {
	sb := w.sandboxRef()
	if sb == nil {
		return ""
	}
	p := c.TerminationMessagePath
	if p == "" {
		p = "/dev/termination-log"
	}
	data, _ := os.ReadFile(filepath.Join(sb.root, p))
	if len(data) > 4096 {
		data = data[:4096]
	}
	msg := string(data)
	if msg == "" && code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = tail(logPath, 2048)
	}
	return msg
}

// tail returns the last n bytes of a log file.
func tail(p string, n int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, n))
	return string(b)
}

func newContainerID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "simnode://" + hex.EncodeToString(b[:])
}

func mtime(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

func volumeByName(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// startProbes runs the container's startup, readiness and liveness probes
// until ctx ends (the container exits or the pod goes away).
func (w *podWorker) startProbes(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *ctr, id identity, env []string) {
	sb := w.sandboxRef()
	ns, ip := w.network()
	p := &prober{
		c:  c,
		ip: ip,
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return w.k.nss.dial(ctx, ns, addr)
		},
		exec: func(ctx context.Context, argv []string) (int, string, error) {
			return w.execInContainer(ctx, sb, argv, id, env)
		},
	}
	if c.StartupProbe != nil {
		go w.probeLoop(ctx, pod, c, st, p, "Startup", c.StartupProbe)
	}
	if c.ReadinessProbe != nil {
		go w.probeLoop(ctx, pod, c, st, p, "Readiness", c.ReadinessProbe)
	} else {
		// Without a readiness probe a container is ready once started.
		w.mu.Lock()
		st.ready = st.started && st.running
		w.mu.Unlock()
	}
	if c.LivenessProbe != nil {
		go w.probeLoop(ctx, pod, c, st, p, "Liveness", c.LivenessProbe)
	}
}

// probeLoop is the kubelet's probe worker: first probe after
// initialDelaySeconds, then every periodSeconds, with success and failure
// thresholds. Readiness and liveness wait for the startup probe.
func (w *podWorker) probeLoop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *ctr, p *prober, kind string, pr *corev1.Probe) {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	// The kubelet's worker ticks after the container starts rather than at
	// the same instant; a short floor keeps a probe from always losing the
	// race against the process binding its port.
	delay := max(time.Duration(pr.InitialDelaySeconds)*time.Second, 300*time.Millisecond)
	successes, failures := 0, 0
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(period)
		w.mu.Lock()
		started := st.started
		w.mu.Unlock()
		if kind != "Startup" && !started {
			continue
		}
		if kind == "Startup" && started {
			return
		}
		res := p.probe(ctx, pr)
		if ctx.Err() != nil {
			return
		}
		if res.ok {
			successes++
			failures = 0
		} else {
			failures++
			successes = 0
			w.event(pod, corev1.EventTypeWarning, "Unhealthy", kind+" probe failed: "+res.msg)
		}
		threshold := int(max(pr.SuccessThreshold, 1))
		failThreshold := int(max(pr.FailureThreshold, 1))
		switch kind {
		case "Readiness":
			w.mu.Lock()
			changed := false
			if successes >= threshold && !st.ready {
				st.ready, changed = true, true
			}
			if failures >= failThreshold && st.ready {
				st.ready, changed = false, true
			}
			w.mu.Unlock()
			if changed {
				w.log.Info("readiness changed", "container", c.Name, "ready", res.ok, "msg", res.msg)
				w.kick()
			}
		case "Startup":
			if res.ok {
				w.mu.Lock()
				st.started = true
				if c.ReadinessProbe == nil {
					st.ready = true
				}
				w.mu.Unlock()
				w.kick()
				return
			}
			if failures >= failThreshold {
				w.killForProbe(pod, c, st, "startup")
				return
			}
		case "Liveness":
			if failures >= failThreshold {
				w.killForProbe(pod, c, st, "liveness")
				return
			}
		}
	}
}

// killForProbe restarts a container that failed its liveness or startup
// probe, as the kubelet does.
func (w *podWorker) killForProbe(pod *corev1.Pod, c *corev1.Container, st *ctr, kind string) {
	w.event(pod, corev1.EventTypeNormal, "Killing", fmt.Sprintf("Container %s failed %s probe, will be restarted", c.Name, kind))
	w.killContainer(context.Background(), st, gracePeriodSpec(pod))
}

// execInContainer runs an exec probe's command in the container's root,
// network namespace and identity.
func (w *podWorker) execInContainer(ctx context.Context, sb *sandbox, argv []string, id identity, env []string) (int, string, error) {
	if len(argv) == 0 {
		return 0, "", errors.New("exec probe has no command")
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	exe, err := lookPath(argv[0], pathEnv, func(p string) bool {
		fi, err := os.Stat(filepath.Join(sb.root, p))
		return err == nil && fi.Mode().IsRegular()
	})
	if err != nil {
		return 0, "", err
	}
	var out bytes.Buffer
	ns, _ := w.network()
	cmd, err := w.k.nss.start(sb.root, ns, procSpec{path: exe, argv: argv, env: env, id: id, out: &out})
	if err != nil {
		return 0, "", err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-waited
		return 0, "", fmt.Errorf("command %q timed out", strings.Join(argv, " "))
	}
	code, _ := exitInfo(err)
	return int(code), out.String(), nil
}

// gracePeriod is how long the kubelet waits between SIGTERM and SIGKILL for
// a pod being deleted.
func gracePeriod(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return max(time.Duration(*pod.DeletionGracePeriodSeconds)*time.Second, minGrace)
	}
	return gracePeriodSpec(pod)
}

func gracePeriodSpec(pod *corev1.Pod) time.Duration {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return max(time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second, minGrace)
	}
	return 30 * time.Second
}

// killContainer sends SIGTERM, and SIGKILL after grace or once ctx ends
// (simnode shutting down). A PID 1 without a SIGTERM handler ignores the
// SIGTERM, exactly as in a container.
func (w *podWorker) killContainer(ctx context.Context, st *ctr, grace time.Duration) {
	w.mu.Lock()
	cmd, done, running := st.cmd, st.done, st.running
	st.stopping = running
	w.mu.Unlock()
	if !running || cmd == nil {
		return
	}
	if grace > 0 && ctx.Err() == nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		case <-ctx.Done():
		}
	}
	_ = cmd.Process.Kill()
	<-done
}

// stopAll kills every container in parallel.
func (w *podWorker) stopAll(ctx context.Context, grace time.Duration) {
	w.mu.Lock()
	var all []*ctr
	for _, st := range w.ctrs {
		all = append(all, st)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, st := range all {
		wg.Go(func() { w.killContainer(ctx, st, grace) })
	}
	wg.Wait()
}

// terminate handles a pod being deleted: kill its containers with the
// grace period, tear the sandbox down, and delete the object with grace 0,
// which is how the kubelet confirms a graceful deletion.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, gone bool) {
	grace := gracePeriod(pod)
	if gone {
		grace = minGrace
	}
	w.log.Info("pod deleted, stopping containers", "grace", grace)
	w.mu.Lock()
	for name, st := range w.ctrs {
		if st.running {
			w.k.rec.Event(pod, corev1.EventTypeNormal, "Killing", "Stopping container "+name)
		}
	}
	w.mu.Unlock()
	w.stopAll(ctx, grace)
	if !gone {
		// A deleted pod ends Succeeded only if every container exited 0.
		phase := corev1.PodSucceeded
		w.mu.Lock()
		for _, st := range w.ctrs {
			if st.lastTerm == nil || st.lastTerm.ExitCode != 0 {
				phase = corev1.PodFailed
			}
		}
		w.mu.Unlock()
		w.finish(phase, "", "")
		if err := w.writeStatus(ctx); err != nil {
			w.log.Error("final status", "err", err)
		}
	}
	w.removeSandbox()
	if gone {
		return
	}
	zero := int64(0)
	uid := pod.UID
	err := w.k.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && ctx.Err() == nil && !isGone(err) {
		w.log.Error("delete pod", "err", err)
		return
	}
	w.log.Info("pod removed")
}

package harness

import (
	"maps"
	"slices"
	"testing"

	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
)

// realNodeFidelity are the fidelity cases about the pod itself (security
// context, mount path, port, command, image) that a real kubelet, containerd
// and runc must fail just as simnode's kubelet imitation does.
var realNodeFidelity = []string{
	"correct solver is served",
	"runAsNonRoot without runAsUser on a root image",
	"volume mounted where httpd does not look",
	"configMap item names a missing key",
	"httpd listens on another port than the containerPort",
	"service targetPort number is not the port httpd listens on",
	"readiness probe on the wrong port",
	"httpd serves a directory that does not exist",
	"httpd without -f",
	"command not in the image",
	"image simnode cannot run",
	"files written to /dev/shm under a read-only root are served",
	"files written to the read-only root",
}

// TestRealNode runs a real node (kube-scheduler, kubelet, containerd, runc;
// test/env realnode.go) in an environment of its own: the pod-side fidelity
// cases fail there as they must, and once the environment stops it has left
// no process, mount, network namespace, cgroup, socket or sysctl change
// behind. (A certificate issued with its solver pod on a real node is the
// product's: test/e2e's TestIssueSolverPodOnRealNode.)
//
// It is not parallel: while it runs, the package's env and kube are its
// own environment's, so the shared helpers (newNamespace, simGet, kubectl,
// ...) work on it; Go runs parallel tests only after the sequential ones.
func TestRealNode(t *testing.T) {
	sysctlsBefore, err := testenv.KubeletSysctls()
	if err != nil {
		t.Fatal(err)
	}
	suiteEnv, suiteKube := env, kube
	own, ownKube := startOwnEnv(t, testenv.Options{Node: testenv.NodeReal})
	env, kube = own, ownKube
	defer func() { env, kube = suiteEnv, suiteKube }()

	t.Run("fidelity", func(t *testing.T) {
		cases := simFidelityCases()
		for _, name := range realNodeFidelity {
			i := slices.IndexFunc(cases, func(c simFidelityCase) bool { return c.name == name })
			if i < 0 {
				t.Fatalf("no fidelity case %q", name)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runSimFidelityCase(t, cases[i])
			})
		}
	})

	if err := own.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	left, err := testenv.Leftovers(own.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		t.Errorf("left after stop: %s", l)
	}
	if testenv.SysctlsShared() {
		t.Log("another real node runs on this machine: the kubelet's sysctls stay set until it stops")
		return
	}
	after, err := testenv.KubeletSysctls()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sysctlsBefore, after) {
		t.Errorf("sysctls after stop %v, before start %v", after, sysctlsBefore)
	}
}

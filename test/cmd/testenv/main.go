// Command testenv starts and stops the local test environment (see package
// test/env) and runs its simulated node.
//
//	testenv up DIR      start an environment in DIR and return, leaving it running
//	testenv down DIR    stop the environment in DIR
//	testenv run DIR     start, wait for Ctrl-C, stop
//	testenv simnode ... run the simulated node and ingress controller (up starts it)
//	testenv podproxy ... relay the kubernetes Service and published host ports into the real node's pods (up starts it)
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubectl-acme/kubectl-acme/test/cni"
	testenv "github.com/kubectl-acme/kubectl-acme/test/env"
	"github.com/kubectl-acme/kubectl-acme/test/simnode"
)

func main() {
	// containerd runs the real node's CNI plugin by these names, which
	// are links to this program (test/env realnode.go).
	if name := filepath.Base(os.Args[0]); name == cni.Type || name == "loopback" {
		os.Exit(cni.Main(os.Stdin, os.Stdout))
	}
	ctx, stop := signalContext()
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		stop()
		os.Exit(1)
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so commands can
// clean up; a second signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		os.Exit(130)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}

func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "testenv",
		Short:         "Local Kubernetes + Pebble environment for kubectl-acme tests",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(out, errOut), newDownCmd(), newRunCmd(out, errOut), newSimnodeCmd(), newPodProxyCmd())
	return root
}

type envFlags struct {
	opts testenv.Options
}

func (f *envFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.opts.BinDir, "bin-dir", f.opts.BinDir, "directory with etcd, kube-apiserver, pebble, ... (default: this program's directory)")
	fs.StringVar(&f.opts.IngressClass, "ingress-class", "nginx", "ingress class the simulated ingress controller serves")
	fs.StringVar(&f.opts.Busybox, "busybox", "/bin/busybox", "busybox binary for the solver pods' httpd")
	fs.StringVar(&f.opts.NodeName, "node-name", "", "name of the node (default realnode, or simnode with --node=sim)")
	fs.BoolVar(&f.opts.GatewayAPI, "gateway-api", true, "install the Gateway API CRDs and a Gateway simnode serves (about 3 s more)")
	fs.StringVar(&f.opts.Node, "node", "", "real: pods on a real node (kube-scheduler, kubelet, containerd, runc); sim: on simnode's kubelet imitation, faster to start (default: TESTENV_NODE, else real)")
	fs.BoolVar(&f.opts.StepCA, "stepca", true, "also run smallstep's step-ca as a second ACME server (bin/step-ca, built by hack/stepca.sh)")
}

// complete fills what flags left empty. This same program runs simnode, and
// the tools sit next to it in bin/ when built by the Makefile.
func (f *envFlags) complete(dir string, log io.Writer) (testenv.Options, error) {
	o := f.opts
	o.Dir = dir
	o.Log = log
	self, err := os.Executable()
	if err != nil {
		return o, fmt.Errorf("find own executable: %w", err)
	}
	o.TestenvBinary = self
	if o.BinDir == "" {
		o.BinDir = filepath.Dir(self)
	}
	return o, nil
}

func newUpCmd(out, errOut io.Writer) *cobra.Command {
	f := &envFlags{}
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "Start an environment in DIR and leave it running",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.complete(args[0], errOut)
			if err != nil {
				return err
			}
			env, err := testenv.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			printUsage(out, env)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down DIR",
		Short: "Stop the environment in DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return testenv.StopDir(args[0])
		},
	}
}

func newRunCmd(out, errOut io.Writer) *cobra.Command {
	f := &envFlags{}
	cmd := &cobra.Command{
		Use:   "run DIR",
		Short: "Start an environment in DIR, wait for Ctrl-C, then stop it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.complete(args[0], errOut)
			if err != nil {
				return err
			}
			// Even if this process is killed, the environment goes too.
			o.DieWithParent = true
			env, err := testenv.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			printUsage(out, env)
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			<-cmd.Context().Done()
			fmt.Fprintln(errOut, "testenv: stopping")
			return env.Stop()
		},
	}
	f.bind(cmd)
	return cmd
}

func printUsage(out io.Writer, env *testenv.Env) {
	envFile := filepath.Join(env.Dir, "env")
	gateway := ""
	if env.GatewayName != "" {
		gateway = fmt.Sprintf("\n  Gateway      %s/%s (class %s), on the same address", env.GatewayNamespace, env.GatewayName, env.GatewayClass)
	}
	if env.StepCAServer != "" {
		gateway += fmt.Sprintf("\n  step-ca      %s (CA bundle %s)", env.StepCAServer, env.StepCACABundle)
	}
	fmt.Fprintf(out, `Environment running in %s:
  API server   %s
  ACME server  %s (CA bundle %s)
  Ingress      http://%s (class %s, with ingress-nginx's admission rule; GKE-like classes %s by annotation on the same address)%s
Use it from a shell:
  . %s && kubectl get ns
Logs are in %s/logs. Stop it with: hack/testenv down %s
`, env.Dir, env.APIServer, env.ACMEServer, env.ACMECABundle, env.IngressHTTP, env.IngressClass, strings.Join(simnode.GKEClasses, ", "), gateway, envFile, env.Dir, env.Dir)
}

func newSimnodeCmd() *cobra.Command {
	var cfg simnode.Config
	cmd := &cobra.Command{
		Use:   "simnode",
		Short: "Run the simulated node and ingress controller until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return simnode.Run(cmd.Context(), cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	fs.StringVar(&cfg.NodeName, "node-name", "simnode", "name of the Node object")
	fs.StringVar(&cfg.IngressAddr, "listen", "127.0.0.1:8080", "address the ingress controller serves HTTP on")
	fs.IntVar(&cfg.IngressListenFD, "listen-fd", 0, "inherited descriptor already listening on --listen (0: listen anew)")
	fs.StringVar(&cfg.IngressClass, "class", "nginx", "ingress class to serve")
	fs.StringVar(&cfg.WorkDir, "workdir", "", "directory for pods' files")
	fs.StringVar(&cfg.BusyboxPath, "busybox", "/bin/busybox", "busybox binary")
	fs.StringVar(&cfg.PodNetworkDir, "pod-network-dir", "", "CNI data directory of a real node whose pods to reach (test/cni); empty: simnode runs the pods itself")
	fs.BoolVar(&cfg.GKE, "gke", false, "also serve the Ingresses of GKE's classes ("+strings.Join(simnode.GKEClasses, ", ")+", by the kubernetes.io/ingress.class annotation) as GKE's older ingress controller did: ImplementationSpecific paths only, others reported in an event")
	fs.StringVar(&cfg.GatewayClass, "gateway-class", "", "GatewayClass whose Gateways' HTTPRoutes to serve too (controllerName "+string(simnode.GatewayControllerName)+"); empty: none")
	for _, name := range []string{"kubeconfig", "workdir"} {
		_ = cmd.MarkFlagRequired(name) // the flags exist; cannot fail
	}
	return cmd
}

func newPodProxyCmd() *cobra.Command {
	var socket, dataDir string
	var services []string
	cmd := &cobra.Command{
		Use:   "podproxy",
		Short: "Relay the kubernetes Service and published host ports into the real node's pods until SIGINT or SIGTERM (test/cni Proxy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var fwd []cni.Forward
			for _, s := range services {
				f, err := cni.ParseForward(s)
				if err != nil {
					return fmt.Errorf("--service %w", err)
				}
				fwd = append(fwd, f)
			}
			p, err := cni.NewProxy(fwd, dataDir, slog.New(slog.NewTextHandler(os.Stderr, nil)))
			if err != nil {
				return err
			}
			return p.Serve(cmd.Context(), socket)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&socket, "socket", "", "unix socket the CNI plugin and the environment call")
	fs.StringVar(&dataDir, "data-dir", "", "the CNI plugin's data directory (pods whose record is gone are dropped)")
	fs.StringArrayVar(&services, "service", nil, "CLUSTERIP:PORT=ENDPOINT:PORT to serve in every pod (repeatable)")
	for _, name := range []string{"socket", "data-dir"} {
		_ = cmd.MarkFlagRequired(name) // the flags exist; cannot fail
	}
	return cmd
}

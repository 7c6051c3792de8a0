// Command kubectl-acme is a kubectl plugin that issues ACME certificates
// for Ingresses inline, without a controller.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-acme/kubectl-acme/plugin"
)

// Stamped by `make release` with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
	// image is the release's container image, REPO:VERSION@sha256:...,
	// which `kubectl acme schedule` runs; empty in other builds.
	image = ""
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmd := plugin.NewCmdACME(streams, plugin.BuildInfo{Version: version, Commit: commit, Date: date, Image: image})
	if err := cmd.ExecuteContext(ctx); err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "error:", msg)
		}
		stop()
		os.Exit(plugin.ExitCode(err))
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so commands
// clean up what they created; a second signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "interrupted: cleaning up (press Ctrl-C again to exit now)")
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

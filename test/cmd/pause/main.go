// Command pause is the real node's pod sandbox image's one program, like
// Kubernetes' own (kubernetes build/pause/linux/pause.c): it holds the pod's
// namespaces, sleeping until SIGINT or SIGTERM, and, as PID 1 of the pod's
// PID namespace, reaps orphaned children. Built with CGO_ENABLED=0, it needs
// nothing else in the image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

package plugin

import (
	goflag "flag"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// maxVerbosity caps -v: from 8 on, client-go logs request and response
// bodies (k8s.io/client-go/rest/request.go, logBody), and the bodies of
// Secrets hold private keys, which must never reach a log. At 6 every
// Kubernetes request is logged (method, URL, status, time) by client-go's
// debugging round tripper and every ACME request by the acme package's;
// 7 adds the API requests' headers, with the bearer token masked.
const maxVerbosity = 7

// addLogFlags adds klog's -v and --vmodule, as kubectl has them (kubectl
// registers klog's flags through k8s.io/component-base/logs; these two are
// the ones that say what to log).
func addLogFlags(fs *pflag.FlagSet, errOut io.Writer) {
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	v := gfs.Lookup("v")
	fs.VarP(&cappedLevel{Value: v.Value, errOut: errOut}, "v", "v",
		fmt.Sprintf("Log level: 6 logs every Kubernetes and ACME request (method, URL, status, time); at most %d, since higher levels would log bodies holding keys", maxVerbosity))
	fs.AddGoFlag(gfs.Lookup("vmodule"))
}

// cappedLevel is klog's -v, capped at maxVerbosity with a warning.
type cappedLevel struct {
	goflag.Value
	errOut io.Writer
}

func (l *cappedLevel) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil && n > maxVerbosity {
		fmt.Fprintf(l.errOut, "warning: -v=%d logs request bodies, which hold private keys: logging at -v=%d\n", n, maxVerbosity)
		s = strconv.Itoa(maxVerbosity)
	}
	return l.Value.Set(s)
}

func (l *cappedLevel) Type() string { return "Level" }

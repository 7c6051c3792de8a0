package acme

import (
	"net/http"
	"time"
)

// RequestLogger is told of every request to the CA once it is answered:
// method, URL, status ("201 Created", or the transport's error) and how
// long it took. It never sees a header or a body: a body may carry the
// CSR, a signed key authorization or an External Account Binding, and
// headers carry nonces; the URLs are the CA's public resource names.
type RequestLogger func(method, url, status string, elapsed time.Duration)

// loggingTransport reports each round trip to log, the way client-go's
// debugging round tripper reports Kubernetes requests at -v=6.
type loggingTransport struct {
	rt  http.RoundTripper
	log RequestLogger
}

func (t *loggingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.rt.RoundTrip(req)
	status := ""
	if err != nil {
		status = err.Error()
	} else {
		status = res.Status
	}
	t.log(req.Method, req.URL.String(), status, time.Since(start))
	return res, err
}

package bench

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// switchboard stands on the port Pebble validates http-01 on and pipes
// each connection, byte for byte, to the responder of the client being
// measured: the floor's server, lego's, or the cluster's ingress for
// kubectl-acme. Every client's validation takes the same hop.
type switchboard struct {
	target atomic.Pointer[string]
	stop   func()
}

func newSwitchboard(l net.Listener) *switchboard {
	s := &switchboard{}
	s.set("")
	s.stop = forward(l, func() string { return *s.target.Load() })
	return s
}

// set sends the next connections to addr.
func (s *switchboard) set(addr string) { s.target.Store(&addr) }

// forward accepts connections on l and pipes each to target() at the
// time, until the returned stop is called.
func forward(l net.Listener, target func() string) (stop func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := net.Dial("tcp", target())
				if err != nil {
					in.Close()
					return
				}
				track(in, true)
				track(out, true)
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					_, _ = io.Copy(dst, src)
					if tc, ok := dst.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(out, in)
				go pipe(in, out)
				<-done
				<-done
				in.Close()
				out.Close()
				track(in, false)
				track(out, false)
			}()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

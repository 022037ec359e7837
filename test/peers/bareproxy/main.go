// Command bareproxy is the baseline BenchmarkPeers (test/peers_bench_test.go)
// measures gatehouse's proxied path against, as a process of its own: a bare
// httputil.ReverseProxy with the tuned upstream Transport and the buffer pool
// that the in-process baseline of test/bench_test.go has, and nothing else
// (no session, no headers, no log). It links no gatehouse code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := flag.String("upstream", "", "the upstream's base URL")
	flag.Parse()
	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(listen, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream %q: not an absolute URL", upstream)
	}
	// The pool settings gatehouse uses upstream, so the baseline is not
	// held back by Go's default of two idle connections.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = 512, 256
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  transport,
		BufferPool: &pool{},
		ErrorLog:   log.New(io.Discard, "", 0),
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { <-stop; srv.Close() }()
	log.Printf("proxying %s on %s", upstream, l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pool reuses the copy buffers, as gatehouse does.
type pool struct{ p sync.Pool }

func (bp *pool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *pool) Put(b []byte) { bp.p.Put(&b) }

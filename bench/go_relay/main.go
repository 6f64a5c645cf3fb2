// A minimal compiled HTTP relay (Go's httputil.ReverseProxy with a keep-alive pool) for
// bench/cpu_per_request.py's `gorelay` target: the same request path as weedpy's proxy mode
// (client -> relay -> Go volume server) with no per-request work beyond what any relay must do,
// so its figure is the ceiling a relay reaches on the machine the benchmark runs on.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	backend := flag.String("backend", "", "host:port of the server to relay to")
	flag.Parse()
	target, err := url.Parse("http://" + *backend)
	if err != nil || *backend == "" {
		log.Fatalf("bad -backend %q", *backend)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}
	log.Fatal(http.ListenAndServe(*listen, proxy))
}

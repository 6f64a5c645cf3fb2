// A load generator shaped like `weed benchmark`'s volume-server traffic, aimed straight at one
// volume server (no master): multipart uploads of FakeReader-style files named bench<id> with
// mime image/bench, then GETs of random uploaded files; -c concurrent clients.
//
//	go run ./bench/http_loadgen -server=127.0.0.1:8080 -vids=1,2,3 -n=20000 -c=16 -size=1024
//
// With -rate the read phase is open-loop instead: a GET of a random file every 1/rate seconds,
// whatever the previous ones are doing, each timed from when it was due (so a server that stalls
// shows every request it delayed), until -seconds pass or SIGTERM/SIGINT arrives. -latout writes
// one line per request: "<due unix ns> <latency us> <status>" (status 0: transport error).
// -query is appended to upload URLs (e.g. -query=fsync=true). -pace caps the closed-loop phases
// at that many requests per second in all (a fixed load below the server's saturation).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	server := flag.String("server", "127.0.0.1:8080", "volume server host:port")
	vids := flag.String("vids", "1", "comma-separated volume ids to write to")
	n := flag.Int("n", 10000, "files")
	c := flag.Int("c", 16, "concurrency")
	size := flag.Int("size", 1024, "file size (plus up to 63 random bytes, like weed benchmark)")
	phase := flag.String("phase", "both", "write|read|both")
	keyBase := flag.Uint64("keybase", 1, "first needle key")
	rate := flag.Float64("rate", 0, "read phase: open-loop GETs per second (0: -c closed-loop clients)")
	seconds := flag.Float64("seconds", 0, "open-loop read phase: stop after this long (0: at SIGTERM/SIGINT)")
	latOut := flag.String("latout", "", "open-loop read phase: per-request records to this file")
	query := flag.String("query", "", "query string for uploads (without '?')")
	pace := flag.Float64("pace", 0, "closed-loop phases: at most this many requests per second in all (0: unpaced)")
	flag.Parse()

	var vs []string
	for _, v := range strings.Split(*vids, ",") {
		vs = append(vs, strings.TrimSpace(v))
	}
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: false}
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}

	fids := make([]string, *n)
	for i := range fids {
		key := *keyBase + uint64(i)
		fids[i] = fmt.Sprintf("%s,%x%08x", vs[i%len(vs)], key, uint32(key*2654435761)|1)
	}

	run := func(name string, work func(i int, rnd *rand.Rand) error) {
		var next, failed int64
		var lat []time.Duration
		var mu sync.Mutex
		var tick <-chan time.Time
		if *pace > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / *pace))
			defer t.Stop()
			tick = t.C
		}
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < *c; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rnd := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
				var mine []time.Duration
				for {
					i := int(atomic.AddInt64(&next, 1) - 1)
					if i >= *n {
						break
					}
					if tick != nil {
						<-tick
					}
					t := time.Now()
					if err := work(i, rnd); err != nil {
						atomic.AddInt64(&failed, 1)
						if atomic.LoadInt64(&failed) < 5 {
							fmt.Fprintln(os.Stderr, name, err)
						}
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}(w)
		}
		wg.Wait()
		el := time.Since(start)
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		fmt.Printf("%s rps=%.1f failed=%d p50=%.2fms p99=%.2fms seconds=%.2f\n", name, float64(*n)/el.Seconds(), failed, p(0.5), p(0.99), el.Seconds())
	}

	if *phase == "write" || *phase == "both" {
		run("write", func(i int, rnd *rand.Rand) error {
			sz := *size + rnd.Intn(64)
			data := make([]byte, sz)
			id := uint64(i)
			for j := range data {
				data[j] = byte(id + uint64(j))
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			h := make(textproto.MIMEHeader)
			h.Set("Content-Disposition", `form-data; name="file"; filename="bench`+strconv.Itoa(i)+`"`)
			h.Set("Content-Type", "image/bench")
			part, _ := mw.CreatePart(h)
			part.Write(data)
			mw.Close()
			target := "http://" + *server + "/" + fids[i]
			if *query != "" {
				target += "?" + *query
			}
			req, _ := http.NewRequest("POST", target, &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	}
	if *rate > 0 && (*phase == "read" || *phase == "both") {
		openLoop(client, *server, fids, *rate, *seconds, *latOut)
		return
	}
	if *phase == "read" || *phase == "both" {
		run("read", func(i int, rnd *rand.Rand) error {
			fid := fids[rnd.Intn(*n)]
			resp, err := client.Get("http://" + *server + "/" + fid)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	}
}

// openLoop sends a GET of a random file every 1/rate seconds (each in its own goroutine, so a slow
// answer delays no other request) and times each from when it was due.
func openLoop(client *http.Client, server string, fids []string, rate, seconds float64, latOut string) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	type rec struct {
		due    int64
		lat    time.Duration
		status int
	}
	recs := make(chan rec, 1<<16)
	var all []rec
	collected := make(chan struct{})
	go func() {
		for r := range recs {
			all = append(all, r)
		}
		close(collected)
	}()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
loop:
	for k := int64(0); ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if seconds > 0 && due.Sub(start).Seconds() >= seconds {
			break
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-stop:
				break loop
			case <-time.After(wait):
			}
		} else {
			select {
			case <-stop:
				break loop
			default:
			}
		}
		fid := fids[rnd.Intn(len(fids))]
		wg.Add(1)
		go func(due time.Time, fid string) {
			defer wg.Done()
			status := 0
			resp, err := client.Get("http://" + server + "/" + fid)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			recs <- rec{due.UnixNano(), time.Since(due), status}
		}(due, fid)
	}
	wg.Wait()
	close(recs)
	<-collected
	var lat []time.Duration
	failed := 0
	for _, r := range all {
		lat = append(lat, r.lat)
		if r.status != 200 {
			failed++
		}
	}
	if latOut != "" {
		f, err := os.Create(latOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		w := bufio.NewWriter(f)
		for _, r := range all {
			fmt.Fprintf(w, "%d %d %d\n", r.due, r.lat.Microseconds(), r.status)
		}
		w.Flush()
		f.Close()
	}
	if len(lat) == 0 {
		fmt.Println("rateread n=0")
		return
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("rateread n=%d failed=%d p50=%.2fms p99=%.2fms max=%.2fms seconds=%.2f\n", len(lat), failed, p(0.5), p(0.99),
		p(1), time.Since(start).Seconds())
}

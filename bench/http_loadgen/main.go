// A load generator shaped like `weed benchmark`'s volume-server traffic, aimed straight at one
// volume server (no master): multipart uploads of FakeReader-style files named bench<id> with
// mime image/bench, then GETs of random uploaded files; -c concurrent clients.
//
//	go run ./bench/http_loadgen -server=127.0.0.1:8080 -vids=1,2,3 -n=20000 -c=16 -size=1024
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
			req, _ := http.NewRequest("POST", "http://"+*server+"/"+fids[i], &body)
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

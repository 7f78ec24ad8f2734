//go:build bench

package bench

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The second round of targets (issue 23): a steady run at a higher rate, a
// scale point beyond the first, and what content types the raw client's
// requests carried.
var (
	// steadyHighRate is the rate of the second steady run, as long as the
	// first (BENCH_STEADY_SECONDS); 0 skips it.
	steadyHighRate = envInt("BENCH_STEADY_RATE_HIGH", 50)
	// scaleLargeSize is the second scale point, reached after the first;
	// 0 skips it.
	scaleLargeSize = envInt("BENCH_SCALE_LARGE", 30000)
	// fillChunk is how many grants one fill burst creates: each burst waits
	// for all of its requests within burst's timeout.
	fillChunk = 5000
)

// steadyHigh runs the second steady scenario (2b).
func (e *env) steadyHigh(rep *report) {
	if steadySeconds == 0 || steadyHighRate == 0 {
		return
	}
	lat := e.steady("steadyhigh", steadyHighRate, time.Duration(steadySeconds)*time.Second)
	rep.add("2b. steady: creation-to-Ready", "%d requests at %d/s: p50 %s p95 %s p99 %s (target p99 <= 1s)",
		len(lat), steadyHighRate, pct(lat, 50), pct(lat, 95), pct(lat, 99))
}

// scalePoint fills the cluster to size granted requests with a manager of its
// own, reads that manager's memory at rest (against targetMiB) and its heap
// profile (kept in the file profileEnv names), then restarts it and measures
// the time to a full pass and the writes meanwhile. run names the fill's
// requests.
func (e *env) scalePoint(rep *report, figure, run string, size int, targetMiB float64, profileEnv string) {
	t := e.t
	mgr := startManager(t, e.kubeconfig, e.dir)
	if missing := size - e.countGranted(); missing > 0 {
		start := time.Now()
		for done, chunk := 0, 0; done < missing; chunk++ {
			n := min(fillChunk, missing-done)
			e.burst(fmt.Sprintf("%s%d", run, chunk), n)
			done += n
		}
		rep.add(figure+". scale: fill", "%d more grants in %s", missing, time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(5 * time.Second) // let roll-ups and the garbage collector settle
	fams := mgr.metrics(t)
	heap := sum(fams, "go_memstats_heap_inuse_bytes", nil)
	rss := sum(fams, "process_resident_memory_bytes", nil)
	objects := e.countCached()
	// The heap profile is taken after a forced collection: what the manager
	// keeps, without the garbage that happened to be waiting at the scrape.
	heapPath := fmt.Sprintf("%s/%s.heap.pprof", e.dir, run)
	var live float64
	if err := fetch(nil, mgr.pprofURL("heap?gc=1"), heapPath); err == nil {
		keepProfile(heapPath, profileEnv)
		fmt.Printf("bench: manager heap at %d grants, in use after a collection (go tool pprof -top -sample_index=inuse_space):\n%s\n",
			e.countGranted(), topOf(heapPath, 30, "-sample_index=inuse_space"))
		// The heap the profile records after its collection; the metric read
		// now would also count the profile's own encoding.
		if live, err = profileTotal(heapPath); err != nil {
			t.Errorf("reading the heap profile's total: %v", err)
		}
	}
	rep.add(figure+". scale: manager memory", "%d granted requests: Go heap in use %.1f MiB at rest (target <= %.0f), %.1f MiB after a forced collection; RSS %.1f MiB; %.0f bytes per cached object (%d objects)",
		e.countGranted(), heap/(1<<20), targetMiB, live/(1<<20), rss/(1<<20), heap/float64(objects), objects)
	mgr.stop()
	restart := startManager(t, e.kubeconfig, e.dir)
	defer restart.stop()
	synced, pass, restartCalls := e.fullPass(restart, e.countRequests())
	rc := diffCalls(nil, restartCalls)
	rep.add(figure+"/4. restart on converged objects", "caches synced and first reconcile after %s, full pass after %s (target <= 45s), writes %.0f (target 0) %s",
		synced.Round(time.Millisecond), pass.Round(time.Millisecond), rc.writes+rc.reviews+rc.refused, rc.byKind)
}

// contentTypes counts the requests a client sent by the content type of
// their body and the one they accept, so that the report shows the raw
// client at its best settings (protobuf for built-in kinds) rather than
// assuming it.
type contentTypes struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *contentTypes) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			c.mu.Lock()
			if c.counts == nil {
				c.counts = map[string]int{}
			}
			c.counts[req.Method+" "+req.Header.Get("Content-Type")]++
			c.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

// since lists the counts grown from before, in order.
func (c *contentTypes) since(before map[string]int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, v := range c.counts {
		if d := v - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d))
		}
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}

func (c *contentTypes) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

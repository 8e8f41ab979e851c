package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prodready/service/internal/loadgen"
)

// A pair is one comparison: side A and side B under the same load, rounds
// alternating AB, BA, AB... so a noisy neighbour hits both alike. A pair
// with only side A reports absolute figures.
type pair struct {
	name, what string
	skip       string // why the pair cannot run here ("" when it can)
	run        func(ctx context.Context, o options) ([]row, error)
}

// side is one server and the request it is measured on.
type side struct {
	label   string
	addr    string
	request func(client, i int) *http.Request
	pid     int // the server process, for its CPU time (cpuTime); 0 when it is several (the workers pairs)
}

// side is the server s measured on request.
func (s *server) side(label string, request func(client, i int) *http.Request) side {
	return side{label: label, addr: s.addr, request: request, pid: s.cmd.Process.Pid}
}

// ptr is a pointer to a copy of s, for measure's optional side B.
func ptr(s side) *side { return &s }

// row is one side's figures over the rounds.
type row struct {
	pair, label string
	perSecond   []float64 // per round
	cpu         []float64 // the server's CPU time a request answered, in ns, per round; empty when it cannot be read
	cpuRatio    []float64 // the first side's CPU a request over this one's, per round (read as perSecond's ratio: under 1 costs more); only on B rows
	p50, p99    []time.Duration
	ratio       []float64 // B/A per round; only on B rows
	goal        float64   // the goal for the median ratio; 0 for none
	extra       string    // anything else worth saying (non-2xx answers, cut requests)
}

func pairs(o options) []pair {
	noPG := ""
	if o.pgURL == "" || o.redisURL == "" {
		noPG = "set BENCH_DATABASE_URL and BENCH_REDIS_URL (make bench does when PostgreSQL and Redis answer)"
	}
	return []pair{
		{name: "livez", what: "GET /livez: bare gin engine (A) vs the full stack (B), with two ceilings between them when bin/bench-linked is built: the bare engine in a binary linking the service's dependencies, then with the service's server timeouts too", run: livezPair},
		{name: "get-memory", what: "cached GET /v1/notes/:id: bare gin + in-memory LRU (A) vs the full stack on SQLite with the in-memory cache (B)", run: getMemoryPair},
		{name: "access-log", what: "cached GET /v1/notes/:id on SQLite: the full stack with log.level warn, so no access log (A), vs info (B): what the access log costs", run: accessLogPair},
		{name: "get-redis", what: "cached GET /v1/notes/:id: bare gin + Redis (A) vs the full stack on PostgreSQL with Redis (B)", skip: noPG, run: getRedisPair},
		{name: "list", what: "GET /v1/notes?limit=20: SQLite (A) vs PostgreSQL with Redis (B)", run: listPair},
		{name: "create", what: "POST /v1/notes: SQLite (A) vs PostgreSQL with Redis (B)", run: createPair},
		{name: "workers", what: "GET /v1/notes?limit=20 on SQLite: one process (A) vs --workers 2 (B), both on every core", run: workersPair},
		{name: "overload", what: "GET /v1/notes?limit=20 offered at 4x capacity, open loop: shedding off vs on", run: overloadPair},
		{name: "restart", what: "requests lost through a HUP reload of --workers 2 and a reuse-port replacement, under load", run: restartPair},
	}
}

// livezPair measures GET /livez on the bare engine (A) and the full stack
// (B), and, when o.linkedBin is there, on two ceilings between them, so the
// gap is measured layer by layer in the same rounds: the same bare engine
// in a binary that links every package the service imports (linked.go: the
// dependencies' package initialisation, which the garbage collector marks on
// every cycle), then that with the service's four http.Server timeouts
// (more socket deadlines a request). What is left is the service's own code.
func livezPair(ctx context.Context, o options) ([]row, error) {
	get := loadgen.Get("/livez")
	bare, err := startBare(ctx, o, "")
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	sides := []side{bare.side("bare gin", get)}
	if why := noLinked(o); why != "" {
		fmt.Fprintf(o.log, "bench: livez: only bare gin and the full stack: %s\n", why)
	} else {
		timeouts, err := serviceTimeouts(ctx, o)
		if err != nil {
			return nil, err
		}
		linked, err := startBareFrom(ctx, o.linkedBin, "", "")
		if err != nil {
			return nil, err
		}
		defer linked.stop()
		withTimeouts, err := startBareFrom(ctx, o.linkedBin, "", timeouts)
		if err != nil {
			return nil, err
		}
		defer withTimeouts.stop()
		sides = append(sides,
			linked.side("bare gin, the service's dependencies linked", get),
			withTimeouts.side("the same, the service's server timeouts ("+timeouts+")", get))
	}
	full, err := startService(ctx, o, "livez", nil)
	if err != nil {
		return nil, err
	}
	defer full.stop()
	sides = append(sides, full.side("full stack", get))
	rows, err := measureSides(ctx, goalRounds(o), "livez", sides)
	if err != nil {
		return nil, err
	}
	rows[len(rows)-1].goal = livezGoal
	return rows, nil
}

// The goals for the stack's own cost (docs/PERFORMANCE.md): the full
// stack's throughput as a share of bare gin's on /livez, and of a bare gin
// handler with the same cache on a cached read.
const (
	livezGoal       = 0.9
	cachedReadGoal  = 0.8
	goalRoundsLeast = 10
)

// goalRounds gives the pairs measured against a goal at least
// goalRoundsLeast rounds in the same total time (shorter ones, at least
// half a second), so that the interval of their median ratio is a 95% one
// (five rounds allow none: medianInterval) and the verdict can be decided.
func goalRounds(o options) options {
	if o.rounds >= goalRoundsLeast {
		return o
	}
	total := o.duration * time.Duration(o.rounds)
	o.rounds = goalRoundsLeast
	o.duration = max(total/goalRoundsLeast, 500*time.Millisecond)
	return o
}

// noLinked says why the livez pair cannot measure its middle ceilings ("" when it can).
func noLinked(o options) string {
	if _, err := os.Stat(o.linkedBin); err != nil {
		return "build " + o.linkedBin + " with -tags benchlinked (make bench does)"
	}
	return ""
}

func getMemoryPair(ctx context.Context, o options) ([]row, error) {
	rows, err := getPair(ctx, goalRounds(o), "get-memory", "", nil, "bare gin + memory LRU", "full stack, SQLite + memory cache")
	if err != nil {
		return nil, err
	}
	rows[len(rows)-1].goal = cachedReadGoal
	return rows, nil
}

func accessLogPair(ctx context.Context, o options) ([]row, error) {
	quiet, err := startService(ctx, o, "access-log-off", []string{"APP_LOG_LEVEL=warn"})
	if err != nil {
		return nil, err
	}
	defer quiet.stop()
	full, err := startService(ctx, o, "access-log-on", nil)
	if err != nil {
		return nil, err
	}
	defer full.stop()
	_, _, getQuiet, err := cachedReads(ctx, quiet.addr)
	if err != nil {
		return nil, err
	}
	_, _, getFull, err := cachedReads(ctx, full.addr)
	if err != nil {
		return nil, err
	}
	return measure(ctx, o, "access-log", quiet.side("full stack, no access log", getQuiet), ptr(full.side("full stack", getFull)))
}

// cachedReads creates 200 notes on the service at addr, reads each once so
// its cache holds them, and returns their ids, the bodies it read, and a
// request function that reads them by id, spread over the clients.
func cachedReads(ctx context.Context, addr string) ([]string, map[string][]byte, func(client, i int) *http.Request, error) {
	ids, err := seedNotes(ctx, addr, 200)
	if err != nil {
		return nil, nil, nil, err
	}
	bodies := make(map[string][]byte, len(ids))
	for _, id := range ids {
		b, err := call(ctx, http.MethodGet, "http://"+addr+"/v1/notes/"+id, nil, http.StatusOK)
		if err != nil {
			return nil, nil, nil, err
		}
		bodies[id] = b
	}
	return ids, bodies, func(client, i int) *http.Request {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "/v1/notes/"+ids[(client*31+i)%len(ids)], nil)
		return req
	}, nil
}

func getRedisPair(ctx context.Context, o options) ([]row, error) {
	env := []string{"DATABASE_URL=" + o.pgURL, "REDIS_URL=" + o.redisURL}
	return getPair(ctx, o, "get-redis", o.redisURL, env, "bare gin + Redis", "full stack, PostgreSQL + Redis")
}

// getPair fills the service with notes, reads each once so the cache holds
// it, gives the bare engine the same bytes, then measures reads by id.
func getPair(ctx context.Context, o options, name, redisURL string, env []string, labelA, labelB string) ([]row, error) {
	full, err := startService(ctx, o, name, env)
	if err != nil {
		return nil, err
	}
	defer full.stop()
	bare, err := startBare(ctx, o, redisURL)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	// The bare engine's cache gets the bytes the service's cache holds.
	ids, bodies, get, err := cachedReads(ctx, full.addr)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := call(ctx, http.MethodPut, "http://"+bare.addr+"/_fill/"+id, bodies[id], http.StatusNoContent); err != nil {
			return nil, err
		}
	}
	return measure(ctx, o, name, bare.side(labelA, get), ptr(full.side(labelB, get)))
}

// dbPair measures one request on SQLite and, when configured, on
// PostgreSQL with Redis.
func dbPair(ctx context.Context, o options, name string, seed int, request func(client, i int) *http.Request) ([]row, error) {
	a, err := startService(ctx, o, name+"-sqlite", nil)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	if _, err := seedNotes(ctx, a.addr, seed); err != nil {
		return nil, err
	}
	sideA := a.side("full stack, SQLite", request)
	if o.pgURL == "" || o.redisURL == "" {
		return measure(ctx, o, name, sideA, nil)
	}
	b, err := startService(ctx, o, name+"-postgres", []string{"DATABASE_URL=" + o.pgURL, "REDIS_URL=" + o.redisURL})
	if err != nil {
		return nil, err
	}
	defer b.stop()
	if _, err := seedNotes(ctx, b.addr, seed); err != nil {
		return nil, err
	}
	return measure(ctx, o, name, sideA, ptr(b.side("full stack, PostgreSQL + Redis", request)))
}

func listPair(ctx context.Context, o options) ([]row, error) {
	return dbPair(ctx, o, "list", 100, func(int, int) *http.Request {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "/v1/notes?limit=20", nil)
		return req
	})
}

func createPair(ctx context.Context, o options) ([]row, error) {
	return dbPair(ctx, o, "create", 0, func(client, i int) *http.Request {
		body := fmt.Sprintf(`{"title":"bench %d-%d","body":"a note written by make bench"}`, client, i)
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "/v1/notes", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	})
}

// seedNotes creates n notes through the API and returns their ids.
func seedNotes(ctx context.Context, addr string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	for i := range n {
		in := fmt.Sprintf(`{"title":"note %d","body":"%s"}`, i, strings.Repeat("lorem ipsum ", 20))
		b, err := call(ctx, http.MethodPost, "http://"+addr+"/v1/notes", []byte(in), http.StatusCreated)
		if err != nil {
			return nil, err
		}
		var note struct{ ID string }
		if err := json.Unmarshal(b, &note); err != nil || note.ID == "" {
			return nil, fmt.Errorf("create answered %q", b)
		}
		ids = append(ids, note.ID)
	}
	return ids, nil
}

// call makes one request and wants the given status.
func call(ctx context.Context, method, url string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, want, buf.Bytes())
	}
	return buf.Bytes(), nil
}

// measure runs o.rounds rounds of A then B (B then A on odd rounds).
func measure(ctx context.Context, o options, name string, a side, b *side) ([]row, error) {
	sides := []side{a}
	if b != nil {
		sides = append(sides, *b)
	}
	return measureSides(ctx, o, name, sides)
}

// measureSides loads each side in turn, o.rounds times, the order reversed
// every other round (A B C, C B A, ...) so a noisy neighbour hits all
// alike; every side after the first gets its ratio to the first, per
// round, and, when there are more than two, to the side before it in Notes.
func measureSides(ctx context.Context, o options, name string, sides []side) ([]row, error) {
	rows := make([]row, len(sides))
	for i, s := range sides {
		rows[i] = row{pair: name, label: s.label}
		// A short warm-up of each side: connections, caches, the JIT-free
		// but allocation-hungry first requests.
		loadFor(ctx, o, s, o.duration/3)
	}
	prev := make([][]float64, len(sides))    // ratio to the side before, per round
	prevCPU := make([][]float64, len(sides)) // the side before's CPU a request over this one's, per round
	for round := range o.rounds {
		res := make([]loadgen.Result, len(sides))
		cpu := make([]float64, len(sides)) // ns a request answered; 0 when not read
		for k := range sides {
			i := k
			if round%2 == 1 {
				i = len(sides) - 1 - k
			}
			before, okBefore := cpuTime(sides[i].pid)
			res[i] = loadFor(ctx, o, sides[i], o.duration)
			after, okAfter := cpuTime(sides[i].pid)
			if okBefore && okAfter && res[i].Answered > 0 {
				cpu[i] = (after - before) / float64(res[i].Answered)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(o.log, "bench:   round %d:", round+1)
		for i := range sides {
			rows[i].add(res[i])
			fmt.Fprintf(o.log, " %s %.0f req/s", sides[i].label, res[i].PerSecond())
			if cpu[i] > 0 {
				rows[i].cpu = append(rows[i].cpu, cpu[i])
				fmt.Fprintf(o.log, " %.1f µs CPU a request", cpu[i]/1000)
			}
			if i > 0 {
				r := res[i].PerSecond() / res[0].PerSecond()
				rows[i].ratio = append(rows[i].ratio, r)
				prev[i] = append(prev[i], res[i].PerSecond()/res[i-1].PerSecond())
				fmt.Fprintf(o.log, " (B/A %.2f", r)
				if cpu[0] > 0 && cpu[i] > 0 {
					rows[i].cpuRatio = append(rows[i].cpuRatio, cpu[0]/cpu[i])
					prevCPU[i] = append(prevCPU[i], cpu[i-1]/cpu[i])
					fmt.Fprintf(o.log, ", CPU %.2f", cpu[0]/cpu[i])
				}
				fmt.Fprint(o.log, ")")
			}
			if i < len(sides)-1 {
				fmt.Fprint(o.log, ",")
			}
		}
		fmt.Fprintln(o.log)
	}
	if len(sides) > 2 {
		for i := 1; i < len(sides); i++ {
			note := fmt.Sprintf("%.2f of the row above (median of rounds)", median(prev[i]))
			if len(prevCPU[i]) > 0 {
				note += fmt.Sprintf(", %.2f in CPU a request", median(prevCPU[i]))
			}
			if rows[i].extra != "" {
				note += "; " + rows[i].extra
			}
			rows[i].extra = note
		}
	}
	return rows, nil
}

func loadFor(ctx context.Context, o options, s side, d time.Duration) loadgen.Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return loadgen.Run(ctx, loadgen.Options{Addr: s.addr, Request: s.request, Clients: o.clients, Timeout: 10 * time.Second})
}

func (r *row) add(res loadgen.Result) {
	r.perSecond = append(r.perSecond, res.PerSecond())
	r.p50 = append(r.p50, res.Percentile(50))
	r.p99 = append(r.p99, res.Percentile(99))
	if bad := res.Failed(); bad > 0 {
		r.extra = fmt.Sprintf("%d of %d requests not 2xx (%v), %d cut", bad, res.Sent, res.Status, res.Cut)
	}
}

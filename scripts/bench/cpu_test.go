package main

import (
	"crypto/sha256"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestCPUTime: the CPU a process has run grows by about what it spent
// working, and a process that cannot be read gives no figure rather than a
// zero the table would divide by.
func TestCPUTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cpuTime reads /proc: Linux only")
	}
	before, ok := cpuTime(os.Getpid())
	if !ok {
		t.Fatal("cpuTime of this process: not readable, want its schedstat")
	}
	sum := sha256.Sum256(nil)
	for range 200_000 { // a few tens of milliseconds of CPU
		sum = sha256.Sum256(sum[:])
	}
	after, _ := cpuTime(os.Getpid())
	if got := after - before; got < 1e6 {
		t.Errorf("cpuTime grew by %.0f ns over 200,000 hashes, want at least a millisecond", got)
	}
	for _, pid := range []int{0, -1, 1 << 30} {
		if ns, ok := cpuTime(pid); ok {
			t.Errorf("cpuTime(%d) = %.0f, true; want no figure", pid, ns)
		}
	}
}

// TestRender_CPUColumns: a side measured with its CPU gets the CPU a
// request and, on B rows, the ratio of A's to its own with its interval
// and, against a goal, a verdict of its own beside the req/s one.
func TestRender_CPUColumns(t *testing.T) {
	rows := []row{
		{pair: "livez", label: "bare gin", perSecond: []float64{100}, cpu: []float64{18_000, 18_200, 18_100}},
		{pair: "livez", label: "full stack", perSecond: []float64{90}, cpu: []float64{24_900, 25_000, 24_800},
			ratio:    []float64{0.95, 0.96, 0.97, 0.95, 0.96, 0.97},
			cpuRatio: []float64{0.80, 0.81, 0.79, 0.80, 0.82, 0.78}, goal: 0.9},
	}
	table := render(rows, options{rounds: 10, duration: 1e9}, 0)
	for _, want := range []string{
		"| server CPU a request (median) | CPU, A's over B's: median (interval) |",
		"| 18.1 µs |",
		"| 24.9 µs | **0.80** (0.78 to 0.82) |",
		"req/s goal 0.9: met",
		"CPU a request goal 0.9: not met",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}

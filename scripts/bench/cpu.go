package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cpuTime is the CPU time, in nanoseconds, that the process pid and all its
// threads have run so far: the sum of the first field of each thread's
// /proc/<pid>/task/<tid>/schedstat (time on a CPU, counted by the
// scheduler in nanoseconds; /proc/<pid>/stat's clock ticks are too coarse
// for one-second rounds). ok is false when it cannot be read (not Linux,
// schedstats off, the process gone), and the table then has no CPU
// figure. Threads that exit take their time with them; Go's runtime keeps
// its threads, so over a round that loses nothing measurable.
func cpuTime(pid int) (ns float64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	files, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	if err != nil || len(files) == 0 {
		return 0, false
	}
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // a /proc path built from a pid
		if err != nil {
			continue // a thread that exited since the glob
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		v, err := strconv.ParseFloat(first, 64)
		if err != nil {
			return 0, false
		}
		ns += v
	}
	return ns, true
}

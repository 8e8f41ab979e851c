package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cpuQuota is a cgroup with a CFS bandwidth limit: the processes put in it
// get at most a fraction of one core, whatever else the machine is doing.
// The overload pair runs the service in one so that the load generator, on
// a core of its own, has more CPU than the service it loads (whether that
// is enough to offer four times the service's capacity, the row's "sent of
// due" says).
type cpuQuota struct {
	dir string
}

const cfsPeriod = 100_000 // µs, the kernel's default period

// newCPUQuota makes the cgroup under the cgroup v2 root when its cpu
// controller is available there, else under cgroup v1's cpu hierarchy.
// It needs write access to cgroupfs (root, as CI and sessions run here);
// the error says why when there is none.
func newCPUQuota(fraction float64) (*cpuQuota, error) {
	if fraction <= 0 || fraction > 64 {
		return nil, fmt.Errorf("CPU quota %g: want a fraction of a core above 0", fraction)
	}
	quota := int(fraction * cfsPeriod)
	name := "prodready-bench-" + fmt.Sprint(os.Getpid())
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(" "+string(b)+" ", " cpu ") {
		dir := filepath.Join("/sys/fs/cgroup", name)
		if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- cgroupfs decides the mode
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		q := &cpuQuota{dir: dir}
		if err := writeCgroup(dir, "cpu.max", fmt.Sprintf("%d %d", quota, cfsPeriod)); err != nil {
			q.remove()
			return nil, err
		}
		return q, nil
	}
	root := "/sys/fs/cgroup/cpu"
	if _, err := os.Stat(filepath.Join(root, "cpu.cfs_quota_us")); err != nil {
		return nil, fmt.Errorf("no cgroup cpu controller (neither cgroup v2's cpu nor v1's cpu.cfs_quota_us): %w", err)
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil { // #nosec G301 -- cgroupfs decides the mode
		return nil, fmt.Errorf("cgroup v1: %w", err)
	}
	q := &cpuQuota{dir: dir}
	for _, kv := range [][2]string{{"cpu.cfs_period_us", fmt.Sprint(cfsPeriod)}, {"cpu.cfs_quota_us", fmt.Sprint(quota)}} {
		if err := writeCgroup(dir, kv[0], kv[1]); err != nil {
			q.remove()
			return nil, err
		}
	}
	return q, nil
}

// add moves a process (and the children it starts later) into the cgroup.
func (q *cpuQuota) add(pid int) error { return writeCgroup(q.dir, "cgroup.procs", fmt.Sprint(pid)) }

// throttled reads how often the kernel held the cgroup back, as evidence
// that the quota applied: nr_throttled of cpu.stat.
func (q *cpuQuota) throttled() int {
	b, err := os.ReadFile(filepath.Join(q.dir, "cpu.stat")) // #nosec G304 -- our own cgroup
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "nr_throttled "); ok {
			n := -1
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	return -1
}

// throttledOrZero is throttled on a quota that may be nil (no cgroup).
func (q *cpuQuota) throttledOrZero() int {
	if q == nil {
		return 0
	}
	return max(q.throttled(), 0)
}

// heldNote says in how many of the CFS periods of a run that took d the
// kernel held the service back: the evidence that the quota applied.
func (q *cpuQuota) heldNote(held int, d time.Duration) string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf(", held back in %d of %d periods", held, int(d/(cfsPeriod*time.Microsecond)))
}

// remove deletes the cgroup once its processes have exited.
func (q *cpuQuota) remove() { _ = os.Remove(q.dir) }

func writeCgroup(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o600); err != nil { // #nosec G306 G703 -- cgroupfs
		return fmt.Errorf("cgroup %s: %w", file, err)
	}
	return nil
}

package workers

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/prodready/service/internal/health"
)

// GOMAXPROCSCheck reports, on the status route, how many threads this
// process runs Go code on and where that number came from: a worker's share
// set by its master, the GOMAXPROCS variable, or the Go runtime's own choice
// (the CPU count, or the container's CPU quota since Go 1.25). It always
// passes: it is there so an operator can see it. role is "master", a
// worker's ID, or "" for a single process.
func GOMAXPROCSCheck(role string) health.Check {
	return health.Check{Name: "runtime:gomaxprocs", ComponentType: "system", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			n, cpus := runtime.GOMAXPROCS(0), runtime.NumCPU()
			from := "the Go runtime (CPU count or container CPU quota)"
			switch {
			case role != "" && role != "master":
				from = "the master: this worker's share, max(1, CPUs / workers)"
			case os.Getenv("GOMAXPROCS") != "":
				from = "the GOMAXPROCS variable"
			}
			return health.Result{Status: health.Pass, ObservedValue: n, ObservedUnit: "threads",
				Output: fmt.Sprintf("GOMAXPROCS %d on %d CPUs, from %s", n, cpus, from)}
		}}
}

// Package resource is the contract between the service and a resource
// package (internal/notes is the example): a Resource declares its
// configuration section, its migrations, and how it mounts its routes and
// status checks over what the service opened for it (Deps).
// internal/resources lists the resources the service serves; the server,
// the health runner and the config loader know none of them.
package resource

import (
	"io/fs"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/health"
)

// Resource is what one resource adds to the service.
type Resource struct {
	Name string // in the start-up log: "notes"
	// Config is its configuration section (notes.* keys, APP_NOTES_*
	// variables), loaded with the service's own keys; nil if it has none.
	Config config.Declared
	// Migrations is its schema (a migrations/ folder), applied, rolled back
	// and checked with the service's own; nil if it has none.
	Migrations fs.FS
	// Mount builds it over the service's dependencies, once they are open.
	Mount func(Deps) Mounted
}

// Deps is what the service opened before mounting the resources.
type Deps struct {
	Config config.Config // the whole configuration; a resource reads its section with Section.From
	DB     *bun.DB
	Cache  cache.Cache
	Logger *slog.Logger
	// Gauge reports read() to the APM agent on every harvest (the
	// monitoring package's Agent.Gauge); nil when there is no agent.
	Gauge func(name string, read func() float64)
}

// ReportGauge is Gauge, and nothing without an agent.
func (d Deps) ReportGauge(name string, read func() float64) {
	if d.Gauge != nil {
		d.Gauge(name, read)
	}
}

// Mounted is a resource ready to serve.
type Mounted struct {
	Routes func(gin.IRouter) // its routes, for server.Options.Routes
	Checks []health.Check    // its own checks, shown on /status
}

// List is the resources a service serves, in the order their routes mount.
type List []Resource

// Sections returns the configuration section of each resource that has one,
// for config.Load.
func (l List) Sections() []config.Declared {
	return each(l, func(r Resource) config.Declared { return r.Config })
}

// Migrations returns the migration set of each resource that has one, for
// database.Migrate, Rollback, Status and MigrationsCheck.
func (l List) Migrations() []fs.FS {
	return each(l, func(r Resource) fs.FS { return r.Migrations })
}

// each returns what get gives of every resource that gives something.
func each[T comparable](l List, get func(Resource) T) []T {
	var out []T
	var none T
	for _, r := range l {
		if v := get(r); v != none {
			out = append(out, v)
		}
	}
	return out
}

// Mount mounts every resource over d: their routes, and their checks.
func (l List) Mount(d Deps) (routes []func(gin.IRouter), checks []health.Check) {
	for _, r := range l {
		m := r.Mount(d)
		routes = append(routes, m.Routes)
		checks = append(checks, m.Checks...)
	}
	return routes, checks
}

package notes

import (
	"fmt"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/resource"
)

// Config is the notes section of the configuration: the notes.* keys and
// their APP_NOTES_* variables, tagged as internal/config's own keys are.
type Config struct {
	DefaultPageSize int `yaml:"default_page_size" min:"1" max:"1000"`
	MaxPageSize     int `yaml:"max_page_size" min:"1" max:"1000"`
}

// ConfigSection declares the section and its defaults to the config loader.
var ConfigSection = config.Section[Config]{
	Name:    "notes",
	Default: Config{DefaultPageSize: 20, MaxPageSize: 100},
}

// Validate is the rule that spans the section's keys (config.Validator).
func (c Config) Validate() []config.Problem {
	if c.DefaultPageSize > c.MaxPageSize {
		return []config.Problem{{Key: "default_page_size", Message: fmt.Sprintf("%d is larger than notes.max_page_size (%d)", c.DefaultPageSize, c.MaxPageSize)}}
	}
	return nil
}

// Resource is the notes resource as the service serves it
// (internal/resources lists it): its configuration section, its
// migrations, and its routes and cache check over the service's database
// and cache.
func Resource() resource.Resource {
	return resource.Resource{Name: "notes", Config: ConfigSection, Migrations: Migrations(), Mount: mount}
}

// mount builds the store over the database, bounded in time and cached,
// and the routes over it.
func mount(d resource.Deps) resource.Mounted {
	cfg := ConfigSection.From(d.Config)
	// Every request's database work ends within database.request_timeout;
	// an unreachable database answers 503 with Retry-After, not a hang.
	bounded := NewBoundedStore(NewBunStore(d.DB), d.Config.Database.RequestTimeout, database.Unavailable)
	store := NewCachedStore(bounded, d.Cache, d.Config.Cache.TTL, d.Logger)
	d.ReportGauge("Cache/Failures", func() float64 { return float64(store.Stats().Errors) })
	return resource.Mounted{
		Routes: Routes(store, APIOptions{DefaultPageSize: cfg.DefaultPageSize, MaxPageSize: cfg.MaxPageSize, Logger: d.Logger}),
		Checks: []health.Check{store.Check(), bounded.Check()},
	}
}

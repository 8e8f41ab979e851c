package docs_test

// The guide's copy builds the whole module again under another module path.
// Its dependencies (SQLite, pgx, gin, bun, go-redis, go-mail, the New Relic
// agent) are the same packages this module's tests compile, and with these
// imports go test can link this package's test binary only once they are
// compiled: the copy then finds them in the build cache instead of
// compiling them a second time beside the first, which doubled a cold
// `make test` (the guide alone took 7 minutes before, with no cache).
import (
	_ "github.com/prodready/service/internal/alert"
	_ "github.com/prodready/service/internal/cache"
	_ "github.com/prodready/service/internal/database"
	_ "github.com/prodready/service/internal/monitoring"
	_ "github.com/prodready/service/internal/resources"
	_ "github.com/prodready/service/internal/server"
)

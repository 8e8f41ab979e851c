//go:build benchlinked

package main

// Built with -tags benchlinked (make bench: bin/bench-linked), this program
// links every package the service's main package imports, and so every
// dependency the service has: bun and SQLite, the New Relic agent (and its
// gRPC and protobuf), go-mail, go-redis, the YAML parser. Their package
// initialisation runs and stays on the heap, and the binary's globals are as
// many, but its -serve-bare engine is the same bare gin: the livez pair's
// second side measures what linking them costs a request (the garbage collector marks
// all of it on every cycle). TestLinkedImportsWhatTheServiceImports keeps
// this list equal to cmd/api's imports outside the standard library.
import (
	_ "github.com/gin-gonic/gin"
	_ "github.com/uptrace/bun"

	_ "github.com/prodready/service/internal/alert"
	_ "github.com/prodready/service/internal/backup"
	_ "github.com/prodready/service/internal/cache"
	_ "github.com/prodready/service/internal/config"
	_ "github.com/prodready/service/internal/database"
	_ "github.com/prodready/service/internal/drain"
	_ "github.com/prodready/service/internal/health"
	_ "github.com/prodready/service/internal/listener"
	_ "github.com/prodready/service/internal/logging"
	_ "github.com/prodready/service/internal/monitoring"
	_ "github.com/prodready/service/internal/resource"
	_ "github.com/prodready/service/internal/resources"
	_ "github.com/prodready/service/internal/server"
	_ "github.com/prodready/service/internal/shed"
	_ "github.com/prodready/service/internal/workers"
)

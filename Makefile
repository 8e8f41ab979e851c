# The notes API: a reference Go service for production readiness.
# `make` lists the targets. Pinned tools install themselves into .tools/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/api
TOOLS     := $(CURDIR)/.tools
COVER_DIR := coverage
# make test fails when total coverage of internal/... and cmd/... drops below this.
COVER_MIN ?= 80
# How many packages make test builds or runs at once, and how many parallel
# tests of a package run at once (go test -p and -parallel; both default to
# the core count, 2 here, though most tests wait on processes and sockets).
TEST_P ?= 4
# make test's build flags, given as GOFLAGS so that the go commands the tests
# run themselves (the N-1 release build, the NEW_SERVICE guide's build) build
# the same way and take every dependency from the build cache:
#  - the race detector, and the service's GO_TAGS;
#  - no DWARF (test binaries are run, not debugged: stack traces and race
#    reports come from the symbol table), about 15% less compiling cold.
# Every package is race-instrumented, SQLite's transpiled C included: leaving
# modernc.org out (-race=false) saved 25 CPU-seconds but made the detector
# report races in encoding/json's type cache that are not there.
TEST_GOFLAGS := -race -tags=$(GO_TAGS) -gcflags=all=-dwarf=false -ldflags=-w

# Build tags of every build and test of the service (here, in .ko.yaml and
# .golangci.yml): nomsgpack leaves gin's MessagePack codec out (the API
# speaks JSON only), so the binary is smaller and a cold build compiles one
# big package less; grpcnotrace leaves golang.org/x/net/trace out of gRPC
# (the New Relic agent's), whose templates, linked, would stop the linker
# from dropping unused methods (docs/PERFORMANCE.md) and which registers
# /debug/requests on http.DefaultServeMux.
GO_TAGS := nomsgpack,grpcnotrace

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# --verify: in a repository with no commit yet, plain rev-parse prints "HEAD"
# before it fails, and the stamp would be two words that break the link.
COMMIT     ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
# The commit's time, not the clock's: a rebuild of a commit is the same binary.
COMMIT_TIME ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.commitTime=$(COMMIT_TIME)

.PHONY: help run run-collector checklist test cover vet lint build generate check-generate migrate fuzz bench bench-instructions bench-go tools check-delivery compose-up compose-down mailpit run-mailpit gatus monitor backup restore backup-verify litestream replicate litestream-restore backup-drill clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## Build and run the service on its embedded defaults (development: SQLite file, in-memory cache) on 127.0.0.1:8080 (APP_HTTP_HOST=0.0.0.0 to listen on every interface)
	@port=$${PORT:-8080}; token=$${STATUS_TOKENS:-dev-$$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}; \
	echo "make run: serving http://127.0.0.1:$$port (environment $${APP_ENVIRONMENT:-development}; stop with Ctrl-C or kill $$$$)"; \
	echo "make run: status token for this run: $$token"; \
	echo "          curl -H 'Authorization: Bearer $$token' http://127.0.0.1:$$port/status"; \
	echo "          availability monitoring, in another terminal: STATUS_TOKEN=$$token PORT=$$port make monitor"; \
	APP_ENVIRONMENT=$${APP_ENVIRONMENT:-development} APP_HTTP_HOST=$${APP_HTTP_HOST:-127.0.0.1} APP_NEWRELIC_UTILIZATION_DETECTION=false STATUS_TOKENS=$$token exec $(BIN) serve

# Built, then exec'd (not `go run`): stopping make by its PID must stop the
# collector too, and go run leaves its child behind on SIGTERM.
run-collector: ## Run the fake New Relic collector on 127.0.0.1:8443, printing what the agent sends (then make run as it says)
	$(GO) build -tags $(GO_TAGS) -o bin/fake-collector ./cmd/fake-collector
	exec bin/fake-collector --addr 127.0.0.1:$${COLLECTOR_PORT:-8443} --dir $(TOOLS)/collector

checklist: build mailpit gatus tools ## Demonstrate every item of the standard live, one line each (ITEM=<name> for one row, ITEM=list for the names)
	$(GO) build -tags $(GO_TAGS) -o bin/checklist ./scripts/checklist
	bin/checklist -item "$(ITEM)" -report reports/checklist.md

test: ## Run every test with the race detector; print coverage and enforce COVER_MIN
	@mkdir -p $(COVER_DIR)
	@# scripts/testsummary prints each package as it finishes, then every
	@# failure and the skip summary (each skipped test and the service it
	@# lacked). Built with the tests' flags, it shares their compiled standard
	@# library: a cold cache compiles nothing for it alone.
	@# -vet=off: vet (every analyzer, not go test's subset) is make vet, which
	@# make lint and .ci/run run; -p $(TEST_P): most test binaries wait on processes
	@# and sockets, so more of them run beside the compiler (docs/PERFORMANCE.md).
	@# GOGC=400: the compiler and the race-instrumented tests collect garbage
	@# less often (more memory, which these machines have: 24 GiB), about 8%
	@# less CPU cold.
	@GOFLAGS="$(TEST_GOFLAGS)" $(GO) build -o bin/testsummary ./scripts/testsummary
	@GOGC=400 GOFLAGS="$(TEST_GOFLAGS)" $(GO) test -json -count=1 -vet=off -p $(TEST_P) -parallel $(TEST_P) -timeout 20m \
		-covermode=atomic -coverpkg=./internal/...,./cmd/... -coverprofile=$(COVER_DIR)/cover.out ./... | \
		bin/testsummary -json $(COVER_DIR)/test.json
	@total=$$($(GO) tool cover -func=$(COVER_DIR)/cover.out | awk '/^total:/ {sub("%","",$$3); print $$3}'); \
	echo "coverage: $$total% of statements in internal/... and cmd/... (minimum $(COVER_MIN)%)"; \
	if ! awk -v t="$$total" -v m="$(COVER_MIN)" 'BEGIN { exit !(t+0 >= m+0) }'; then \
		if [ "$${REQUIRE_SERVICES:-}" = 1 ]; then echo "coverage $$total% is below the minimum $(COVER_MIN)%"; exit 1; fi; \
		echo "WARNING: coverage $$total% is below $(COVER_MIN)%; not enforced without REQUIRE_SERVICES=1,"; \
		echo "         since tests needing absent services may have skipped (.ci/run enforces it)"; \
	fi

cover: test ## Run the tests, then write the HTML report to coverage/index.html
	$(GO) tool cover -html=$(COVER_DIR)/cover.out -o $(COVER_DIR)/index.html
	@$(GO) tool cover -func=$(COVER_DIR)/cover.out | tail -1
	@echo "report: $(COVER_DIR)/index.html"

$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS)/golangci-lint $@

vet: ## go vet with every analyzer (make test runs with -vet=off; .ci/run and make lint run this)
	$(GO) vet -tags $(GO_TAGS) ./...

lint: $(GOLANGCI_LINT) vet ## gofmt, go vet and golangci-lint (installed at a pinned version)
	@unformatted=$$(gofmt -l cmd internal); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GOLANGCI_LINT) run ./...

build: ## Build a static, version-stamped binary at bin/api
	CGO_ENABLED=0 $(GO) build -tags $(GO_TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/api
	@$(BIN) version

generate: ## Regenerate mocks (mockgen, pinned as a go.mod tool)
	$(GO) generate ./...

check-generate: generate ## Fail when generated files are not committed as generated
	@stale=$$(git status --porcelain -- ':(glob)**/mock_*.go'); \
	if [ -n "$$stale" ]; then echo "generated mocks are stale or uncommitted (run make generate and commit):"; echo "$$stale"; exit 1; fi

migrate: ## Apply database migrations with the current configuration (make migrate ARGS=status)
	APP_ENVIRONMENT=$${APP_ENVIRONMENT:-development} $(GO) run -tags $(GO_TAGS) ./cmd/api migrate $${ARGS:-up}

# make bench's PostgreSQL and Redis: a database and index of its own, used
# only when the server answers (the pairs that need them are skipped otherwise).
BENCH_DATABASE ?= notes_bench
BENCH_REDIS_DB ?= 10

bench: build ## Load benchmark of the real program on loopback, A/B alternating (PAIRS=livez,get-memory,... ROUNDS=5 DURATION=2s); writes the table into docs/PERFORMANCE.md
	$(GO) build -tags $(GO_TAGS) -o bin/bench ./scripts/bench
	$(GO) build -tags $(GO_TAGS),benchlinked -o bin/bench-linked ./scripts/bench
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
		psql -h 127.0.0.1 -U postgres -d postgres -qc 'DROP DATABASE IF EXISTS $(BENCH_DATABASE) WITH (FORCE)' -c 'CREATE DATABASE $(BENCH_DATABASE)' >/dev/null; \
		redis-cli -h 127.0.0.1 -p 6379 -n $(BENCH_REDIS_DB) flushdb >/dev/null; \
		export BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$(BENCH_DATABASE)?sslmode=disable" BENCH_REDIS_URL="redis://127.0.0.1:6379/$(BENCH_REDIS_DB)"; \
	else echo "make bench: PostgreSQL or Redis does not answer on 127.0.0.1; the PostgreSQL pairs are skipped"; fi; \
	pin=; if [ "$$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin="taskset -c 1"; fi; \
	$$pin bin/bench -bin $(BIN) -rounds $${ROUNDS:-5} -duration $${DURATION:-2s} $${PAIRS:+-only $$PAIRS} -write docs/PERFORMANCE.md

bench-instructions: build ## Instructions per request (valgrind's callgrind), full stack against bare gin: the load-independent figure in docs/PERFORMANCE.md
	$(GO) build -tags $(GO_TAGS) -o bin/bench ./scripts/bench
	bash scripts/bench/instructions.sh

bench-go: ## Run the Go benchmarks (BENCH=regexp, BENCHTIME=3s): the in-process figures in docs/PERFORMANCE.md
	$(GO) test -tags $(GO_TAGS) -run '^$$' -bench "$${BENCH:-.}" -benchtime $${BENCHTIME:-3s} -benchmem ./...

fuzz: ## Fuzz the configuration loader and the HTTP API (on SQLite, then on PostgreSQL and Redis from TEST_DATABASE_URL and TEST_REDIS_URL), FUZZTIME each (default 30s); the seeds run in make test
	$(GO) test -tags $(GO_TAGS) -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $${FUZZTIME:-30s} ./internal/config/
	$(GO) test -tags $(GO_TAGS) -run '^$$' -fuzz '^FuzzHTTP$$' -fuzztime $${FUZZTIME:-30s} ./cmd/api/
	$(GO) test -tags $(GO_TAGS) -run '^$$' -fuzz '^FuzzHTTPPostgreSQL$$' -fuzztime $${FUZZTIME:-30s} ./cmd/api/

LITESTREAM_VERSION := v0.5.18
LITESTREAM := $(TOOLS)/litestream-$(LITESTREAM_VERSION)
# Where `make replicate` keeps the local replica of data/notes.db.
LITESTREAM_REPLICA_URL ?= file://$(CURDIR)/backups/litestream

litestream: $(LITESTREAM) ## Build Litestream (pinned) into .tools/: continuous replication of the SQLite file

$(LITESTREAM):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install -trimpath -ldflags "-s -w -X main.Version=$(LITESTREAM_VERSION)" \
		github.com/benbjohnson/litestream/cmd/litestream@$(LITESTREAM_VERSION)
	mv $(TOOLS)/litestream $@

replicate: $(LITESTREAM) ## Replicate data/notes.db continuously with Litestream (beside `make run`) into backups/litestream
	@mkdir -p data backups
	APP_DATABASE_SQLITE_PATH=$${APP_DATABASE_SQLITE_PATH:-data/notes.db} LITESTREAM_REPLICA_URL=$(LITESTREAM_REPLICA_URL) \
		LITESTREAM_SOCKET=$${LITESTREAM_SOCKET:-$(CURDIR)/data/litestream.sock} \
		$(LITESTREAM) replicate -config scripts/backup/litestream/litestream.yml

litestream-restore: $(LITESTREAM) ## Restore the Litestream replica: make litestream-restore OUTPUT=restored.db [TIME=2026-12-01T10:14:00Z]
	@test -n "$(OUTPUT)" || { echo "usage: make litestream-restore OUTPUT=<new file> [TIME=<RFC 3339>]"; exit 2; }
	LITESTREAM=$(LITESTREAM) LITESTREAM_REPLICA_URL=$(LITESTREAM_REPLICA_URL) \
		scripts/backup/litestream-restore.sh $(if $(TIME),--time "$(TIME)") --output "$(OUTPUT)"

backup-drill: $(LITESTREAM) ## Point-in-time drills with 100,000 notes (PITR_NOTES): pgBackRest and Litestream; figures for docs/BACKUP.md
	PITR_NOTES=$${PITR_NOTES:-100000} $(GO) test -tags $(GO_TAGS) -count=1 -run 'TestPITR_' -v ./cmd/api/ | grep -E 'pitr_test|^(---|ok|FAIL|PASS)'

MAILPIT_VERSION := v1.33.1

mailpit: $(TOOLS)/mailpit ## Install Mailpit (a real SMTP server with an HTTP API, for tests and local mail) into .tools/

$(TOOLS)/mailpit:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

run-mailpit: mailpit ## Run Mailpit locally: SMTP on 127.0.0.1:1025, web UI on http://127.0.0.1:8025
	$(TOOLS)/mailpit --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 --disable-version-check

# Gatus (availability poller): pinned in tools/gatus/go.mod, a module of its own
# (`go install gatus@version` is refused here; see that file). The binary is
# cached by version; .tools/gatus points at the current one for tests.
GATUS_VERSION := $(shell awk '$$1 == "github.com/TwiN/gatus/v5" {print $$2}' tools/gatus/go.mod)
GATUS := $(TOOLS)/gatus-$(GATUS_VERSION)

gatus: $(GATUS) ## Build Gatus (pinned in tools/gatus/go.mod) into .tools/: availability monitoring for make monitor and its test
	@ln -sfn $(notdir $(GATUS)) $(TOOLS)/gatus

$(GATUS):
	@mkdir -p $(TOOLS)
	cd tools/gatus && $(GO) build -ldflags "-s -w" -o $@ github.com/TwiN/gatus/v5

monitor: gatus ## Poll make run's /status with Gatus (STATUS_TOKEN=<the token make run printed>); alerts mail make run-mailpit; dashboard :8081
	@test -n "$${STATUS_TOKEN:-}" || { echo "usage: STATUS_TOKEN=<the token make run printed> make monitor (make run and make run-mailpit in other terminals)"; exit 2; }
	@echo "make monitor: Gatus polls $${NOTES_API_URL:-http://127.0.0.1:$${PORT:-8080}}/status every $${GATUS_INTERVAL:-5s}; alerts to Mailpit (http://127.0.0.1:8025); dashboard http://127.0.0.1:$${GATUS_WEB_PORT:-8081}"
	@NOTES_API_URL=$${NOTES_API_URL:-http://127.0.0.1:$${PORT:-8080}} GATUS_INTERVAL=$${GATUS_INTERVAL:-5s} \
		GATUS_WEB_ADDRESS=127.0.0.1 GATUS_WEB_PORT=$${GATUS_WEB_PORT:-8081} \
		GATUS_SMTP_HOST=$${GATUS_SMTP_HOST:-127.0.0.1} GATUS_SMTP_PORT=$${GATUS_SMTP_PORT:-1025} \
		GATUS_SMTP_FROM=$${GATUS_SMTP_FROM:-gatus@localhost} GATUS_ALERT_TO=$${GATUS_ALERT_TO:-oncall@localhost} \
		GATUS_CONFIG_PATH=deploy/monitoring/gatus/config.yaml exec $(GATUS)

backup: ## Back up the database (SQLite default or DATABASE_URL) into BACKUP_DIR (default backups/): verified, recorded, pruned
	scripts/backup/backup.sh

restore: ## Restore a backup: make restore BACKUP=backups/<file> TARGET=<db name|postgres URL|file> [FORCE=1] [IDENTITY=key.txt]
	@test -n "$(BACKUP)" -a -n "$(TARGET)" || { echo "usage: make restore BACKUP=backups/<file> TARGET=<database or file> [FORCE=1] [IDENTITY=key]"; exit 2; }
	scripts/backup/restore.sh --target "$(TARGET)" $(if $(FORCE),--force) $(if $(IDENTITY),--identity "$(IDENTITY)") "$(BACKUP)"

backup-verify: ## Restore-drill a stored backup into a scratch copy: make backup-verify BACKUP=backups/<file> [IDENTITY=key.txt]
	scripts/backup/verify.sh $(if $(IDENTITY),--identity "$(IDENTITY)") "$(BACKUP)"

tools: ## Install the pinned delivery tools into .tools/ (actionlint, kustomize, kubectl-validate, composecheck, shellcheck)
	bash scripts/ci/install-tools.sh

check-delivery: tools ## Offline checks of workflows, manifests, compose file and shell scripts, each shown to bite
	bash scripts/ci/check-delivery.sh

image: ## Build the image with ko twice into a loopback registry (no Docker engine) and inspect it (scripts/ci/image.sh)
	bash scripts/ci/image.sh

compose-up: ## Build the image into the local Docker engine with ko, then run API, PostgreSQL, Redis and Mailpit with Docker Compose
	bash scripts/ci/install-tools.sh ko
	VERSION=$(VERSION) COMMIT=$(COMMIT) COMMIT_TIME=$(COMMIT_TIME) SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) \
		KO_DOCKER_REPO=ko.local/notes-api $(TOOLS)/ko build --bare --sbom none ./cmd/api
	docker compose -f deploy/compose/compose.yaml up

compose-down: ## Stop the compose stack and delete its volumes
	docker compose -f deploy/compose/compose.yaml down --volumes

clean: ## Remove build output, coverage and the local SQLite data
	rm -rf bin $(COVER_DIR) data

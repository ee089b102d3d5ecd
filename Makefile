# cartflow — `make dev` runs everything, `make test` runs the tests.
# Tools are built with `go install` through the module proxy into .tools/bin (git-ignored) and
# reused; nothing else is downloaded.

SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools/bin
export CARTFLOW_TOOLS_BIN := $(TOOLS)

TEMPORAL_CLI_VERSION := v1.5.1
STRIPE_MOCK_VERSION  := v0.203.0
MAILPIT_VERSION      := v1.27.11
STATICCHECK_VERSION  := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
SQLC_VERSION         := v1.31.1

TOOL_BINS := $(TOOLS)/temporal $(TOOLS)/stripe-mock $(TOOLS)/mailpit $(TOOLS)/staticcheck $(TOOLS)/workflowcheck \
	$(TOOLS)/sqlc

.PHONY: dev test unit web-deps web-unit fuzz integration chaos lint generate bench soak bench-renewals tools clean-data

## dev: run Postgres, Temporal (+ Web UI), stripe-mock, Mailpit, the worker, the BFF and the
## storefront (next dev on http://localhost:3000, npm ci first when web/package-lock.json changed).
dev: tools
	go build -o $(TOOLS)/cartflow-dev ./internal/dev/cmd/dev
	$(TOOLS)/cartflow-dev

## test: lint, then the unit tests, then the integration and end-to-end tests against real
## components. The steps run one after the other even under -j: a failing unit test stops
## the run before anything is started.
test: lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory web-unit
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory integration

## unit: the tests that need Go alone (no PostgreSQL, no Temporal, no built tool): every
## test file without the integration build tag.
unit:
	go test -count=1 ./...

## web-deps: the storefront's dependencies, `npm ci` from the registry whenever the lock file is
## newer than the last install (npm records it in node_modules/.package-lock.json).
web-deps: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && NEXT_TELEMETRY_DISABLED=1 npm ci --no-audit --no-fund

## web-unit: the storefront's component tests (Vitest, jsdom), Node alone. Its browser journeys
## run in the integration tier (internal/e2e, TestBrowserJourneys), against the real stack.
web-unit: web-deps
	cd web && NEXT_TELEMETRY_DISABLED=1 npm test

## fuzz: each fuzz target for FUZZTIME beyond its seed corpus (testdata/fuzz/<target>, which
## the unit tier runs), a few seconds each. go test takes one -fuzz target per run. The budget is
## a count of inputs, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a
## clean run with "context deadline exceeded" on a loaded machine (go.dev/issue/75804). A failing input is written to
## testdata/fuzz/<target> for a regression test; what the fuzzer learns stays in the Go build
## cache (`go env GOCACHE`/fuzz), which must lie outside the repository.
FUZZTIME ?= 5000x
FUZZ_TARGETS := ./api:FuzzCheckoutRequest ./internal/billing:FuzzStripeWebhook \
	./internal/billing:FuzzPayPalWebhook ./internal/billing:FuzzBraintreeWebhook
fuzz:
	@case "$$(go env GOCACHE)/" in "$(CURDIR)"/*) echo "GOCACHE is inside the repository: the fuzz cache would be committed"; exit 1;; esac
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "go test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
	  go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## integration: every test, those tagged integration included, against real PostgreSQL,
## Temporal, stripe-mock, Mailpit, the worker and the BFF.
integration: tools
	go test -count=1 -tags integration -timeout 30m ./...

## chaos: the fault suite (internal/chaos, build tag chaos) against one stack like make dev's: the
## worker SIGKILLed during checkouts, Temporal and PostgreSQL restarted, Stripe down, dropping and
## slowing its answers, storms of duplicate requests and replayed webhooks, renewals losing their
## worker mid-sweep. It prints one row per scenario (lost, double-charged, orphans, 5xx other than
## 503: all must be 0) and writes it to .data/chaos/. Not part of make test; 7 to 11 minutes here.
## CHAOS_FLAGS shortens it, e.g. CHAOS_FLAGS='-chaos.outage=10s -chaos.checkouts=30 -chaos.kills=3'.
CHAOS_FLAGS ?=
chaos: $(TOOLS)/temporal $(TOOLS)/stripe-mock $(TOOLS)/mailpit
	go test -tags chaos -run TestChaos -count=1 -v -timeout 60m ./internal/chaos/ $(CHAOS_FLAGS)

## generate: regenerate the query code in internal/store/db from internal/store/queries and migrations (sqlc.yaml).
generate: $(TOOLS)/sqlc
	$(TOOLS)/sqlc generate

## lint: gofmt, go vet, staticcheck, workflowcheck (determinism) on workflows/, and the generated
## query code up to date. vet and staticcheck run without a tag and with the integration and the
## chaos tag: the tagged files compile only with theirs, and only without one does staticcheck
## see a helper that only tagged tests use but that sits in an untagged file.
lint: $(TOOLS)/staticcheck $(TOOLS)/workflowcheck $(TOOLS)/sqlc
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags integration ./...
	go vet -tags chaos ./...
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags integration ./...
	$(TOOLS)/staticcheck -tags chaos ./...
	$(TOOLS)/workflowcheck ./workflows/...
	@# Regenerates into a copy and compares whole folders, so that a file left over from a removed
	@# query counts as stale too (sqlc diff only compares the files it would write). No database needed.
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  mkdir -p "$$tmp/internal/store" && cp -R sqlc.yaml migrations "$$tmp/" && cp -R internal/store/queries "$$tmp/internal/store/" && \
	  $(TOOLS)/sqlc generate -f "$$tmp/sqlc.yaml" && \
	  if ! diff -r internal/store/db "$$tmp/internal/store/db"; then echo "internal/store/db is stale: run make generate"; exit 1; fi

## bench: the stack in make dev's configuration with every feature on (internal/dev/cmd/bench):
## checkouts against the bare engine at concurrency 8 and 32, then GET /api/v1/checkouts/{id}
## and GET /api/v1/me/orders in open loops, and the BFF's and worker's memory. Prints a table and
## writes JSON under .data/bench/. BENCH_FLAGS passes flags (e.g. -profile, -strict, -checkouts 100).
BENCH_FLAGS ?=
bench: tools
	go build -o $(TOOLS)/cartflow-bench ./internal/dev/cmd/bench
	$(TOOLS)/cartflow-bench $(BENCH_FLAGS)

## soak: a mixed load (checkouts and both reads) for SOAK (default 10m) at half the maximum
## checkout rate, measured under those reads, sampling the BFF's and worker's memory and
## goroutines every 30 s; passes when RSS grows less than 10% after the warm-up and the
## goroutines at rest after the load are no more than before.
SOAK ?= 10m
soak: tools
	go build -o $(TOOLS)/cartflow-bench ./internal/dev/cmd/bench
	$(TOOLS)/cartflow-bench -soak $(SOAK) $(BENCH_FLAGS)

## bench-renewals: sweep and renewal cost per renewal for N due subscriptions (CARTFLOW_BENCH_SUBS, default
## 1000,10000,100000; a size above CARTFLOW_BENCH_WINDOW, default 10000, is measured over that many renewals).
bench-renewals: tools
	go test -tags integration -run '^$$' -bench RenewalSweep -benchtime 1x -count 1 -timeout 90m ./internal/e2e/

tools: $(TOOL_BINS)

$(TOOLS)/temporal:
	GOBIN=$(TOOLS) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)
$(TOOLS)/stripe-mock:
	GOBIN=$(TOOLS) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
$(TOOLS)/mailpit:
	GOBIN=$(TOOLS) go install github.com/axllent/mailpit@$(MAILPIT_VERSION)
$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(TOOLS)/workflowcheck:
	GOBIN=$(TOOLS) go install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)
$(TOOLS)/sqlc:
	GOBIN=$(TOOLS) go install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

## clean-data: forget everything `make dev` stored.
clean-data:
	rm -rf .data

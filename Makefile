GO ?= go

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test bench bench-http bench-psp bench-purchase bench-scan lint build devstack-up devstack-down
build:
	$(GO) build -o bin/ticketing ./cmd/ticketing

# The whole system in one process on embedded defaults, with demo data.
run: build
	./bin/ticketing dev --data data/dev

# Extra flags for go test, e.g. make test TESTFLAGS='-run TestX -v'
TESTFLAGS ?=
DEVSTACK ?= compose/devstack

# Installs the tools the tests drive (compose/devstack tools: Chromium for
# the page tests, promtool for the rule tests of conf/prometheus), starts
# every server the tests need (compose/devstack), runs the tests with their
# addresses exported, and always stops the servers again; exits with go
# test's code and prints the wall time.
test:
	@start=$$(date +%s.%N); \
	$(DEVSTACK) tools chromium promtool && \
	TICKETING_REQUIRE_SERVERS=1 GO='$(GO)' $(DEVSTACK) run -- $(GO) test -race -count=1 $(TESTFLAGS) ./...; \
	rc=$$?; \
	echo "make test: exit $$rc, wall time $$(awk -v s=$$start -v e=$$(date +%s.%N) 'BEGIN { printf "%.1f", e - s }')s"; \
	exit $$rc

devstack-up:
	$(DEVSTACK) up

devstack-down:
	$(DEVSTACK) down

# Holds at one partition over NATS through the edge's leaf node, next to
# same-run ceilings (echo request/reply, synchronous JetStream publish).
bench: build
	./bin/ticketing bench holds

# The same through the edge's HTTP API.
bench-http: build
	./bin/ticketing bench holds --via-http

# Whole purchases through the edge's HTTP API (hold, order, card, pay,
# confirmed) with the payment service and the gateway simulator, next to
# plain HTTP holds; then the stores are checked. PG_URL=... keeps orders
# and payments in PostgreSQL.
bench-purchase: build
	./bin/ticketing bench purchase --pg-url "$(PG_URL)"

# The gate: offline barcode verifications next to raw Ed25519, ticket
# issuance and online check-ins on the embedded tickets store next to raw
# KV creates on the same bucket.
bench-scan: build
	./bin/ticketing bench scan

# The payment gateway simulator: its journal's group commit, and confirms
# through the gateway client over loopback HTTP, each fsynced.
bench-psp:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./services/payment/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

GO ?= go

.PHONY: run test bench lint build devstack-up devstack-down
build:
	$(GO) build -o bin/ticketing ./cmd/ticketing

run: build
	./bin/ticketing dev

# Extra flags for go test, e.g. make test TESTFLAGS='-run TestX -v'
TESTFLAGS ?=
DEVSTACK ?= compose/devstack

# Starts every server the tests need (compose/devstack), runs the tests with
# their addresses exported, and always stops the servers again; exits with
# go test's code and prints the wall time.
test:
	@start=$$(date +%s.%N); \
	TICKETING_REQUIRE_SERVERS=1 GO='$(GO)' $(DEVSTACK) run -- $(GO) test -race -count=1 $(TESTFLAGS) ./...; \
	rc=$$?; \
	echo "make test: exit $$rc, wall time $$(awk -v s=$$start -v e=$$(date +%s.%N) 'BEGIN { printf "%.1f", e - s }')s"; \
	exit $$rc

devstack-up:
	$(DEVSTACK) up

devstack-down:
	$(DEVSTACK) down

bench: build
	./bin/ticketing bench holds

lint:
	$(GO) vet ./...

GO ?= go

.PHONY: run test bench lint build
build:
	$(GO) build -o bin/ticketing ./cmd/ticketing

run: build
	./bin/ticketing dev

test:
	$(GO) test -race ./...

bench: build
	./bin/ticketing bench holds

lint:
	$(GO) vet ./...

# recpol: call-recording policy as code.
GO       ?= go
BIN      ?= bin/recpol
PKGS     ?= ./...

.PHONY: all build test vet fmt-check bench demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/recpol

## test: vet, formatting and the whole test suite under the race detector
test: vet fmt-check
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: the Go benchmarks
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## demo: vet, compile and summarise the example policy
demo: build
	$(BIN) vet testdata/policies/example
	$(BIN) compile testdata/policies/example -o bin/example-table.json
	$(BIN) compile testdata/policies/example --summary

clean:
	rm -rf bin

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

## bench: measure recpol against its performance goals and write BENCHMARKS.md
## (takes a long while; not part of test). The Go benchmarks go to
## bin/gobench.txt for benchstat; the CUE CLI of the library's version is
## installed into bin/ as the peer of the cold compile.
CUE_VERSION = $(shell $(GO) list -m -f '{{.Version}}' cuelang.org/go)
BENCH_FLAGS ?=
bench: build
	GOBIN=$(CURDIR)/bin $(GO) install cuelang.org/go/cmd/cue@$(CUE_VERSION)
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS) | tee bin/gobench.txt
	$(GO) run ./internal/bench/cmd/benchall -recpol $(BIN) -cue bin/cue -o BENCHMARKS.md $(BENCH_FLAGS)

EXAMPLE := testdata/policies/example

## demo: vet, compile and simulate the example policy, check the documented matrix,
## then run it: fake switch, runtime, recordings, a hot reload, the summary
demo: build
	$(BIN) vet $(EXAMPLE)
	$(BIN) compile $(EXAMPLE) -o bin/example-table.json
	$(BIN) compile $(EXAMPLE) --summary
	$(BIN) simulate --matrix
	$(BIN) simulate $(EXAMPLE)
	$(BIN) simulate $(EXAMPLE) --expect $(EXAMPLE).expect.cue
	$(BIN) demo --dir bin/demo --policies $(EXAMPLE)

clean:
	rm -rf bin

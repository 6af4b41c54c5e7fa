# pgrules — the two commands that matter:
#   make demo   run pgrules on testdata/sample with the dryrun provider
#   make test   vet, all Go tests (plugins are built by the tests), the rule case suite;
#               installs chromium for the report's browser test when missing
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Go plugins (plugins/python-example is Python: its wrapper script is the
# executable, see providers/README.md).
PLUGINS  := $(notdir $(patsubst %/main.go,%,$(wildcard plugins/*/main.go)))
SAMPLE   := testdata/sample
DEMO_OUT ?= out/demo

.PHONY: all build plugins demo test test-deps test-rules vet vet-macos fmt-check bench proto clean golden

all: build

build: plugins
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/pgrules ./cmd/pgrules

# Plugins are separate binaries named pgrules-provider-<name>; pgrules
# finds them next to its own executable.
plugins:
	@mkdir -p $(BIN)
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BIN)/pgrules-provider-$$p ./plugins/$$p"; \
		$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/pgrules-provider-$$p ./plugins/$$p || exit 1; \
	done

demo: build
	$(BIN)/pgrules run --provider dryrun \
		--plan $(SAMPLE)/prompt_plan_v1.jsonl \
		--drafts $(SAMPLE)/drafts_v1.jsonl \
		--critiques $(SAMPLE)/critiques_v1.jsonl \
		--out-dir $(DEMO_OUT) --report
	@echo "outputs in $(DEMO_OUT):" && ls -l $(DEMO_OUT)
	@echo "open $(DEMO_OUT)/report.html in a browser to see the run"

test: vet vet-macos fmt-check build test-deps
	$(GO) test ./...
	$(BIN)/pgrules test-rules --coverage --coverage-min 100

# What the tests drive besides Go (a real Chromium), installed when missing.
test-deps:
	@bash scripts/test-deps.sh

test-rules: build
	$(BIN)/pgrules test-rules -v --coverage

vet:
	$(GO) vet ./...

# macOS is supported but no Mac runs the suite: every package and test
# must at least type-check and vet for it (Apple Silicon; the syscall
# package names some stat fields differently there).
vet-macos:
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench: build
	bash scripts/bench.sh

proto:
	bash providers/proto/gen.sh

clean:
	rm -rf $(BIN) out

# Golden outputs of the sample run; the CLI script tests compare against them.
golden: build
	rm -rf out/golden
	SOURCE_DATE_EPOCH=1769849398 $(BIN)/pgrules run --provider dryrun --log-level warn \
		--plan $(SAMPLE)/prompt_plan_v1.jsonl --drafts $(SAMPLE)/drafts_v1.jsonl \
		--critiques $(SAMPLE)/critiques_v1.jsonl --out-dir out/golden --cache-path out/golden/.cache.db
	mkdir -p testdata/golden
	cp out/golden/dataset_v1.jsonl out/golden/dataset_v1_rejected.jsonl out/golden/dataset_v1_stats.json testdata/golden/

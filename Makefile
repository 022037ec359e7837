# gatehouse: run `make help` for the targets.
GO       ?= go
BIN      := bin/gatehouse
FUZZTIME ?= 10s

.PHONY: help build demo test test-deps bench fuzz vet lint vuln clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

build: ## build bin/gatehouse
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/gatehouse

demo: ## run the demo: IdP, application and gatehouse on localhost:8080
	$(GO) run ./cmd/gatehouse demo

test: vet test-deps ## run every test, with the race detector
	$(GO) test -race -count=1 -timeout 15m ./...

# Debian packages the tests use: chromium for the real-browser test.
test-deps:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
		else echo "make test needs chromium (Debian: sudo apt-get install chromium)"; exit 1; fi; }

bench: ## measure gatehouse against a bare reverse proxy (installs wrk if missing)
	@command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./test

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	$(GO) test -run '^$$' -fuzz '^FuzzMapping$$' -fuzztime $(FUZZTIME) ./provision
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeHeaderName$$' -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeConfig$$' -fuzztime $(FUZZTIME) ./cmd/gatehouse
	$(GO) test -run '^$$' -fuzz '^FuzzPrecheck$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSession$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeState$$' -fuzztime $(FUZZTIME) ./session

vet: ## gofmt and go vet (part of make test)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

lint: vet ## vet, then staticcheck (fetched through the module proxy)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

vuln: ## known-advisory pins (govulncheck too, where its database is reachable)
	$(GO) test -count=1 -run 'TestKnownAdvisoriesPinned' ./test
	@if $(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./... 2>/dev/null; then :; else \
		echo "govulncheck could not run here (its database may be unreachable); the pin test above stands in"; fi

clean: ## remove build output and demo data
	rm -rf bin demo-data

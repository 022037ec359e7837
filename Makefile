# gatehouse: run `make help` for the targets.
GO       ?= go
BIN      := bin/gatehouse
FUZZTIME ?= 10s
SOAK_DURATION ?= 1m

.PHONY: help build demo test test-deps bench soak fuzz vet lint vuln clean image

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

# VERSION and REVISION are stamped into the binary (gatehouse version, the
# startup log, gatehouse_build_info); without them the Go toolchain's own
# VCS stamping gives the commit, where it is on.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)

build: ## build bin/gatehouse, stamped with VERSION (git describe) and REVISION
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.buildVersion=$(VERSION) -X main.buildRevision=$(REVISION)" -o $(BIN) ./cmd/gatehouse

image: build ## build the container image bin/gatehouse-image.tar, no registry needed
	$(GO) run ./deploy/mkimage -binary $(BIN) -o bin/gatehouse-image.tar \
		-version "$(or $(VERSION),devel)" -revision "$(REVISION)" \
		-created "$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# DEMO_PORT is gatehouse's port; the demo IdP, the application, the admin
# listener and the demo OpenID provider take the next four. The built binary runs (not `go run`,
# which exits 1 on Ctrl-C whatever the program does): Ctrl-C exits 0.
DEMO_PORT ?= 8080

demo: build ## run the demo: SAML IdP, OpenID provider, application and gatehouse on localhost:8080-8084 (DEMO_PORT=N: N..N+4)
	$(BIN) demo --port $(DEMO_PORT)

test: vet test-deps ## run every test, with the race detector
	$(GO) test -race -count=1 -timeout 15m ./...

# Debian packages the tests use: chromium for the real-browser test,
# slapd and ldap-utils for the directory tests, 389-ds-base for the 389
# Directory Server store test, postgresql for the SQL
# tests (the harness runs its own throwaway clusters with initdb), xmlsec1
# and python3-pysaml2 for SAML interoperability (signatures, encryption and
# whole responses from implementations independent of gatehouse's),
# redis-server for the replica tests (the harness runs its own), podman
# and runc to run the container image that `make image` builds (crun,
# podman's default runtime, refuses hosts with cgroups in hybrid mode), and prometheus for
# promtool, which checks the shipped alert rules.
# samba, samba-ad-provision, samba-ad-dc, samba-dsdb-modules and ldb-tools
# for the Active Directory tests (test/samba provisions its own throwaway DC).
# nodejs and npm run the OpenID Provider of test/oidcop (panva's
# oidc-provider, installed from test/oidcop/package-lock.json by npm ci
# when node_modules is missing or older than the lock file).
# Installing them must not start Debian's own servers, so service starts
# are denied while they install (policy-rc.d), unless the machine already
# denies them.
test-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	{ command -v slapd >/dev/null || [ -x /usr/sbin/slapd ]; } || missing="$$missing slapd ldap-utils"; \
	[ -x /usr/sbin/ns-slapd ] || missing="$$missing 389-ds-base"; \
	{ command -v samba >/dev/null || [ -x /usr/sbin/samba ]; } && command -v samba-tool >/dev/null || missing="$$missing samba samba-ad-provision samba-ad-dc samba-dsdb-modules ldb-tools"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v xmlsec1 >/dev/null || missing="$$missing xmlsec1"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	/usr/bin/python3 -c 'import saml2' 2>/dev/null || missing="$$missing python3-pysaml2"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			rcd=""; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; rcd=1; fi; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; rc=$$?; \
			[ -z "$$rcd" ] || rm -f /usr/sbin/policy-rc.d; exit $$rc; \
		else echo "make test needs:$$missing (Debian: sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	@if [ ! -d test/oidcop/node_modules ] || [ test/oidcop/package-lock.json -nt test/oidcop/node_modules ]; then \
		npm ci --prefix test/oidcop --no-audit --no-fund && touch test/oidcop/node_modules; \
	fi

# BenchmarkPeers runs last, on its own: gatehouse, samlsp and a bare proxy
# as separate processes, ending with the summary table of issue 19.
bench: ## measure gatehouse against a bare reverse proxy, and first logins/s at concurrency 1, 16, 64 on SQLite and PostgreSQL; last, beside samlsp and a bare proxy process, with a summary table (installs wrk if missing)
	@command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
	@echo "load average at start: $$(cat /proc/loadavg)"
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkPeers$$' -benchtime 1x -timeout 20m ./test
	$(GO) test -run '^$$' -bench '^BenchmarkPeers$$' -benchtime 1x -timeout 15m ./test

soak: ## mixed load for SOAK_DURATION (default 1m): throughput, errors, memory (not in CI)
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -run '^TestSoak$$' -count=1 -v -timeout 0 ./test

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	$(GO) test -run '^$$' -fuzz '^FuzzMapping$$' -fuzztime $(FUZZTIME) ./provision
	$(GO) test -run '^$$' -fuzz '^FuzzCanonicalName$$' -fuzztime $(FUZZTIME) ./provision
	$(GO) test -run '^$$' -fuzz '^FuzzNames$$' -fuzztime $(FUZZTIME) ./provision/ldapdir
	$(GO) test -run '^$$' -fuzz '^FuzzFilter$$' -fuzztime $(FUZZTIME) ./scim
	$(GO) test -run '^$$' -fuzz '^FuzzPatch$$' -fuzztime $(FUZZTIME) ./scim
	$(GO) test -run '^$$' -fuzz '^FuzzPatchNamed$$' -fuzztime $(FUZZTIME) ./scim
	$(GO) test -run '^$$' -fuzz '^FuzzNormalizeHeaderName$$' -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzCanonicalPath$$' -fuzztime $(FUZZTIME) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeConfig$$' -fuzztime $(FUZZTIME) ./cmd/gatehouse
	$(GO) test -run '^$$' -fuzz '^FuzzAccessCore$$' -fuzztime $(FUZZTIME) ./cmd/gatehouse
	$(GO) test -run '^$$' -fuzz '^FuzzBuildTree$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzAssertionTree$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./session
	$(GO) test -run '^$$' -fuzz '^FuzzCookieValue$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzPrecheck$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzPlainTokens$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSession$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeState$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzScanXML$$' -fuzztime $(FUZZTIME) ./session
	$(GO) test -run '^$$' -fuzz '^FuzzCanonicalReturn$$' -fuzztime $(FUZZTIME) ./session

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

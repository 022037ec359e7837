package proxy

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestClientIPDerivation: X-Forwarded-For is believed only as far as it
// was written by trusted proxies; the chain sent upstream starts at the
// derived client.
func TestClientIPDerivation(t *testing.T) {
	trusted, err := parseTrusted([]string{"10.0.0.0/8", "2001:db8:1::/48", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		remote    string
		xff       []string
		header    string // the name xff is sent under; default X-Forwarded-For
		wantIP    string
		wantChain string
		noTrusted bool
	}{
		{name: "DirectClientSpoofsForwardedFor", remote: "203.0.113.5:4000", xff: []string{"1.2.3.4"},
			wantIP: "203.0.113.5", wantChain: "203.0.113.5"},
		{name: "DirectClientSpoofsUnderscoreSpelling", remote: "203.0.113.5:4000", xff: []string{"1.2.3.4"}, header: "X_Forwarded_For",
			wantIP: "203.0.113.5", wantChain: "203.0.113.5"},
		{name: "UnderscoreSpellingBehindTrustedProxyIgnored", remote: "10.1.1.1:4000", xff: []string{"1.2.3.4"}, header: "X_Forwarded_For",
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "NoTrustedProxiesConfigured", remote: "10.1.1.1:4000", xff: []string{"1.2.3.4"}, noTrusted: true,
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "TrustedProxyNamesClient", remote: "10.1.1.1:4000", xff: []string{"198.51.100.9"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.1.1.1"},
		{name: "ClientPrependsFakeAddressesBehindTrustedProxy", remote: "10.1.1.1:4000", xff: []string{"1.2.3.4, 5.6.7.8, 198.51.100.9"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.1.1.1"},
		{name: "ClientSendsTrustedLookingAddress", remote: "10.1.1.1:4000", xff: []string{"198.51.100.9, 10.9.9.9"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.9.9.9, 10.1.1.1"},
		{name: "ChainOfTrustedProxies", remote: "192.0.2.7:80", xff: []string{"198.51.100.9, 10.2.2.2"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.2.2.2, 192.0.2.7"},
		{name: "SeveralHeaderLines", remote: "10.1.1.1:4000", xff: []string{"1.2.3.4", "198.51.100.9"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.1.1.1"},
		{name: "AllTrusted", remote: "10.1.1.1:4000", xff: []string{"10.3.3.3"},
			wantIP: "10.3.3.3", wantChain: "10.3.3.3, 10.1.1.1"},
		{name: "TrustedProxyWithoutHeader", remote: "10.1.1.1:4000",
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "GarbageEntryStopsAtItsWriter", remote: "10.1.1.1:4000", xff: []string{"198.51.100.9, not-an-ip"},
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "UnknownEntry", remote: "10.1.1.1:4000", xff: []string{"unknown"},
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "EntryWithPort", remote: "10.1.1.1:4000", xff: []string{"198.51.100.9:5555"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.1.1.1"},
		{name: "BracketedIPv6", remote: "[2001:db8:1::5]:443", xff: []string{"[2001:db8:9::1]:80"},
			wantIP: "2001:db8:9::1", wantChain: "2001:db8:9::1, 2001:db8:1::5"},
		{name: "IPv4MappedPeerIsTrusted", remote: "[::ffff:10.1.1.1]:4000", xff: []string{"198.51.100.9"},
			wantIP: "198.51.100.9", wantChain: "198.51.100.9, 10.1.1.1"},
		{name: "ZoneRefused", remote: "10.1.1.1:4000", xff: []string{"fe80::1%eth0"},
			wantIP: "10.1.1.1", wantChain: "10.1.1.1"},
		{name: "NoRemoteAddr", remote: "", xff: []string{"1.2.3.4"}, wantIP: "invalid IP", wantChain: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != nil {
				name := tc.header
				if name == "" {
					name = "X-Forwarded-For"
				}
				r.Header[name] = tc.xff
			}
			tr := trusted
			if tc.noTrusted {
				tr = nil
			}
			c := deriveClient(r, tr)
			if c.ip.String() != tc.wantIP || c.forwarded != tc.wantChain {
				t.Errorf("client %s, chain %q; want %s, %q", c.ip, c.forwarded, tc.wantIP, tc.wantChain)
			}
		})
	}
}

// TestClientIPChainIsBounded: a chain of trusted-looking addresses is
// walked no further than maxForwardedHops.
func TestClientIPChainIsBounded(t *testing.T) {
	trusted, _ := parseTrusted([]string{"10.0.0.0/8"})
	xff := ""
	for i := range 10_000 {
		if i > 0 {
			xff += ","
		}
		xff += "10.0.0.1"
	}
	c := deriveClient(&http.Request{RemoteAddr: "10.1.1.1:1", Header: http.Header{"X-Forwarded-For": {xff}}}, trusted)
	if c.ip != netip.MustParseAddr("10.0.0.1") || len(c.forwarded) > 20*(maxForwardedHops+2) {
		t.Errorf("client %s, chain of %d bytes", c.ip, len(c.forwarded))
	}
}

func TestParseTrustedProxies(t *testing.T) {
	if _, err := parseTrusted([]string{"10.0.0.0/8", "::1", "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "fe80::1%eth0"} {
		if _, err := parseTrusted([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

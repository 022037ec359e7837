package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequestCounterByStatus: the request counter's children, resolved
// once per status, count every answer under its code, and a code never
// answered has no series.
func TestRequestCounterByStatus(t *testing.T) {
	m := newMetrics()
	status := http.StatusOK
	h := m.handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	for _, s := range []int{200, 200, 404, 200, 999} {
		status = s
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "gatehouse_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			got[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
		}
	}
	if len(got) != 3 || got["200"] != 3 || got["404"] != 1 || got["999"] != 1 {
		t.Errorf("gatehouse_requests_total by code: %v, want 200: 3, 404: 1, 999: 1", got)
	}
}

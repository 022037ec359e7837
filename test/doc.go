// Package test holds gatehouse's end-to-end tests: an in-process identity
// provider that signs responses with keys under testdata, golden negative
// SAML responses, the import-direction and advisory-pin checks, and the
// benchmarks that `make bench` runs. It has no code outside its tests.
package test

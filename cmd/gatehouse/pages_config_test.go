package main

import "testing"

// TestPagesSection: the pages section decodes, and gatehouse check names
// each bad value under its key path (a script URL as the logo, an
// over-long name, a support contact that is neither an address nor an
// https URL) in one pass.
func TestPagesSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	checkProblems(t, goodConfig+`pages:
  app_name: Payroll
  logo_url: https://cdn.example.com/payroll.svg
  support_contact: it-help@example.com
`, nil)
	checkProblems(t, goodConfig+`pages:
  app_name: "0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
  logo_url: "javascript:alert(1)"
  support_contact: call the helpdesk
`, []string{"pages.app_name: 82 characters, at most 80", "pages.logo_url: must be an https URL", "pages.support_contact: must be an email address"})
	checkProblems(t, goodConfig+`pages:
  logo: /x.png
`, []string{"pages.logo: unknown key", "logo_url"})
}

package session

import (
	"strings"
	"testing"
	"time"
)

// TestInteropConfig: name_id_format takes a URN or an alias, and
// sp_metadata_valid_for and sign_metadata are checked, each problem at its
// key.
func TestInteropConfig(t *testing.T) {
	yes, no := true, false
	base := func() Config {
		c := Config{BaseURL: "https://sp.example.test", IdPs: []IdP{{Name: "corp", EntityID: "https://idp.example.test", MetadataFile: "idp.xml"}}}
		c.Cookie.SetKeys([][]byte{key(1)})
		return c
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string // "" = valid
	}{
		"Defaults":           {func(*Config) {}, ""},
		"AliasPersistent":    {func(c *Config) { c.IdPs[0].NameIDFormat = "persistent" }, ""},
		"AliasEmailAnyCase":  {func(c *Config) { c.IdPs[0].NameIDFormat = "EmailAddress" }, ""},
		"URN":                {func(c *Config) { c.IdPs[0].NameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos" }, ""},
		"NotURN":             {func(c *Config) { c.IdPs[0].NameIDFormat = "email" }, "idps[0].name_id_format"},
		"URNWithSpace":       {func(c *Config) { c.IdPs[0].NameIDFormat = "urn:x y" }, "idps[0].name_id_format"},
		"URNWithMarkup":      {func(c *Config) { c.IdPs[0].NameIDFormat = `urn:x"><evil/>` }, "idps[0].name_id_format"},
		"ValidForADay":       {func(c *Config) { c.MetadataValidFor = 24 * time.Hour }, ""},
		"ValidForTooShort":   {func(c *Config) { c.MetadataValidFor = 30 * time.Minute }, "sp_metadata_valid_for"},
		"ValidForTooLong":    {func(c *Config) { c.MetadataValidFor = 20 * 365 * 24 * time.Hour }, "sp_metadata_valid_for"},
		"SignWithoutKey":     {func(c *Config) { c.SignMetadata = &yes }, "sign_metadata"},
		"UnsignedWithoutKey": {func(c *Config) { c.SignMetadata = &no }, ""},
		"SignWithEncryptOnly": {func(c *Config) {
			c.SignMetadata = &yes
			c.Keys = []SPKey{{KeyFile: "k", CertFile: "c", Use: UseEncryption}}
		}, "sign_metadata"},
		"SignWithSigningKey": {func(c *Config) {
			c.SignMetadata = &yes
			c.Keys = []SPKey{{KeyFile: "k", CertFile: "c", Use: UseSigning}}
		}, ""},
		"SignWithSPKeyFile":   {func(c *Config) { c.SignMetadata = &yes; c.KeyFile, c.CertFile = "k", "c" }, ""},
		"UnsignedWithKeyFile": {func(c *Config) { c.SignMetadata = &no; c.KeyFile, c.CertFile = "k", "c" }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want+":")):
				t.Errorf("want a problem at %s, got %v", tc.want, err)
			}
		})
	}
	if got := nameIDFormatURN("transient"); got != "urn:oasis:names:tc:SAML:2.0:nameid-format:transient" {
		t.Errorf("transient = %q", got)
	}
}

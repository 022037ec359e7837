package ldapdir

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// SchemaLDIF is the OpenLDAP cn=config schema that defines the default
// state attribute (gatehouseState) and its auxiliary object class
// (gatehouseAccount).
//
//go:embed gatehouse-schema.ldif
var SchemaLDIF string

// SchemaInclude is the same schema in OpenLDAP's slapd.conf syntax, for an
// include line.
//
//go:embed gatehouse.schema
var SchemaInclude string

// Schema389DS is the same schema for 389 Directory Server: an LDIF that
// modifies cn=schema.
//
//go:embed gatehouse-schema-389ds.ldif
var Schema389DS string

// Index389DS adds the equality index on gatehouseState to 389 Directory
// Server's userRoot backend.
//
//go:embed gatehouse-index-389ds.ldif
var Index389DS string

// SCIMIndex389DS adds the indexes SCIM queries use to 389 Directory
// Server's userRoot backend, after Index389DS, and starts building them.
//
//go:embed gatehouse-scim-index-389ds.ldif
var SCIMIndex389DS string

// Profiles.
const (
	ProfileOpenLDAP        = "openldap"
	ProfileActiveDirectory = "active_directory"
	// Profile389DS is 389 Directory Server: OpenLDAP's defaults, with
	// nsMemberOf among the user classes (the memberOf plugin writes
	// memberOf only to entries whose classes allow it) and nsAccountLock
	// as the disabled mark.
	Profile389DS = "389ds"
)

// Config describes the directory and how users and groups live in it.
type Config struct {
	// URL is ldap://host[:port] (StartTLS unless insecure_plaintext) or
	// ldaps://host[:port].
	URL string `yaml:"url"`
	// InsecurePlaintext allows ldap:// without StartTLS: the bind
	// password and every attribute then cross the network in clear. Only
	// for a directory on the same host.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// CAFile is a PEM bundle of the CAs that sign the directory's
	// certificate; default the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the directory's
	// certificate; default the URL's host.
	ServerName string `yaml:"server_name"`

	// BindDN and its password. ldapdir reads no secret: the caller (cmd)
	// fills BindPassword from the environment, or reads BindPasswordFile
	// through Password, which it builds to read the file again at every
	// bind so that a rotated password is picked up.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BindPassword     string `yaml:"bind_password"`
	// Password, when set, gives the bind password at every bind, in
	// place of BindPassword.
	Password func() (string, error) `yaml:"-"`

	// Profile is "openldap" (default), "389ds" or "active_directory"; it
	// sets the defaults of every field below.
	Profile string `yaml:"profile"`
	// UserBase is where users are created and looked up; GroupBase where
	// groups are.
	UserBase  string `yaml:"user_base"`
	GroupBase string `yaml:"group_base"`
	// RDN is the naming attribute of new users with the field that fills
	// it, like "uid={user_name}" (OpenLDAP) or "cn={user_name}" (AD).
	RDN string `yaml:"rdn"`
	// UserObjectClasses are set on new users.
	UserObjectClasses []string `yaml:"user_object_classes"`
	// GroupObjectClass is the class of groups: groupOfNames (OpenLDAP) or
	// group (AD). Their members are in "member" and their name in "cn".
	GroupObjectClass string `yaml:"group_object_class"`
	// Attributes maps user fields (user_name, email, display_name,
	// given_name, family_name, and extra names from the IdP mappings) to
	// LDAP attributes.
	Attributes map[string]string `yaml:"attributes"`
	// StateAttribute is a multi-valued, case-exact string attribute that
	// gatehouse owns on its entries: identity keys, a write counter and
	// the memberships logins created. StateObjectClass, when set, is added
	// to entries so that the attribute is allowed.
	StateAttribute   string `yaml:"state_attribute"`
	StateObjectClass string `yaml:"state_object_class"`
	// MemberOfAttribute is the back-link attribute listing a user's
	// groups (memberOf with OpenLDAP's memberof overlay, always on AD);
	// "none" searches the groups instead.
	MemberOfAttribute string `yaml:"member_of_attribute"`
	// DisabledAttribute and DisabledValue mark a disabled account on
	// OpenLDAP (default pwdAccountLockedTime: 000001010000Z, a permanent
	// ppolicy lock; nsAccountLock: true on 389 DS). AD uses
	// userAccountControl bit 2 instead.
	DisabledAttribute string `yaml:"disabled_attribute"`
	DisabledValue     string `yaml:"disabled_value"`
	// EmptyGroupMember is the member written when the last member leaves a
	// groupOfNames, which may not be empty; default the group's own DN.
	EmptyGroupMember string `yaml:"empty_group_member"`
	// AdoptExisting lets a first login take over an entry that already
	// holds its DN but no gatehouse identity (an account that existed
	// before gatehouse). Only safe when the IdP is authoritative for user
	// names.
	AdoptExisting bool `yaml:"adopt_existing"`

	// Active Directory only.
	// UPNSuffix builds userPrincipalName as user_name@suffix (a user name
	// that contains "@" is used as it is).
	UPNSuffix string `yaml:"upn_suffix"`
	// SetRandomPassword writes a random unusable password (unicodePwd)
	// before enabling a new account, for domains whose policy refuses
	// enabled accounts without one. Needs an encrypted connection.
	SetRandomPassword bool `yaml:"set_random_password"`

	// PoolSize bounds open connections; default 4.
	PoolSize int `yaml:"pool_size"`
	// DialTimeout bounds connecting, TLS and bind; default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// OpTimeout bounds one operation when the caller's context has no
	// earlier deadline; default 10s.
	OpTimeout time.Duration `yaml:"op_timeout"`
	// IdleTimeout drops pooled connections idle for longer, before the
	// server does (AD: 900s); default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PageSize is the paged-results size for searches that can return
	// many entries; default 500 (AD serves at most 1000).
	PageSize int `yaml:"page_size"`
}

// WithDefaults fills unset fields from the profile.
func (c Config) WithDefaults() Config {
	if c.Profile == "" {
		c.Profile = ProfileOpenLDAP
	}
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	var attrs map[string]string
	switch c.Profile {
	case ProfileActiveDirectory:
		set(&c.RDN, "cn={user_name}")
		set(&c.GroupObjectClass, "group")
		if c.UserObjectClasses == nil {
			c.UserObjectClasses = []string{"top", "person", "organizationalPerson", "user"}
		}
		attrs = map[string]string{provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn"}
	default:
		set(&c.RDN, "uid={user_name}")
		set(&c.GroupObjectClass, "groupOfNames")
		set(&c.StateAttribute, "gatehouseState")
		if c.StateAttribute == "gatehouseState" {
			set(&c.StateObjectClass, "gatehouseAccount")
		}
		if c.Profile == Profile389DS {
			set(&c.DisabledAttribute, "nsAccountLock")
			if strings.EqualFold(c.DisabledAttribute, "nsAccountLock") {
				set(&c.DisabledValue, "true")
			}
		}
		set(&c.DisabledAttribute, "pwdAccountLockedTime")
		if c.DisabledAttribute == "pwdAccountLockedTime" {
			set(&c.DisabledValue, "000001010000Z")
		}
		if c.UserObjectClasses == nil {
			c.UserObjectClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson"}
			if c.Profile == Profile389DS {
				c.UserObjectClasses = append(c.UserObjectClasses, "nsMemberOf")
			}
		}
		attrs = map[string]string{provision.FieldUserName: "uid", provision.FieldEmail: "mail",
			provision.FieldDisplayName: "displayName", provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn"}
	}
	if c.Attributes == nil {
		c.Attributes = attrs
	}
	set(&c.MemberOfAttribute, "memberOf")
	if c.PoolSize == 0 {
		c.PoolSize = 4
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	return c
}

var (
	attrName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)
	rdnForm  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*)=\{([a-z][a-z0-9_]*)\}$`)
)

// Validate checks the configuration without network I/O. Call it on the
// result of WithDefaults. It is Problems, joined.
func (c Config) Validate() error { return errors.Join(c.Problems()...) }

// Problems is every problem Validate finds, each naming its key, in
// order.
func (c Config) Problems() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		bad("url: required (ldaps://host or ldap://host)")
	case err != nil:
		bad("url: %v", err)
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		bad("url: scheme must be ldap or ldaps, got %q", u.Scheme)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		bad("url: must be scheme://host[:port] with nothing else")
	case u.Scheme == "ldaps" && c.InsecurePlaintext:
		bad("insecure_plaintext: contradicts an ldaps:// url")
	}
	switch c.Profile {
	case ProfileOpenLDAP, Profile389DS, ProfileActiveDirectory:
	default:
		bad("profile: must be %s, %s or %s, got %q", ProfileOpenLDAP, Profile389DS, ProfileActiveDirectory, c.Profile)
	}
	if c.BindDN == "" {
		bad("bind_dn: required: gatehouse writes, so it binds as a service account")
	} else if _, err := ldap.ParseDN(c.BindDN); err != nil {
		bad("bind_dn: %v", err)
	}
	if c.BindPasswordFile != "" && c.BindPassword != "" || c.BindPasswordFile == "" && c.BindPassword == "" && c.Password == nil {
		bad("bind_password_file: set it, or bind_password as an ${ENV} reference, but not both")
	}
	for key, dn := range map[string]string{"user_base": c.UserBase, "group_base": c.GroupBase} {
		if dn == "" {
			bad("%s: required", key)
		} else if d, err := ldap.ParseDN(dn); err != nil || len(d.RDNs) == 0 {
			bad("%s: not a DN: %q", key, dn)
		}
	}
	m := rdnForm.FindStringSubmatch(c.RDN)
	if m == nil {
		bad("rdn: must look like attribute={field}, e.g. uid={user_name}, got %q", c.RDN)
	} else if !c.knownField(m[2]) {
		bad("rdn: %q is not user_name or a field in attributes", m[2])
	}
	if !attrName.MatchString(c.GroupObjectClass) {
		bad("group_object_class: invalid name %q", c.GroupObjectClass)
	}
	if len(c.UserObjectClasses) == 0 {
		bad("user_object_classes: at least one")
	}
	for i, oc := range c.UserObjectClasses {
		if !attrName.MatchString(oc) {
			bad("user_object_classes[%d]: invalid name %q", i, oc)
		}
	}
	owned := map[string]string{} // lower-case attribute -> field
	for field, attr := range c.Attributes {
		switch {
		case !attrName.MatchString(attr):
			bad("attributes.%s: invalid attribute name %q", field, attr)
		case field == provision.FieldGroups:
			bad("attributes.groups: groups are memberships in group_base, not an attribute")
		case owned[strings.ToLower(attr)] != "":
			bad("attributes.%s: %s is already mapped from %s", field, attr, owned[strings.ToLower(attr)])
		case c.reserved(attr):
			bad("attributes.%s: %s is managed by gatehouse itself", field, attr)
		case securityAttribute(attr):
			bad("attributes.%s: %s holds credentials, account control or a POSIX identity: an IdP or SCIM value must not set it", field, attr)
		}
		owned[strings.ToLower(attr)] = field
	}
	errs = append(errs, c.aliasProblems(standardAttribute)...)
	if c.StateAttribute == "" {
		bad("state_attribute: required for %s: a multi-valued, case-exact string attribute that only gatehouse writes", c.Profile)
	} else if !attrName.MatchString(c.StateAttribute) {
		bad("state_attribute: invalid name %q", c.StateAttribute)
	}
	if c.StateObjectClass != "" && !attrName.MatchString(c.StateObjectClass) {
		bad("state_object_class: invalid name %q", c.StateObjectClass)
	}
	if c.MemberOfAttribute != "none" && !attrName.MatchString(c.MemberOfAttribute) {
		bad("member_of_attribute: invalid name %q", c.MemberOfAttribute)
	}
	if c.EmptyGroupMember != "" {
		if _, err := ldap.ParseDN(c.EmptyGroupMember); err != nil {
			bad("empty_group_member: %v", err)
		}
	}
	if c.Profile == ProfileActiveDirectory {
		if c.UPNSuffix == "" || strings.ContainsAny(c.UPNSuffix, "@ ") {
			bad("upn_suffix: required for active_directory, a domain like corp.example.com")
		}
		if c.SetRandomPassword && !c.encrypted() {
			bad("set_random_password: AD accepts passwords only over ldaps:// or StartTLS")
		}
		if m != nil && !strings.EqualFold(m[1], "cn") {
			bad("rdn: Active Directory names users by cn")
		}
		for key, dn := range map[string]string{"user_base": c.UserBase, "group_base": c.GroupBase} {
			if why := adSharedContainer(dn); why != "" {
				bad("%s: %s is %s: give gatehouse OUs of its own (a login joins groups by name, and SCIM acts on every user it finds)", key, dn, why)
			}
		}
		if sameDN(c.UserBase, c.GroupBase) {
			bad("group_base: the same as user_base: on Active Directory users and groups are both named by cn, so a user could take a group's name")
		}
	} else {
		if c.DisabledAttribute == "" || !attrName.MatchString(c.DisabledAttribute) || c.DisabledValue == "" {
			bad("disabled_attribute, disabled_value: required (e.g. pwdAccountLockedTime and 000001010000Z)")
		}
		if strings.EqualFold(c.DisabledAttribute, c.StateAttribute) &&
			(strings.ContainsFunc(c.DisabledValue, unicode.IsSpace) || c.DisabledValue == statePending) {
			bad("disabled_value: in the state attribute the mark must be one word, like disabled, got %q", c.DisabledValue)
		}
		if c.UPNSuffix != "" || c.SetRandomPassword {
			bad("upn_suffix, set_random_password: only for the active_directory profile")
		}
	}
	if c.PoolSize < 1 || c.PoolSize > 64 {
		bad("pool_size: between 1 and 64")
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		bad("page_size: between 1 and 1000")
	}
	for key, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "op_timeout": c.OpTimeout, "idle_timeout": c.IdleTimeout} {
		if d <= 0 {
			bad("%s: must be positive", key)
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// adSharedContainer says why dn is a container of the whole domain that
// gatehouse must not manage (the domain's root, or one of its built-in
// containers), or "" when it is not one.
func adSharedContainer(dn string) string {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return ""
	}
	allDC := func(rdns []*ldap.RelativeDN) bool {
		for _, r := range rdns {
			if len(r.Attributes) != 1 || !strings.EqualFold(r.Attributes[0].Type, "dc") {
				return false
			}
		}
		return true
	}
	if allDC(d.RDNs) {
		return "the domain's root"
	}
	first := d.RDNs[0].Attributes[0]
	if len(d.RDNs[0].Attributes) == 1 && strings.EqualFold(first.Type, "cn") && allDC(d.RDNs[1:]) {
		for _, c := range []string{"Users", "Builtin", "Computers", "System", "Program Data", "ForeignSecurityPrincipals", "Managed Service Accounts"} {
			if strings.EqualFold(first.Value, c) {
				return "the domain's built-in CN=" + c + " container"
			}
		}
	}
	return ""
}

func (c Config) encrypted() bool {
	return strings.HasPrefix(c.URL, "ldaps://") || !c.InsecurePlaintext
}

func (c Config) knownField(f string) bool {
	if f == provision.FieldUserName {
		return true
	}
	_, ok := c.Attributes[f]
	return ok
}

// reserved reports attributes gatehouse writes for its own reasons.
func (c Config) reserved(attr string) bool {
	r := []string{"objectClass", c.StateAttribute, c.MemberOfAttribute, "member", "entryUUID", "objectGUID"}
	if c.Profile == ProfileActiveDirectory {
		r = append(r, "userAccountControl", "unicodePwd", "sAMAccountName", "userPrincipalName")
	} else {
		r = append(r, c.DisabledAttribute)
	}
	for _, x := range r {
		if strings.EqualFold(x, attr) {
			return true
		}
	}
	return false
}

// standardAliases are the other names that the standard user schema
// (RFC 4519, RFC 4524, RFC 2798, OpenLDAP's core and cosine files) gives
// an attribute, in lower case, each with the attribute's first name.
// Without a server, Validate knows one attribute by these; Check asks the
// directory's schema.
var standardAliases = map[string]string{
	"commonname": "cn", "surname": "sn", "userid": "uid", "rfc822mailbox": "mail", "gn": "givenname",
	"countryname": "c", "localityname": "l", "stateorprovincename": "st", "streetaddress": "street",
	"organizationname": "o", "organizationalunitname": "ou", "domaincomponent": "dc",
	"hometelephonenumber": "homephone", "mobiletelephonenumber": "mobile", "pagertelephonenumber": "pager",
	"fax": "facsimiletelephonenumber", "favouritedrink": "drink", "friendlycountryname": "co",
	"emailaddress": "email", "pkcs9email": "email", "aliasedentryname": "aliasedobjectname",
}

// standardAttribute is the attribute a name denotes in the standard
// schema: its first name, in lower case.
func standardAttribute(name string) string {
	n := strings.ToLower(name)
	if first, ok := standardAliases[n]; ok {
		return first
	}
	return n
}

// managedAttr is an attribute of user entries that gatehouse fills for its
// own reasons, and what it is.
type managedAttr struct {
	name, what string
	// field fills the RDN attribute; merged says a mapping of the same
	// spelling is merged into it (cn and sn, which the person class
	// requires: the mapped field is written first).
	field  string
	merged bool
}

// managedAttributes lists what gatehouse writes on user entries besides
// the mapped attributes.
func (c Config) managedAttributes() []managedAttr {
	var out []managedAttr
	if m := rdnForm.FindStringSubmatch(c.RDN); m != nil {
		out = append(out, managedAttr{name: m[1], what: "the RDN attribute (rdn: " + c.RDN + ")", field: m[2]})
	}
	out = append(out, managedAttr{name: "objectClass", what: "set by gatehouse"},
		managedAttr{name: c.StateAttribute, what: "the state attribute (state_attribute)"},
		managedAttr{name: "member", what: "the group membership attribute"})
	if c.MemberOfAttribute != "none" {
		out = append(out, managedAttr{name: c.MemberOfAttribute, what: "the membership back-link (member_of_attribute)"})
	}
	if c.Profile == ProfileActiveDirectory {
		for _, a := range []string{"objectGUID", "userAccountControl", "unicodePwd", "sAMAccountName", "userPrincipalName"} {
			out = append(out, managedAttr{name: a, what: "managed by gatehouse on Active Directory"})
		}
		return out
	}
	out = append(out, managedAttr{name: "entryUUID", what: "the entry's identifier"},
		managedAttr{name: c.DisabledAttribute, what: "the disabled mark (disabled_attribute)"})
	// As newLayout does: the person class requires cn and sn.
	if slices.ContainsFunc(c.UserObjectClasses, func(s string) bool {
		return strings.EqualFold(s, "person") || strings.EqualFold(s, "inetOrgPerson")
	}) {
		out = append(out, managedAttr{name: "cn", what: "filled by gatehouse for the person class (map cn itself to choose its field)", merged: true},
			managedAttr{name: "sn", what: "filled by gatehouse for the person class (map sn itself to choose its field)", merged: true})
	}
	return out
}

// aliasProblems refuses a mapped attribute that is, under resolve (which
// gives an attribute's identity: its OID in the directory's schema, or
// its standard name), the same attribute as another mapping or as one
// gatehouse manages, under another name: the entry would get it twice
// (slapd refuses the add, "attribute 'uid' provided more than once", and a
// replace under one name drops the values written under the other, the
// RDN's among them). A mapping of the RDN attribute
// from another field than the RDN's is refused too: that field would
// read back the RDN's value. Names spelt alike are the plain checks'.
func (c Config) aliasProblems(resolve func(string) string) []error {
	var errs []error
	managed := c.managedAttributes()
	fields := slices.Sorted(maps.Keys(c.Attributes))
	for i, field := range fields {
		attr := c.Attributes[field]
		if attr == "" {
			continue
		}
		id := resolve(attr)
		isManaged := false
		for _, m := range managed {
			if m.name == "" || resolve(m.name) != id {
				continue
			}
			isManaged = true
			switch {
			case !strings.EqualFold(m.name, attr):
				errs = append(errs, fmt.Errorf("attributes.%s: %s is another name of %s, %s", field, attr, m.name, m.what))
			case m.field != "" && m.field != field && !strings.EqualFold(c.Attributes[m.field], attr): // else "already mapped"
				errs = append(errs, fmt.Errorf("attributes.%s: %s is %s, filled from %s", field, attr, m.what, m.field))
			}
		}
		if isManaged {
			continue // each mapping of it is judged against the managed attribute alone
		}
		for _, other := range fields[:i] {
			if o := c.Attributes[other]; o != "" && !strings.EqualFold(o, attr) && resolve(o) == id {
				errs = append(errs, fmt.Errorf("attributes.%s: %s is another name of %s, already mapped from %s", field, attr, o, other))
			}
		}
	}
	return errs
}

// securityAttributes are attributes whose value grants or controls
// access: passwords and keys a directory checks at bind or login, lock
// and account-control flags, and the POSIX numbers a host takes a user to
// be (uidNumber 0 is root). A mapped field is written from IdP or SCIM
// data, so none of them may be one. Lower case.
var securityAttributes = []string{
	"userpassword", "authpassword", "unicodepwd", "ntpwdhistory", "lmpwdhistory", "supplementalcredentials",
	"sambantpassword", "sambalmpassword", "sambapwdlastset", "sshpublickey", "usercertificate", "usersmimecertificate",
	"pwdaccountlockedtime", "pwdpolicysubentry", "pwdreset", "nsaccountlock", "nsroledn", "useraccountcontrol",
	"accountexpires", "lockouttime", "pwdlastset", "admincount", "msds-allowedtodelegateto", "serviceprincipalname",
	"sidhistory", "primarygroupid", "uidnumber", "gidnumber", "homedirectory", "loginshell",
	// Active Directory: alternative logon identities and credentials,
	// delegation, logon scripts and profiles, sync anchors, and what names
	// or places the object itself.
	"altsecurityidentities", "msds-keycredentiallink", "msds-allowedtoactonbehalfofotheridentity", "scriptpath",
	"profilepath", "homedrive", "userparameters", "userworkstations", "logonhours", "msds-supportedencryptiontypes",
	"ntsecuritydescriptor", "ms-ds-consistencyguid", "msds-hostserviceaccount", "objectsid", "iscriticalsystemobject",
	"name", "distinguishedname", "objectcategory", "isdeleted", "proxyaddresses", "msds-allowedtodelegatetoaccount",
	"useraccountcontrol", "msds-user-account-control-computed", "dnshostname", "msds-additionaldnshostname",
	"shadowexpire", "shadowflag", "shadowinactive", "shadowlastchange", "shadowmax", "shadowmin", "shadowwarning",
}

func securityAttribute(attr string) bool {
	a, _, _ := strings.Cut(attr, ";") // attribute options name the same attribute
	return slices.Contains(securityAttributes, strings.ToLower(a))
}

package ldapdir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"gatehouse/provision"
)

// The state attribute holds gatehouse's bookkeeping as typed values:
//
//	key <idp> <kind> <subject>   an identity that logs in as this entry
//	version <n>                  the write counter (User.Version)
//	group <source> <name>        a membership that <source> created
//	pending-enable               an AD account created disabled whose
//	                             password and enable steps are not done
//	owner scim                   the entry was created or last written
//	                             over SCIM (absent: owned by logins)
//	scim field <field>           SCIM has written the field
//	                             (User.SCIMFields; "*": every field)
//	scim fields                  the entry records the fields SCIM wrote;
//	                             an entry owned by SCIM without it was
//	                             written before they were recorded, and
//	                             SCIM owns every field of it
//	name <fold>                  the user name folded (provision's
//	                             NormalizeName): the directory's own
//	                             matching rules do not fold "ß" as "ss",
//	                             so name uniqueness is checked on it
//
// IdPs and kinds contain no spaces (checked), so each value splits
// unambiguously and the subject or group name is kept exactly.
const (
	stateKey     = "key "
	stateVersion = "version "
	stateGroup   = "group "
	statePending = "pending-enable"
	stateOwner   = "owner scim"
	stateName    = "name "
	// Both hold a space, so neither is a one-word disabled mark.
	stateSCIMField  = "scim field "
	stateSCIMFields = "scim fields"
)

// nameValue is the state value holding a user name's fold.
func nameValue(userName string) string { return stateName + provision.NormalizeName(userName) }

// legacyFold is the fold of names before NFKC and full case folding:
// tombstones and membership records written then hold it.
func legacyFold(s string) string { return strings.ToLower(norm.NFC.String(s)) }

// folds lists the folds under which a name may be recorded: the current
// one and, where it differs, the legacy one.
func folds(s string) []string {
	out := []string{provision.NormalizeName(s)}
	if f := legacyFold(s); !slices.Contains(out, f) {
		out = append(out, f)
	}
	return out
}

func keyValue(k provision.Key) string { return stateKey + k.IdP + " " + k.Kind + " " + k.Subject }

func groupValue(source, norm string) string { return stateGroup + source + " " + norm }

// state is the parsed state attribute of one entry.
type state struct {
	keys    []string
	version int64
	groups  map[string]map[string]bool // source -> normalised group names
	// groupRaw holds the stored value of each of those, which an older
	// release may have folded differently.
	groupRaw map[string]map[string]string
	names    []string // the "name <fold>" values
	pending  bool
	scim     bool // owned by SCIM
	// scimFields are the fields SCIM wrote, as stored; fieldsRecorded
	// says the entry records them at all.
	scimFields     []string
	fieldsRecorded bool
	raw            []string
}

func parseState(vals []string) state {
	st := state{groups: map[string]map[string]bool{}, groupRaw: map[string]map[string]string{}, raw: vals}
	for _, v := range vals {
		switch {
		case strings.HasPrefix(v, stateKey):
			st.keys = append(st.keys, v)
		case strings.HasPrefix(v, stateVersion):
			if n, err := strconv.ParseInt(v[len(stateVersion):], 10, 64); err == nil && n > st.version {
				st.version = n
			}
		case strings.HasPrefix(v, stateGroup):
			src, name, ok := strings.Cut(v[len(stateGroup):], " ")
			if ok {
				if st.groups[src] == nil {
					st.groups[src], st.groupRaw[src] = map[string]bool{}, map[string]string{}
				}
				n := provision.NormalizeName(name)
				st.groups[src][n] = true
				st.groupRaw[src][n] = v
			}
		case strings.HasPrefix(v, stateName):
			st.names = append(st.names, v)
		case v == statePending:
			st.pending = true
		case v == stateOwner:
			st.scim = true
		case strings.HasPrefix(v, stateSCIMField):
			st.scimFields = append(st.scimFields, v[len(stateSCIMField):])
		case v == stateSCIMFields:
			st.fieldsRecorded = true
		}
	}
	return st
}

// groupValue is the stored value recording that source owns the
// membership of the group whose fold is n.
func (st state) groupValue(source, n string) string {
	if v, ok := st.groupRaw[source][n]; ok {
		return v
	}
	return groupValue(source, n)
}

// nameChange returns the state values that make the entry record the fold
// of userName and no other.
func (st state) nameChange(userName string) (add, del []string) {
	want := nameValue(userName)
	for _, v := range st.names {
		if v != want {
			del = append(del, v)
		}
	}
	if !slices.Contains(st.names, want) {
		add = []string{want}
	}
	return add, del
}

// staleName reports whether the entry's record of its user name is not
// the current fold of userName, alone.
func (st state) staleName(userName string) bool {
	if userName == "" {
		return false
	}
	add, del := st.nameChange(userName)
	return len(add)+len(del) > 0
}

// SCIMFields are the fields SCIM wrote to the entry (User.SCIMFields):
// every field (provision.AllFields) on an entry SCIM wrote before the
// fields were recorded.
func (st state) SCIMFields() []string {
	if st.scim && !st.fieldsRecorded {
		return []string{provision.AllFields}
	}
	return provision.SortedUnique(st.scimFields)
}

// scimFieldsChange returns the state values that make the entry record
// exactly fields as the ones SCIM wrote.
func (st state) scimFieldsChange(fields []string) (add, del []string) {
	want := provision.SortedUnique(fields)
	for _, f := range st.scimFields {
		if !slices.Contains(want, f) {
			del = append(del, stateSCIMField+f)
		}
	}
	for _, f := range want {
		if !slices.Contains(st.scimFields, f) {
			add = append(add, stateSCIMField+f)
		}
	}
	if !st.fieldsRecorded {
		add = append(add, stateSCIMFields)
	}
	return add, del
}

// versionValues returns the exact stored version values (normally one).
func (st state) versionValues() []string {
	var out []string
	for _, v := range st.raw {
		if strings.HasPrefix(v, stateVersion) {
			out = append(out, v)
		}
	}
	return out
}

// bumpState adds to req the bookkeeping of one write to cur: the state
// class when the entry lacks it, the version moved by compare-and-swap
// (deleting the value read fails with noSuchAttribute if another writer
// got there first), and the state values to add and delete. It returns
// the new version.
func (l *layout) bumpState(req *ldap.ModifyRequest, cur *entry, add, del []string) int64 {
	if l.cfg.StateObjectClass != "" && !hasValueFold(cur.e.GetEqualFoldAttributeValues("objectClass"), l.cfg.StateObjectClass) {
		req.Add("objectClass", []string{l.cfg.StateObjectClass})
	}
	if old := cur.st.versionValues(); len(old) > 0 {
		req.Delete(l.cfg.StateAttribute, old)
	}
	if len(del) > 0 {
		req.Delete(l.cfg.StateAttribute, del)
	}
	version := cur.st.version + 1
	req.Add(l.cfg.StateAttribute, append(slices.Clone(add), stateVersion+strconv.FormatInt(version, 10)))
	return version
}

// checkKey refuses keys that cannot be stored unambiguously.
func checkKey(k provision.Key) error {
	switch {
	case k.IdP == "" || k.Kind == "" || k.Subject == "":
		return fmt.Errorf("ldapdir: %w: empty identity key part", provision.ErrNoKey)
	case strings.ContainsFunc(k.IdP+k.Kind, unicode.IsSpace):
		return fmt.Errorf("ldapdir: %w: the IdP entity ID and key kind may not contain spaces", provision.ErrInvalid)
	}
	return checkValue("key", k.Subject)
}

// checkValue refuses what no directory string can hold.
func checkValue(field, v string) error {
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("ldapdir: %w: %s holds invalid UTF-8 or control characters", provision.ErrInvalid, field)
	}
	return nil
}

// attrSpec says how one LDAP attribute of a user entry is filled.
type attrSpec struct {
	name string
	// from lists fields; the first non-empty one is written.
	from []string
	// derive computes the value instead (AD's userPrincipalName).
	derive func(u *provision.User) string
	// createOnly attributes are written when the entry is added and never
	// changed (AD's sAMAccountName).
	createOnly bool
	rdn        bool
}

// layout is the compiled form of a Config: how users map to entries.
type layout struct {
	cfg       Config
	rdnAttr   string
	rdnField  string
	specs     []attrSpec
	readFrom  map[string]string // field -> attribute it is read from
	userBase  *ldap.DN
	groupBase *ldap.DN
	ad        bool
	// mustMember: groups of this class may not be empty (OpenLDAP's
	// groupOfNames has MUST member; 389 DS made it MAY).
	mustMember bool
	// now is the Store's clock (finishable).
	now func() time.Time
}

func newLayout(c Config) (*layout, error) {
	m := rdnForm.FindStringSubmatch(c.RDN)
	if m == nil {
		return nil, fmt.Errorf("rdn: invalid %q", c.RDN)
	}
	l := &layout{cfg: c, rdnAttr: m[1], rdnField: m[2], readFrom: map[string]string{}, ad: c.Profile == ProfileActiveDirectory, now: time.Now}
	l.mustMember = c.Profile == ProfileOpenLDAP && strings.EqualFold(c.GroupObjectClass, "groupOfNames")
	var err error
	if l.userBase, err = ldap.ParseDN(c.UserBase); err != nil {
		return nil, fmt.Errorf("user_base: %w", err)
	}
	if l.groupBase, err = ldap.ParseDN(c.GroupBase); err != nil {
		return nil, fmt.Errorf("group_base: %w", err)
	}
	add := func(s attrSpec) {
		for i := range l.specs {
			if strings.EqualFold(l.specs[i].name, s.name) {
				// An attribute both mapped and required: keep the mapped
				// field first, the fallbacks after it.
				l.specs[i].from = slices.Compact(append(l.specs[i].from, s.from...))
				l.specs[i].rdn = l.specs[i].rdn || s.rdn
				return
			}
		}
		l.specs = append(l.specs, s)
	}
	add(attrSpec{name: l.rdnAttr, from: []string{l.rdnField}, rdn: true})
	l.readFrom[l.rdnField] = l.rdnAttr
	for _, field := range slices.Sorted(maps.Keys(c.Attributes)) {
		attr := c.Attributes[field]
		add(attrSpec{name: attr, from: []string{field}})
		l.readFrom[field] = attr
	}
	if l.ad {
		// userPrincipalName is written once, like sAMAccountName: an
		// administrator may change it, and a login must not change it back.
		add(attrSpec{name: "userPrincipalName", derive: func(u *provision.User) string { return upn(u.UserName, c.UPNSuffix) }, createOnly: true})
		add(attrSpec{name: "sAMAccountName", derive: func(u *provision.User) string { return samAccountName(u.UserName) }, createOnly: true})
	} else if slices.ContainsFunc(c.UserObjectClasses, func(s string) bool {
		return strings.EqualFold(s, "person") || strings.EqualFold(s, "inetOrgPerson")
	}) {
		// person requires cn and sn: fill them from the closest field.
		add(attrSpec{name: "cn", from: []string{provision.FieldDisplayName, provision.FieldUserName}})
		add(attrSpec{name: "sn", from: []string{provision.FieldFamilyName, provision.FieldUserName}})
	}
	return l, nil
}

func (s attrSpec) value(u *provision.User) string {
	if s.derive != nil {
		return s.derive(u)
	}
	for _, f := range s.from {
		if v := u.Field(f); v != "" {
			return v
		}
	}
	return ""
}

// dn is the DN a new entry for u gets: the RDN value escaped, under user_base.
func (l *layout) dn(u *provision.User) string {
	return l.rdnAttr + "=" + escapeRDNValue(u.Field(l.rdnField)) + "," + l.cfg.UserBase
}

// escapeRDNValue escapes an attribute value for an RDN. RFC 4514 lets "="
// stand unescaped in a value, and OpenLDAP takes it so; Active Directory
// refuses such a DN as invalid syntax (34). Escaped, every directory
// takes it, and it parses back to the same value.
func escapeRDNValue(v string) string {
	return strings.ReplaceAll(ldap.EscapeDN(v), "=", `\=`)
}

// userAttributes lists what a user search must return.
func (l *layout) userAttributes() []string {
	a := []string{"objectClass", l.cfg.StateAttribute, l.anchorAttr(), l.createdAttr(), l.modifiedAttr()}
	for _, s := range l.specs {
		a = append(a, s.name)
	}
	if l.cfg.MemberOfAttribute != "none" {
		a = append(a, l.cfg.MemberOfAttribute)
	}
	if l.ad {
		a = append(a, "userAccountControl", "adminCount", "isCriticalSystemObject", "primaryGroupID")
	} else {
		a = append(a, l.cfg.DisabledAttribute)
	}
	return a
}

func (l *layout) anchorAttr() string {
	if l.ad {
		return "objectGUID"
	}
	return "entryUUID"
}

func (l *layout) createdAttr() string {
	if l.ad {
		return "whenCreated"
	}
	return "createTimestamp"
}

func (l *layout) modifiedAttr() string {
	if l.ad {
		return "whenChanged"
	}
	return "modifyTimestamp"
}

// anchorFilter is the search filter for a user ID, or false when id
// cannot be an anchor at all.
func (l *layout) anchorFilter(id string) (string, bool) {
	if l.ad {
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 16 {
			return "", false
		}
		var f strings.Builder
		f.WriteString("(objectGUID=")
		for _, c := range b {
			fmt.Fprintf(&f, `\%02x`, c)
		}
		f.WriteString(")")
		return f.String(), true
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != strings.ToLower(id) {
		return "", false
	}
	return "(entryUUID=" + ldap.EscapeFilter(u.String()) + ")", true
}

// id reads the anchor of an entry: objectGUID as hex of its raw bytes
// (not AD's byte-swapped text form), entryUUID as it is.
func (l *layout) id(e *ldap.Entry) string {
	if l.ad {
		return hex.EncodeToString(e.GetRawAttributeValue("objectGUID"))
	}
	return strings.ToLower(e.GetAttributeValue("entryUUID"))
}

// user decodes an entry; groups are filled separately.
func (l *layout) user(e *ldap.Entry, st state) provision.User {
	u := provision.User{ID: l.id(e), Version: st.version, Active: !l.disabled(e, st), Owner: provision.OwnerJIT}
	if st.scim {
		u.Owner = provision.OwnerSCIM
	}
	u.SCIMFields = st.SCIMFields()
	for field, attr := range l.readFrom {
		u.SetField(field, e.GetEqualFoldAttributeValue(attr))
	}
	u.Created = parseTime(e.GetEqualFoldAttributeValue(l.createdAttr()))
	u.Updated = parseTime(e.GetEqualFoldAttributeValue(l.modifiedAttr()))
	return u
}

func parseTime(s string) time.Time {
	for _, layout := range []string{"20060102150405Z0700", "20060102150405.0Z0700", "20060102150405.000000Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// AD userAccountControl bits.
const (
	uacDisabled      = 0x2
	uacNormalAccount = 0x200
)

// disabled reports an account that logins must refuse. An AD account
// that gatehouse created disabled and has not finished enabling is not
// refused while a login may finish it (finishable).
func (l *layout) disabled(e *ldap.Entry, st state) bool {
	if l.ad {
		uac, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue("userAccountControl"), 10, 64)
		return uac&uacDisabled != 0 && !l.finishable(e, st)
	}
	for _, v := range e.GetEqualFoldAttributeValues(l.cfg.DisabledAttribute) {
		if strings.EqualFold(v, l.cfg.DisabledValue) {
			return true
		}
	}
	return false
}

// pendingWindow is how long after its creation an AD account that
// gatehouse created disabled may still be enabled by a login. The window
// covers a creating login cut off between its two steps, and the clock
// difference between gatehouse and the domain controller.
const pendingWindow = 15 * time.Minute

// pendingUAC is the userAccountControl of an account created disabled,
// waiting for its password and enable step.
const pendingUAC = uacNormalAccount | uacDisabled

// finishable reports whether a login may finish enabling an AD account:
// gatehouse created it disabled (the pending mark), less than
// pendingWindow ago, and its userAccountControl is still the one
// gatehouse wrote. An account past the window, or whose flags someone
// else set, is an administrator's: it stays as it is (disabled, or
// enabled by them), and no login sets its password or enables it.
func (l *layout) finishable(e *ldap.Entry, st state) bool {
	if !l.ad || !st.pending || e.GetEqualFoldAttributeValue("userAccountControl") != strconv.Itoa(pendingUAC) {
		return false
	}
	created := parseTime(e.GetEqualFoldAttributeValue(l.createdAttr()))
	return !created.IsZero() && l.now().Sub(created) < pendingWindow
}

// addRequest builds the entry of a new user. It carries everything the
// user needs in one operation, so that a failure leaves nothing behind.
func (l *layout) addRequest(u *provision.User, key provision.Key, groups []string, source string) (*ldap.AddRequest, error) {
	req := ldap.NewAddRequest(l.dn(u), nil)
	classes := slices.Clone(l.cfg.UserObjectClasses)
	if l.cfg.StateObjectClass != "" {
		classes = append(classes, l.cfg.StateObjectClass)
	}
	req.Attribute("objectClass", classes)
	for _, s := range l.specs {
		v := s.value(u)
		if v == "" {
			continue
		}
		if err := l.checkAttr(s, v); err != nil {
			return nil, err
		}
		req.Attribute(s.name, []string{v})
	}
	st := []string{keyValue(key), stateVersion + "1", nameValue(u.UserName)}
	if key == (provision.Key{}) {
		// Created over SCIM, with no login yet: SCIM wrote u.SCIMFields.
		fields, _ := state{}.scimFieldsChange(u.SCIMFields)
		st = append([]string{stateVersion + "1", stateOwner, nameValue(u.UserName)}, fields...)
	}
	for _, g := range groups {
		st = append(st, groupValue(source, provision.NormalizeName(g)))
	}
	if l.ad {
		uac := uacNormalAccount
		if l.cfg.SetRandomPassword {
			// AD takes a password only on an existing entry: add it
			// disabled, then set the password and enable it (enableRequest).
			uac |= uacDisabled
			st = append(st, statePending)
		}
		req.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
	}
	req.Attribute(l.cfg.StateAttribute, st)
	return req, nil
}

// checkNaming refuses a new entry without a value for its RDN, or one
// whose DN is gatehouse's own tombstone entry (AD names users by cn, as
// the tombstone entry is named: a user called gatehouse-tombstones would
// receive the tombstones of deleted users, and take them away with it).
func (l *layout) checkNaming(u *provision.User) error {
	if u.Field(l.rdnField) == "" {
		return fmt.Errorf("ldapdir: %w: %s, which names the entry, is empty", provision.ErrInvalid, l.rdnField)
	}
	if sameDN(l.dn(u), l.tombstoneDN()) {
		return fmt.Errorf("ldapdir: %w: %s %q names the entry gatehouse keeps deleted users' tombstones in", provision.ErrInvalid, l.rdnField, u.Field(l.rdnField))
	}
	return nil
}

// holdable is c without the fields the directory keeps no attribute for:
// a stored user never reads them back, so every login would find them
// changed. (A new entry is built from all of them: AD derives its logon
// names from the user name, which may be mapped to no attribute.)
func (l *layout) holdable(c provision.Claims) provision.Claims {
	var drop []string
	for _, m := range []map[string]string{c.Fields, c.Extra} {
		for f := range m {
			if _, ok := l.readFrom[f]; !ok {
				drop = append(drop, f)
			}
		}
	}
	if len(drop) == 0 {
		return c
	}
	return c.Without(drop)
}

// adCNMax is the most characters Active Directory's cn holds (its
// rangeUpper), counted in UTF-16 code units as AD counts them.
const adCNMax = 64

// adLength is a value's length as Active Directory counts it: UTF-16
// code units (a character outside the Basic Multilingual Plane is two).
func adLength(v string) int {
	n := 0
	for _, r := range v {
		n += utf16.RuneLen(r)
	}
	return n
}

// checkAttr enforces directory limits before the write, not after the
// error.
func (l *layout) checkAttr(s attrSpec, v string) error {
	if l.ad && s.rdn && adLength(v) > adCNMax {
		return fmt.Errorf("ldapdir: %w: %s is longer than Active Directory's %d characters", provision.ErrInvalid, s.name, adCNMax)
	}
	return nil
}

// checkGroups refuses, before anything is written, a group name the
// directory cannot hold: on Active Directory a group is named by its cn,
// at most 64 characters. Every login asserting the group would otherwise
// fail at the group's creation, as an outage.
func (l *layout) checkGroups(groups []string) error {
	if !l.ad {
		return nil
	}
	for _, g := range groups {
		if adLength(g) > adCNMax {
			return fmt.Errorf("ldapdir: %w: group name %q is longer than Active Directory's %d characters (a group's cn)", provision.ErrInvalid, g, adCNMax)
		}
	}
	return nil
}

// enableRequest finishes an AD account created disabled: a random
// password nobody knows, then the enabled flag (unless active is false:
// a user SCIM creates inactive stays disabled), in one modify. The flags
// are swapped from the value read (uac), so that a change someone made
// since fails the modify (noSuchAttribute) instead of being overwritten.
func (l *layout) enableRequest(dn string, uac int64, password string, active bool) *ldap.ModifyRequest {
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("unicodePwd", []string{encodeADPassword(password)})
	if active {
		req.Delete("userAccountControl", []string{strconv.FormatInt(uac, 10)})
		req.Add("userAccountControl", []string{strconv.FormatInt(uac&^uacDisabled|uacNormalAccount, 10)})
	}
	req.Delete(l.cfg.StateAttribute, []string{statePending})
	return req
}

// encodeADPassword is AD's unicodePwd form: the password in double quotes,
// UTF-16 little-endian.
func encodeADPassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i], b[2*i+1] = byte(r), byte(r>>8)
	}
	return string(b)
}

// upn is the userPrincipalName for a user name: name@suffix, or the user
// name itself when it holds an "@". A UPN is a logon name, and Active
// Directory expects its prefix to be one word: a prefix with a space or
// another character a logon name may not hold gets those replaced by "_"
// and a hash of the full user name appended, as sAMAccountName does, so
// that two names that differ only there keep different UPNs.
func upn(userName, suffix string) string {
	if userName == "" {
		return ""
	}
	local, domain := userName, suffix
	if i := strings.LastIndex(userName, "@"); i >= 0 {
		local, domain = userName[:i], userName[i+1:]
	}
	clean := logonClean(upnForbidden, local)
	if clean != local || strings.ContainsFunc(domain, unicode.IsSpace) {
		sum := sha256.Sum256([]byte(userName))
		clean += "-" + hex.EncodeToString(sum[:])[:5]
		domain = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, domain)
	}
	return clean + "@" + domain
}

// upnForbidden are the characters a UPN prefix may not hold: spaces and
// the characters Windows refuses in logon names.
var upnForbidden = samForbidden

// samForbidden adds "$" to what AD forbids: a logon name ending in "$"
// is a computer account's, and names that mimic one are how the
// sAMAccountName spoofing attacks (CVE-2021-42278) begin.
var samForbidden = regexp.MustCompile(`["/\\\[\]:;|=,+*?<>@\s$]`)

// samAccountName derives AD's pre-Windows 2000 logon name: at most 20
// characters, none of "/\[]:;|=,+*?<>, no spaces. A name that fits is used
// as it is; any other is shortened and given a hash of the full user name,
// so two names that shorten alike still differ.
func samAccountName(userName string) string {
	local, _, _ := strings.Cut(userName, "@")
	clean := logonClean(samForbidden, local)
	clean = strings.TrimRight(clean, ".") // a trailing dot is not allowed either
	if clean == local && clean != "" && utf8.RuneCountInString(clean) <= 20 && !strings.Contains(userName, "@") {
		return clean
	}
	return hashedSAM(clean, userName)
}

// logonClean replaces the characters of s that forbidden matches, and
// every Unicode space, with "_".
func logonClean(forbidden *regexp.Regexp, s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, forbidden.ReplaceAllString(s, "_"))
}

// hashedSAM shortens clean and appends a hash of full: at most 20
// characters.
func hashedSAM(clean, full string) string {
	sum := sha256.Sum256([]byte(full))
	suffix := "-" + hex.EncodeToString(sum[:])[:5]
	r := []rune(clean)
	if len(r) > 20-len(suffix) {
		r = r[:20-len(suffix)]
	}
	return strings.TrimRight(string(r), ".") + suffix
}

// groupSAMAlternative is the sAMAccountName a new group gets when the
// one samAccountName derives from its name is held elsewhere in the
// domain: AD keeps sAMAccountName unique across users, groups and
// computers of the whole domain, so a group named like a user ("alice"),
// or like a built-in group ("Users"), cannot have it. gatehouse names and
// finds groups by cn; their sAMAccountName is only a name AD requires.
func groupSAMAlternative(name string) string {
	local, _, _ := strings.Cut(name, "@")
	clean := strings.TrimRight(logonClean(samForbidden, local), ".")
	return hashedSAM(clean, "group\x00"+name)
}

// diffAttributes compares the wanted user with the entry and returns the
// replace and delete operations for the attributes that differ, and the
// fields they belong to. Only attributes fed by the fields in touched are
// compared, so an attribute the login did not assert is never rewritten.
func (l *layout) diffAttributes(e *ldap.Entry, want *provision.User, touched map[string]bool) (changes []ldap.Change, fields map[string]bool, err error) {
	fields = map[string]bool{}
	for _, s := range l.specs {
		if s.createOnly || s.rdn {
			continue // the RDN changes through ModifyDN
		}
		relevant := false
		for _, f := range s.from {
			relevant = relevant || touched[f]
		}
		if s.derive != nil {
			relevant = touched[provision.FieldUserName]
		}
		if !relevant {
			continue
		}
		v := s.value(want)
		have := e.GetEqualFoldAttributeValues(s.name)
		switch {
		case v == "" && len(have) > 0:
			changes = append(changes, ldap.Change{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: s.name}})
		case v != "" && (len(have) != 1 || have[0] != v):
			if err := l.checkAttr(s, v); err != nil {
				return nil, nil, err
			}
			changes = append(changes, ldap.Change{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: s.name, Vals: []string{v}}})
		default:
			continue
		}
		for _, f := range s.from {
			if touched[f] {
				fields[f] = true
				break
			}
		}
		if s.derive != nil {
			fields[provision.FieldUserName] = true
		}
	}
	return changes, fields, nil
}

var errNoEntry = errors.New("ldapdir: entry vanished")

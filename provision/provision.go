package provision

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Stores wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no user matches.
	ErrNotFound = errors.New("provision: not found")
	// ErrConflict: the user name is already held by another user.
	ErrConflict = errors.New("provision: conflict")
	// ErrDisabled: the user exists but is deactivated; a login must not
	// proceed and must not re-enable it.
	ErrDisabled = errors.New("provision: user disabled")
	// ErrNoKey: the login carries no stable key (for example a transient
	// NameID without a configured key attribute), so no account may be
	// created or matched.
	ErrNoKey = errors.New("provision: no stable identity key")
	// ErrInvalid: the mapped attributes are not acceptable (control
	// characters, invalid UTF-8, oversized values, missing user name).
	ErrInvalid = errors.New("provision: invalid attributes")
)

// Store is a user directory that logins (and SCIM) write to. Every backend
// passes the storetest conformance suite.
type Store interface {
	// Provision performs the JIT upsert for one login: create the user on
	// first login, update changed fields later, write nothing when nothing
	// changed. A deactivated user yields ErrDisabled and is left as is.
	Provision(ctx context.Context, l Login) (Result, error)
	// User returns the user with the given ID.
	User(ctx context.Context, id string) (User, error)
	// SetActive activates or deactivates a user.
	SetActive(ctx context.Context, id string, active bool) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// User is a provisioned user record.
type User struct {
	ID          string
	UserName    string
	ExternalID  string // the provisioning client's ID for the user; case-sensitive
	Email       string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Extra holds additional mapped attributes by configured name.
	Extra map[string]string
	// Groups are the names of every group the user belongs to, whatever
	// the source of the membership, sorted.
	Groups []string
	Active bool
	// Owner is OwnerJIT or OwnerSCIM.
	Owner string
	// SCIMFields names the fields SCIM has written to this user, sorted
	// (AllFields: every field). A login leaves alone those of them that
	// Login.Reserved names; it writes every other field it asserts.
	SCIMFields []string
	// Version increases by one on every write to the user.
	Version int64
	Created time.Time
	Updated time.Time
}

// Key identifies a user at one identity provider. It is the JIT match key:
// never the e-mail address.
type Key struct {
	IdP     string // the IdP's entity ID
	Kind    string // "nameid" or "attr:<SAML attribute name>"
	Subject string // exact, case-sensitive
}

// Login is the input of one JIT upsert.
type Login struct {
	Key    Key
	Claims Claims
	// NoCreate refuses to create a user that does not exist yet
	// (ErrNotFound) while still updating existing ones.
	NoCreate bool
	// LinkBy, when FieldUserName or FieldExternalID, lets the first login
	// of an unknown key claim a SCIM-owned user that no login has claimed
	// yet and whose field of that name equals the asserted one, instead of
	// creating a second user.
	LinkBy string
	// Reserved names the fields SCIM may own: a login leaves such a field
	// alone once SCIM has written it (User.SCIMFields), and reports it in
	// Result.Kept.
	Reserved []string
}

// Outcome says what a Provision call did.
type Outcome string

const (
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Unchanged Outcome = "unchanged"
	// Linked: the first login of a key claimed a user created over SCIM
	// (see Login.LinkBy); Changed lists the fields it also wrote.
	Linked Outcome = "linked"
)

// Result is what Provision returns on success.
type Result struct {
	User    User
	Outcome Outcome
	// Changed names the fields that were written, in a stable order
	// ("groups" when memberships changed). Empty when Outcome is Unchanged.
	Changed []string
	// Kept names the asserted fields the login left alone although their
	// value differs from the stored one, and why (see Decide).
	Kept []Kept
}

// Planner is an optional capability of a Store: what Provision would do
// for a login (the outcome, the fields it would write, the user as it
// would be, or the error it would return), reading only.
type Planner interface {
	Plan(ctx context.Context, l Login) (Result, error)
}

// GroupSource is the membership source a JIT login from idp records. Each
// source removes only memberships it created.
func GroupSource(idp string) string { return "jit:" + idp }

package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// ErrVersion: a conditional write found the record at another version
// than the caller read (a SCIM If-Match mismatch, or a concurrent writer).
var ErrVersion = errors.New("provision: version mismatch")

// CheckVersion is the rule of conditional writes: want 0 accepts any
// version; otherwise the stored version must equal it (ErrVersion).
func CheckVersion(what string, have, want int64) error {
	if want != 0 && have != want {
		return fmt.Errorf("%s is at version %d, not %d: %w", what, have, want, ErrVersion)
	}
	return nil
}

// ErrUnsupported: the store cannot hold the field, or cannot evaluate the
// filter or sort it was asked for. Callers answer it as a bad request,
// never by filtering in memory.
var ErrUnsupported = errors.New("provision: not supported by this store")

// ErrTooMany: a query would cost more than the store allows: it ran past
// the store's time bound. Callers answer it as a request to narrow the
// query (SCIM's tooMany), not as an outage.
var ErrTooMany = errors.New("provision: the query reads more than the store allows")

// Who last took ownership of a user record. A user created or written over
// SCIM is owned by SCIM, and only SCIM may change its active state; a
// login leaves alone only the fields SCIM has written (User.SCIMFields,
// Login.Reserved), and writes the others.
const (
	OwnerJIT  = "jit"
	OwnerSCIM = "scim"
)

// SCIMSource is the membership source of memberships written over SCIM.
const SCIMSource = "scim"

// Directory is the optional capability of a Store that SCIM needs: query,
// create, replace and delete users by ID. Every write is conditional on the
// version the caller read, so a read-modify-write never loses a concurrent
// update.
type Directory interface {
	Store
	// Supports reports whether the store can hold a field (core or extra
	// name). Writes of unsupported fields are dropped by the caller.
	Supports(field string) bool
	// FindUsers runs a query; the filter is evaluated by the store.
	FindUsers(ctx context.Context, q Query) (Page[User], error)
	// CreateUser stores a new user owned by SCIM and returns it with its
	// ID, version and timestamps. ErrConflict when the user name is taken
	// (case-insensitively). It lifts any tombstone left for that user name
	// or external ID.
	CreateUser(ctx context.Context, u User) (User, error)
	// ReplaceUser writes every field of u (u.ID names the user) when the
	// stored version equals ifVersion (0: unconditional); ErrVersion
	// otherwise. Groups are not touched. Writing nothing new is not a write.
	ReplaceUser(ctx context.Context, u User, ifVersion int64) (User, error)
	// DeleteUser removes the user and its memberships, and leaves a
	// tombstone so that no login re-creates it.
	DeleteUser(ctx context.Context, id string, ifVersion int64) error
}

// Importer is the optional capability of loading users in bulk, as an
// operator moving an application's users in does. Each user is created,
// or the user holding the same user name (case-insensitively) replaced,
// exactly as SCIM's create and replace would: the same checks, ownership,
// tombstone lifting and timestamps. A user that would not change is not
// written, so an import can be run again. One call is one batch, written
// in one transaction; a user the store refuses gets its own error and the
// rest of the batch is still written.
type Importer interface {
	ImportUsers(ctx context.Context, users []User) ([]Imported, error)
}

// Imported is what an import did with one user of a batch.
type Imported struct {
	Action Action // ActCreate, ActUpdate or ActNothing; "" when Err is set
	ID     string
	Err    error
}

// GroupDirectory is the optional capability of managing groups over SCIM.
// Members written here carry the membership source SCIMSource; SCIM can
// only remove the memberships it made, as each login source can only
// remove its own.
type GroupDirectory interface {
	FindGroups(ctx context.Context, q Query) (Page[Group], error)
	Group(ctx context.Context, id string, members bool) (Group, error)
	// CreateGroup creates a group; ErrConflict when the name is taken.
	// Unknown member IDs are ErrInvalid.
	CreateGroup(ctx context.Context, g Group) (Group, error)
	// UpdateGroup applies a change when the stored version equals
	// ifVersion (0: unconditional), and returns the group as it is then:
	// with its members only when c.Members asks for them, so that adding
	// or removing a few members costs the same in a group of any size.
	UpdateGroup(ctx context.Context, id string, c GroupChange, ifVersion int64) (Group, error)
	DeleteGroup(ctx context.Context, id string, ifVersion int64) error
}

// Group is a group of users.
type Group struct {
	ID         string
	Name       string
	ExternalID string
	// Members lists every member whatever the membership source, sorted
	// by user ID; nil when not requested.
	Members []Member
	Version int64
	Created time.Time
	Updated time.Time
}

// Member is one user in a group.
type Member struct {
	UserID   string
	UserName string
}

// GroupChange is an update of a group. Nil fields are left as they are.
type GroupChange struct {
	Name       *string
	ExternalID *string
	// Add and Remove list user IDs; only memberships of SCIMSource are
	// removed.
	Add, Remove []string
	// Members asks UpdateGroup to return the member list. Without it the
	// returned group's Members is nil and the store reads no member list.
	Members bool
}

// Page is one page of a query's results.
type Page[T any] struct {
	Items []T
	// Total counts every match, not just this page.
	Total int
}

// Query selects, orders and pages records.
type Query struct {
	Filter Filter // nil: everything
	// SortBy names a field; empty sorts by ID. Ties are broken by ID, so
	// pages are stable.
	SortBy     string
	SortFold   bool // sort case-insensitively
	Descending bool
	Offset     int // zero-based
	Limit      int // 0: count only
	// Members asks group queries to load member lists.
	Members bool
	// Walk names who reads the pages (an opaque key: a SCIM client).
	// When set, a page in ID order that follows the same caller's page
	// before it, of the same query and size, continues after that page's
	// last record instead of counting its position again: a caller
	// walking every page reads each record once, and another caller's
	// walk never moves it. Empty: every page is found by position.
	Walk string
}

// Pseudo-fields a filter or sort may name besides core and extra fields.
const (
	FieldID      = "id"
	FieldActive  = "active"  // values "true" / "false"
	FieldCreated = "created" // values RFC 3339
	FieldUpdated = "updated"
	FieldName    = "name"   // groups: the display name
	FieldMember  = "member" // groups: a member's user ID
)

// Filter is a query predicate: one of Compare, And, Or, Not.
type Filter interface{ isFilter() }

// Op is a comparison operator.
type Op string

// Comparison operators, as SCIM names them.
const (
	OpEq      Op = "eq"
	OpNe      Op = "ne"
	OpCo      Op = "co"
	OpSw      Op = "sw"
	OpEw      Op = "ew"
	OpPresent Op = "pr"
	OpGt      Op = "gt"
	OpGe      Op = "ge"
	OpLt      Op = "lt"
	OpLe      Op = "le"
)

// Compare tests one field. Fold compares case-insensitively (both sides
// through NormalizeName); otherwise the comparison is exact. A missing
// value compares as "": pr does not match it, ne does. gt/ge/lt/le
// compare strings in code point order and timestamps in time order;
// active takes only eq and ne.
type Compare struct {
	Field string
	Op    Op
	Value string
	Fold  bool
}

type (
	And []Filter
	Or  []Filter
	Not struct{ Filter Filter }
)

func (Compare) isFilter() {}
func (And) isFilter()     {}
func (Or) isFilter()      {}
func (Not) isFilter()     {}

// Without returns c without the named fields, for a login on a user whose
// fields SCIM owns.
func (c Claims) Without(fields []string) Claims {
	out := c
	out.Fields, out.Extra = maps.Clone(c.Fields), maps.Clone(c.Extra)
	for _, f := range fields {
		delete(out.Fields, f)
		delete(out.Extra, f)
	}
	return out
}

package provision

import (
	"fmt"
	"maps"
	"slices"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The JIT decision lives here, once. A store reads what one login needs
// into a Found, asks Decide what to do, and carries out the Plan; explain's
// preview asks the same function and writes nothing. Stores differ only in
// how they read and write, never in what a login may do.

// Found is what a store read for one login.
type Found struct {
	// User is the user the login's key names; nil when none does.
	User *User
	// Groups are User's memberships of the login's source (GroupSource):
	// normalised name -> name.
	Groups map[string]string
	// Tombstoned: the login's key, user name or external ID belonged to a
	// user deleted over SCIM. Read only when User is nil.
	Tombstoned bool
	// Link is the one user the login may claim by Login.LinkBy (one no
	// login has claimed yet), LinkGroups its memberships of the login's
	// source; nil when there is none. Read only when User is nil.
	Link       *User
	LinkGroups map[string]string
	// NameTaken: another user already holds the login's user name, as
	// NormalizeName folds it. A store whose unique index refuses the
	// create instead may leave it false.
	NameTaken bool
}

// Action is what a plan does to the store.
type Action string

const (
	ActNothing Action = "nothing" // a repeat login with nothing new: no write at all
	ActCreate  Action = "create"
	ActUpdate  Action = "update"
	// ActLink records the login's key on Found.Link, and writes what
	// differs as an update does.
	ActLink Action = "link"
)

// Plan is the decision for one login.
type Plan struct {
	Action Action
	// Before is the stored user (zero for a create); After is the user as
	// the plan leaves it. After.Groups lists every membership, of any
	// source, as far as the store's read showed them.
	Before, After User
	// Claims are what the login writes: its claims without the fields it
	// leaves alone (Kept).
	Claims Claims
	// Changed names the fields the plan writes, core fields first, then
	// extra attributes, then FieldGroups when memberships change.
	Changed []string
	// AddGroups are names of groups to join in the login's source;
	// DropGroups are normalised names of the source's memberships to end.
	AddGroups, DropGroups []string
	// Kept names each field the login asserted with another value than
	// the stored one and leaves alone, and why.
	Kept []Kept
}

// Kept is a field a login left alone.
type Kept struct {
	Field  string
	Reason string
}

// Reasons a login leaves a field alone.
const (
	// KeptSCIM: SCIM has written the field, and the field is one SCIM
	// owns (Login.Reserved).
	KeptSCIM = "owned by SCIM"
)

func (k Kept) String() string { return k.Field + " (" + k.Reason + ")" }

// AllFields in User.SCIMFields stands for every field: users that SCIM
// wrote before gatehouse recorded which fields it wrote.
const AllFields = "*"

// Decide is the JIT rule: find by key; when none, refuse a key deleted
// over SCIM, else link to the one user LinkBy names (by user name only
// when spelled alike but for case), else create unless NoCreate; refuse a deactivated user; otherwise write what differs,
// leaving alone the fields SCIM owns. It reads nothing and writes nothing.
func Decide(l Login, f Found) (Plan, error) {
	target, groups, act := f.User, f.Groups, ActUpdate
	if target == nil {
		if f.Tombstoned {
			return Plan{}, fmt.Errorf("the user for %s %q was deleted over SCIM: %w", l.Key.Kind, l.Key.Subject, ErrDisabled)
		}
		if f.Link != nil {
			// A link hands the login someone's account: the names must be
			// the same but for letter case. One that only folds alike
			// ("Àlice" for "alice") is another name that collides.
			if name := l.Claims.Fields[FieldUserName]; l.LinkBy == LinkByUserName && !SameSpelling(name, f.Link.UserName) {
				return Plan{}, fmt.Errorf("user name %q folds like %q of user %s but is spelled otherwise: not linked: %w",
					name, f.Link.UserName, f.Link.ID, ErrConflict)
			}
			target, groups, act = f.Link, f.LinkGroups, ActLink
		}
	}
	if target == nil {
		if l.NoCreate {
			return Plan{}, fmt.Errorf("no user for %s %q, and this IdP may not create one: %w", l.Key.Kind, l.Key.Subject, ErrNotFound)
		}
		if f.NameTaken {
			return Plan{}, fmt.Errorf("user name %q is taken by another user: %w", l.Claims.Fields[FieldUserName], ErrConflict)
		}
		return decideCreate(l)
	}
	p := Plan{Action: act, Before: *target}
	p.Before.Extra = maps.Clone(target.Extra)
	if !target.Active {
		p.After = p.Before
		return p, fmt.Errorf("user %s is deactivated: %w", target.ID, ErrDisabled)
	}
	p.Claims, p.Kept = keep(*target, l)
	p.After = p.Before
	p.After.Extra = maps.Clone(target.Extra)
	p.Changed = p.After.Apply(p.Claims)
	if p.Claims.HasGroups {
		want := map[string]string{}
		for _, g := range p.Claims.Groups {
			if n := NormalizeName(g); want[n] == "" {
				want[n] = g
			}
		}
		add, drop := DiffGroups(slices.Sorted(maps.Keys(groups)), slices.Sorted(maps.Keys(want)))
		for _, n := range add {
			p.AddGroups = append(p.AddGroups, want[n])
		}
		p.DropGroups = drop
		if len(add)+len(drop) > 0 {
			p.Changed = append(p.Changed, FieldGroups)
			p.After.Groups = mergeGroups(target.Groups, p.AddGroups, drop)
		}
	}
	if len(p.Changed) == 0 && act == ActUpdate {
		p.Action = ActNothing
	}
	return p, nil
}

// SameSpelling reports whether two names are spelled alike but for
// letter case: equal once in NFC (one encoding of each accented letter)
// and then lower-cased, and equal upper-cased as well. Unicode's case
// folding is looser: it also equates letters that are both lower case
// but different (long s and s, Greek theta and its symbol form,
// Cyrillic letter variants), and lower-casing alone equates the Turkish
// dotted capital I with i: neither is a case difference.
func SameSpelling(a, b string) bool {
	ra, rb := []rune(norm.NFC.String(a)), []rune(norm.NFC.String(b))
	if len(ra) != len(rb) {
		return false
	}
	for i, r := range ra {
		if unicode.ToLower(r) != unicode.ToLower(rb[i]) || unicode.ToUpper(r) != unicode.ToUpper(rb[i]) {
			return false
		}
	}
	return true
}

func decideCreate(l Login) (Plan, error) {
	p := Plan{Action: ActCreate, Claims: l.Claims}
	u := User{Active: true, Owner: OwnerJIT, Version: 1}
	p.Changed = u.Apply(l.Claims)
	if u.UserName == "" {
		return Plan{}, fmt.Errorf("%w: empty user name", ErrInvalid)
	}
	p.AddGroups = mergeGroups(nil, l.Claims.Groups, nil)
	if len(p.AddGroups) > 0 {
		u.Groups = p.AddGroups
		p.Changed = append(p.Changed, FieldGroups)
	}
	p.After = u
	return p, nil
}

// keep returns the claims a login writes to u, and the asserted fields it
// leaves alone because SCIM owns them.
func keep(u User, l Login) (Claims, []Kept) {
	owned := func(field string) bool {
		return slices.Contains(l.Reserved, field) &&
			(slices.Contains(u.SCIMFields, field) || slices.Contains(u.SCIMFields, AllFields))
	}
	var drop []string
	var kept []Kept
	for _, name := range coreFields {
		if v, ok := l.Claims.Fields[name]; ok && owned(name) {
			drop = append(drop, name)
			if u.Field(name) != v {
				kept = append(kept, Kept{name, KeptSCIM})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.Claims.Extra)) {
		if owned(name) {
			drop = append(drop, name)
			if u.Field(name) != l.Claims.Extra[name] {
				kept = append(kept, Kept{name, KeptSCIM})
			}
		}
	}
	if len(drop) == 0 {
		return l.Claims, nil
	}
	return l.Claims.Without(drop), kept
}

// mergeGroups is the membership list after a source joins add (names)
// and leaves drop (normalised names); memberships of other sources stay.
func mergeGroups(have, add, drop []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range have {
		if n := NormalizeName(g); !slices.Contains(drop, n) {
			out, seen[n] = append(out, g), true
		}
	}
	for _, g := range add {
		if n := NormalizeName(g); !seen[n] {
			out, seen[n] = append(out, g), true
		}
	}
	return SortedUnique(out)
}

// Result is what the plan reports once carried out as decided.
func (p Plan) Result() Result {
	r := Result{User: p.After, Changed: p.Changed, Kept: p.Kept}
	switch p.Action {
	case ActCreate:
		r.Outcome = Created
	case ActLink:
		r.Outcome = Linked
	case ActUpdate:
		r.Outcome = Updated
	default:
		r.Outcome, r.User, r.Changed = Unchanged, p.Before, nil
	}
	return r
}

// Kept lists the kept fields as an audit line shows them:
// "email (owned by SCIM)".
func (r Result) KeptNames() []string {
	var out []string
	for _, k := range r.Kept {
		out = append(out, k.String())
	}
	return out
}

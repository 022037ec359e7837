package sqldir

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse/provision"
	"strings"
	"time"
)

// record is a user as stored, with the memberships of the login's source.
type record struct {
	user      provision.User
	srcGroups map[string]string // normalised name -> name, for one source
}

const userColumns = `u.id, u.user_name, u.external_id, u.email, u.display_name, u.given_name, u.family_name, u.extra, u.status, u.owner, u.scim_fields, u.version, u.created_at, u.updated_at`

func scanUser(row interface{ Scan(...any) error }) (provision.User, error) {
	var u provision.User
	var extra, status, scimFields string
	err := row.Scan(&u.ID, &u.UserName, &u.ExternalID, &u.Email, &u.DisplayName, &u.GivenName, &u.FamilyName, &extra, &status, &u.Owner, &scimFields, &u.Version,
		timeScan{&u.Created}, timeScan{&u.Updated})
	if err != nil {
		return u, err
	}
	if extra != "" && extra != "{}" {
		if err := json.Unmarshal([]byte(extra), &u.Extra); err != nil {
			return u, fmt.Errorf("extra attributes of user %s: %w", u.ID, err)
		}
	}
	u.Active = status == "active"
	u.SCIMFields = decodeFields(scimFields)
	return u, nil
}

// encodeFields stores a list of field names as one text value: sorted,
// comma-separated (field names never hold a comma).
func encodeFields(fields []string) string {
	return strings.Join(provision.SortedUnique(fields), ",")
}

func decodeFields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// timeScan reads a timestamp stored as text (SQLite) or as a timestamp
// type (the servers), in UTC.
type timeScan struct{ t *time.Time }

func (s timeScan) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		*s.t = v.UTC()
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", v, err)
		}
		*s.t = t.UTC()
	case []byte:
		return s.Scan(string(v))
	case nil:
		*s.t = time.Time{}
	default:
		return fmt.Errorf("timestamp: unexpected %T", v)
	}
	return nil
}

// load reads a user and its groups; source selects which memberships are
// reported in srcGroups. found is false when no identity matches. lock
// takes the dialect's update locks, for a read that decides a write.
func (s *Store) load(ctx context.Context, q querier, key provision.Key, source string, lock bool) (rec record, found bool, err error) {
	row := q.QueryRowContext(ctx, s.d.loadSQL(lock), key.IdP, key.Kind, key.Subject)
	rec.user, err = scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("sqldir: read user: %w", err)
	}
	rec.user.Groups, rec.srcGroups, err = groupsOf(ctx, q, rec.user.ID, source)
	return rec, err == nil, err
}

func groupsOf(ctx context.Context, q querier, userID, source string) (all []string, src map[string]string, err error) {
	rows, err := q.QueryContext(ctx, groupsSQL, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
	}
	defer rows.Close()
	src = map[string]string{}
	for rows.Next() {
		var name, nameNorm, s string
		if err := rows.Scan(&name, &nameNorm, &s); err != nil {
			return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
		}
		if len(all) == 0 || all[len(all)-1] != name {
			all = append(all, name)
		}
		if s == source {
			src[nameNorm] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
	}
	return all, src, nil
}

// User returns the user with the given ID.
func (s *Store) User(ctx context.Context, id string) (provision.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.user(ctx, s.reader(), id, false)
}

// user reads one user with its groups; lock takes the dialect's update
// locks, for a read that decides a write.
func (s *Store) user(ctx context.Context, q querier, id string, lock bool) (provision.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, s.d.userSQL(lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("sqldir: read user: %w", err)
	}
	u.Groups, _, err = groupsOf(ctx, q, id, "")
	return u, err
}

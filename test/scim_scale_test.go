package test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/provision"
)

// The directory BenchmarkSCIM runs against: the size of issue 18.
const (
	scaleUsers  = 100_000
	scaleLarge  = 10_000 // members of the large group
	scaleSmall  = 10     // members of the small group
	scaleTeams  = 200    // small groups that Entra-style displayName lookups hit
	scaleBatch  = 1_000  // users per import batch, members per group write
	scaleDeltas = 100    // users changed after seeding, for meta.lastModified gt
)

// Names are drawn from syllables so that display names repeat (about ten
// users share one, as in a real directory) while user names, e-mail
// addresses and external IDs are unique.
var (
	scaleGivenA  = []string{"Ad", "Be", "Ca", "Do", "El", "Fr", "Gu", "Hi", "Is", "Jo"}
	scaleGivenB  = []string{"a", "ela", "ric", "mund", "ine", "on", "ette", "o", "aud", "elle"}
	scaleFamilyA = []string{"Mül", "Núñ", "Ber", "Kow", "Ols", "Dub", "Ros", "Tan", "Wil", "Van"}
	scaleFamilyB = []string{"ler", "ez", "nard", "alski", "en", "ois", "si", "aka", "son", "dyke"}
	scaleDepts   = []string{"Engineering", "Sales", "Finance", "Legal", "Support", "Marketing",
		"Operations", "Research", "People", "Security", "Facilities", "Procurement"}
	// scalePairs are 100 two-letter prefixes: two users in five have a
	// user name that starts with one of them, in varied case, so that
	// `userName sw "ab"` matches about 400 users.
	scalePairs = func() []string {
		var out []string
		for _, a := range "abcdefghij" {
			for _, b := range "abcdefghij" {
				out = append(out, string(a)+string(b))
			}
		}
		return out
	}()
)

// scaleCase spells an ASCII word in one of four cases.
func scaleCase(s string, i int) string {
	switch i % 4 {
	case 0:
		return strings.ToLower(s)
	case 1:
		return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
	case 2:
		return strings.ToUpper(s)
	}
	return strings.ToLower(s[:1]) + strings.ToUpper(s[1:])
}

// scaleUser is the i-th user of the directory. The work e-mail is unique
// and in varied case; one user in ten also has a home e-mail.
func scaleUser(i int) provision.User {
	given := scaleGivenA[i%10] + scaleGivenB[(i/10)%10]
	family := scaleFamilyA[(i/100)%10] + scaleFamilyB[(i/1000)%10]
	name := fmt.Sprintf("user-%06d", i)
	if i%5 < 2 {
		name = fmt.Sprintf("%s%s.%06d", scaleCase(scalePairs[(i/5)%len(scalePairs)], i/5/len(scalePairs)), strings.ToLower(scaleGivenB[(i/10)%10]), i)
	}
	email := fmt.Sprintf("user-%06d@example.test", i)
	if i%3 == 0 {
		email = fmt.Sprintf("%s.%06d@Example.TEST", given, i)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "scale-%d", i))
	u := provision.User{
		UserName: name,
		// An Entra object ID: a GUID, compared case-sensitively.
		ExternalID:  fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]),
		Email:       email,
		DisplayName: given + " " + family,
		GivenName:   given,
		FamilyName:  family,
		Extra:       map[string]string{"department": scaleDepts[i%len(scaleDepts)]},
		Active:      i%50 != 0,
	}
	if i%10 == 7 {
		u.Extra["email_home"] = fmt.Sprintf("Home.%06d@mail.example", i)
	}
	return u
}

// scaleSeed stores the users through the store's own API, returning their
// IDs by index: in batches through provision.Importer when the store has
// it, else by CreateUser from 8 goroutines.
func scaleSeed(tb testing.TB, dir provision.Directory, users []provision.User) (ids []string, how string) {
	ctx := context.Background()
	ids = make([]string, len(users))
	if imp, ok := any(dir).(provision.Importer); ok {
		for from := 0; from < len(users); from += scaleBatch {
			to := min(from+scaleBatch, len(users))
			res, err := imp.ImportUsers(ctx, users[from:to])
			if err != nil {
				tb.Fatalf("import users %d-%d: %v", from, to-1, err)
			}
			if len(res) != to-from {
				tb.Fatalf("import users %d-%d: %d results", from, to-1, len(res))
			}
			for k, r := range res {
				if r.Err != nil || r.Action != provision.ActCreate || r.ID == "" {
					tb.Fatalf("import of user %d (%s): action %q, ID %q, error %v", from+k, users[from+k].UserName, r.Action, r.ID, r.Err)
				}
				ids[from+k] = r.ID
			}
		}
		return ids, "import"
	}
	var next atomic.Int64
	var once sync.Once
	var failed error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				u, err := dir.CreateUser(ctx, users[i])
				if err != nil {
					once.Do(func() { failed = fmt.Errorf("create user %d (%s): %w", i, users[i].UserName, err) })
					next.Store(int64(len(users)))
					return
				}
				ids[i] = u.ID
			}
		})
	}
	wg.Wait()
	if failed != nil {
		tb.Fatal(failed)
	}
	return ids, "create"
}

// scaleGroup creates a group holding members, written scaleBatch members
// at a time as a provisioning client adds them.
func scaleGroup(tb testing.TB, gd provision.GroupDirectory, name string, members []string) provision.Group {
	ctx := context.Background()
	first := members[:min(len(members), scaleBatch)]
	in := provision.Group{Name: name}
	for _, id := range first {
		in.Members = append(in.Members, provision.Member{UserID: id})
	}
	g, err := gd.CreateGroup(ctx, in)
	if err != nil {
		tb.Fatalf("create group %s: %v", name, err)
	}
	for from := len(first); from < len(members); from += scaleBatch {
		c := provision.GroupChange{Add: members[from:min(from+scaleBatch, len(members))]}
		if _, err = gd.UpdateGroup(ctx, g.ID, c, 0); err != nil {
			tb.Fatalf("add members %d- to group %s: %v", from, name, err)
		}
	}
	if g, err = gd.Group(ctx, g.ID, true); err != nil {
		tb.Fatalf("read group %s: %v", name, err)
	}
	if len(g.Members) != len(members) {
		tb.Fatalf("group %s has %d members, want %d", name, len(g.Members), len(members))
	}
	return g
}

// scaleTouch changes the department of the given users, as the deltas a
// sync client then asks for with meta.lastModified gt; it returns the time
// just before the first change.
func scaleTouch(tb testing.TB, st provision.Directory, ids []string) time.Time {
	ctx := context.Background()
	// The stamps the queries use lie between the seeding and now.
	time.Sleep(400 * time.Millisecond)
	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	for _, id := range ids {
		u, err := st.User(ctx, id)
		if err != nil {
			tb.Fatalf("read user %s: %v", id, err)
		}
		u.Extra["department"] = "Transferred"
		if _, err := st.ReplaceUser(ctx, u, u.Version); err != nil {
			tb.Fatalf("change user %s: %v", id, err)
		}
	}
	return before
}

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/scim"
)

// importOptions are the flags of gatehouse import.
type importOptions struct {
	config, format, input string
	batch                 int
}

// importRecord is one user of the input: its first line and its JSON
// resource, or why it could not be read.
type importRecord struct {
	line int
	body []byte
	err  error
}

// maxBatchBytes ends a batch early when its resources reach it, so that
// a batch of large resources is not held whole (500 of 1 MiB each).
const maxBatchBytes = 32 << 20

// importCounts is what an import did so far.
type importCounts struct {
	done, created, updated, unchanged, failed int
}

// importer carries one run of gatehouse import.
type importer struct {
	sc       *scim.Server
	dir      provision.Directory
	bulk     provision.Importer // nil: user by user (LDAP)
	stderr   io.Writer
	counts   importCounts
	started  time.Time
	progress *progress
}

// importCommand runs gatehouse import and returns the exit status: 0 when
// every user was written or already up to date, 1 when any failed or the
// import stopped, 2 for a usage error.
func importCommand(ctx context.Context, o importOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "gatehouse import: "+format+"\n", args...)
		return 1
	}
	if o.batch < 1 || o.batch > 10000 {
		fmt.Fprintln(stderr, "gatehouse import: -batch: between 1 and 10000")
		return 2
	}
	format := o.format
	if format == "" {
		format = "scim"
		if strings.EqualFold(filepath.Ext(o.input), ".csv") {
			format = "csv"
		}
	}
	if format != "scim" && format != "csv" {
		fmt.Fprintf(stderr, "gatehouse import: -format: scim or csv, not %q\n", format)
		return 2
	}
	f, report := readConfig(o.config, os.LookupEnv)
	if err := report.Err(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if f.SCIM == nil {
		return fail("%s has no scim section: users are imported as SCIM writes them, with its schemas and ownership", o.config)
	}
	in, size := stdin, int64(-1)
	if o.input != "-" {
		file, err := os.Open(o.input)
		if err != nil {
			return fail("%v", err)
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = file
	}
	st, err := openStore(ctx, f, zap.NewNop())
	if err != nil {
		return fail("open store: %v", err)
	}
	defer st.Close()
	sc, err := scim.NewServer(f.SCIM.Config, st, scim.Options{Logger: zap.NewNop()})
	if err != nil {
		return fail("%v", err)
	}
	im := &importer{sc: sc, dir: st.(provision.Directory), stderr: stderr, started: time.Now()}
	im.bulk, _ = st.(provision.Importer)
	if im.bulk == nil {
		fmt.Fprintln(stderr, "gatehouse import: this store has no bulk import: writing user by user, as SCIM requests would (slower)")
	}
	// An import holds two batches at most, and allocates much while it
	// decodes: collecting less often costs little memory and leaves the
	// writer more of the machine.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	counted := &countingReader{r: in}
	im.progress = newProgress(stderr, isTerminal(stderr), counted, size)

	// Reading and decoding one batch overlaps writing the one before: a
	// store has one writer (SQLite), and decoding is work of its own.
	// Only the writer reports, so lines and counts stay in input order.
	writes := make(chan []pending, 1)
	var writeErr error
	var failed atomic.Bool
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for todo := range writes {
			if writeErr != nil {
				continue
			}
			if writeErr = im.writeBatch(ctx, todo); writeErr != nil {
				failed.Store(true)
			}
			im.progress.update(im.counts, im.rate(), false)
		}
	}()
	var batch []importRecord
	var batchBytes int
	flush := func() error {
		if len(batch) > 0 {
			writes <- im.decodeBatch(batch)
		}
		batch, batchBytes = nil, 0
		if failed.Load() {
			return errors.New("a write failed")
		}
		return nil
	}
	finish := func() error {
		close(writes)
		<-wrote
		return writeErr
	}
	emit := func(r importRecord) error {
		batch = append(batch, r)
		batchBytes += len(r.body)
		if len(batch) >= o.batch || batchBytes >= maxBatchBytes {
			return flush()
		}
		return nil
	}
	var warnings []string
	if format == "csv" {
		err = readCSV(counted, sc, emit)
	} else {
		err = readSCIMJSON(counted, sc.MaxBodyBytes(), emit, func(w string) { warnings = append(warnings, w) })
	}
	if err == nil || len(batch) > 0 && ctx.Err() == nil {
		// What was read before the input broke is still imported.
		flush()
	}
	if werr := finish(); werr != nil {
		// The write's own error says why; the reader only stopped.
		err = werr
	}
	im.progress.update(im.counts, im.rate(), true)
	c := im.counts
	fmt.Fprintf(stdout, "imported %d users in %s (%.0f users/s): %d created, %d updated, %d unchanged, %d failed\n",
		c.done, time.Since(im.started).Round(time.Millisecond), im.rate(), c.created, c.updated, c.unchanged, c.failed)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "gatehouse import: warning: "+w)
	}
	if err != nil {
		return fail("stopped: %v", err)
	}
	if c.failed > 0 {
		return 1
	}
	return 0
}

func (im *importer) rate() float64 {
	s := time.Since(im.started).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(im.counts.done) / s
}

// failed reports one user that was not written. Only the user name is
// echoed: attribute values may be personal data.
func (im *importer) failed(r importRecord, name string, err error) {
	im.counts.done++
	im.counts.failed++
	who := ""
	if name != "" {
		who = " (userName " + shownName(name) + ")"
	}
	im.progress.clear()
	fmt.Fprintf(im.stderr, "line %d%s: %s\n", r.line, who, reason(err))
}

// reason words an error for the operator.
func reason(err error) string {
	var se *scim.Error
	switch {
	case errors.As(err, &se):
		// Worded for a request; here the body is one resource of the input.
		d := strings.Replace(se.Detail, "request body", "the resource", 1)
		return strings.Replace(d, "the body", "the resource", 1)
	case errors.Is(err, provision.ErrVersion):
		return "the user changed while it was being imported; run the import again"
	case errors.Is(err, provision.ErrConflict):
		return "conflict: " + err.Error()
	}
	return err.Error()
}

// pending is one record of a batch, decoded as a SCIM POST decodes it, or
// why it could not be.
type pending struct {
	rec  importRecord
	user provision.User
	err  error
}

// decodeBatch decodes a batch as SCIM POST requests are decoded. It
// reports nothing: writeBatch does, in order.
func (im *importer) decodeBatch(batch []importRecord) []pending {
	out := make([]pending, 0, len(batch))
	for _, r := range batch {
		p := pending{rec: r, err: r.err}
		if p.err == nil {
			p.user, p.err = im.sc.DecodeUser(r.body)
		}
		out = append(out, p)
	}
	return out
}

// writeBatch writes a decoded batch: one read finds the users that
// already hold its user names, which are then read over the stored user
// as a PUT would, and the others stay as a POST read them.
func (im *importer) writeBatch(ctx context.Context, batch []pending) error {
	// Failures are reported once the batch is done, in input order,
	// whichever step found them.
	type failure struct {
		rec  importRecord
		name string
		err  error
	}
	var failures []failure
	defer func() {
		slices.SortStableFunc(failures, func(a, b failure) int { return cmp.Compare(a.rec.line, b.rec.line) })
		for _, f := range failures {
			im.failed(f.rec, f.name, f.err)
		}
	}()
	fail := func(rec importRecord, name string, err error) { failures = append(failures, failure{rec, name, err}) }
	var todo []pending
	var todoNames []string
	for _, p := range batch {
		switch {
		case p.rec.err != nil:
			fail(p.rec, "", p.err)
		case p.err != nil:
			fail(p.rec, userNameOf(p.rec.body), p.err)
		default:
			todo = append(todo, p)
			todoNames = append(todoNames, p.user.UserName)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	stored, err := im.storedUsers(ctx, todoNames)
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	users := make([]provision.User, 0, len(todo))
	keep := todo[:0]
	for _, p := range todo {
		if cur, ok := stored[provision.NormalizeName(p.user.UserName)]; ok {
			u, err := im.sc.DecodeReplacement(p.rec.body, cur)
			if err != nil {
				fail(p.rec, p.user.UserName, err)
				continue
			}
			p.user = u
		}
		keep = append(keep, p)
		users = append(users, p.user)
	}
	todo = keep
	var res []provision.Imported
	if im.bulk != nil {
		if res, err = im.bulk.ImportUsers(ctx, users); err != nil {
			return fmt.Errorf("write users: %w", err)
		}
	} else {
		res = im.oneByOne(ctx, users)
	}
	for i, r := range res {
		if r.Err != nil {
			fail(todo[i].rec, todo[i].user.UserName, r.Err)
			continue
		}
		im.counts.done++
		switch r.Action {
		case provision.ActCreate:
			im.counts.created++
		case provision.ActUpdate:
			im.counts.updated++
		default:
			im.counts.unchanged++
		}
	}
	return ctx.Err()
}

// byNameReader is a store that reads many users by user name at once
// (sqldir), keyed by provision.NormalizeName.
type byNameReader interface {
	UsersByName(ctx context.Context, names []string) (map[string]provision.User, error)
}

// storedUsers reads the users that hold the names, keyed by their fold:
// in one query where the store can, else through a filter of or-ed
// comparisons, as a SCIM client would ask.
func (im *importer) storedUsers(ctx context.Context, names []string) (map[string]provision.User, error) {
	if r, ok := im.dir.(byNameReader); ok {
		return r.UsersByName(ctx, names)
	}
	var or provision.Or
	for _, n := range names {
		or = append(or, provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: n, Fold: true})
	}
	page, err := im.dir.FindUsers(ctx, provision.Query{Filter: or, Limit: len(or)})
	if err != nil {
		return nil, err
	}
	stored := make(map[string]provision.User, len(page.Items))
	for _, u := range page.Items {
		stored[provision.NormalizeName(u.UserName)] = u
	}
	return stored, nil
}

// oneByOne writes users through provision.Directory, as SCIM's POST and
// PUT do, for a store without bulk import.
func (im *importer) oneByOne(ctx context.Context, users []provision.User) []provision.Imported {
	out := make([]provision.Imported, len(users))
	seen := map[string]bool{}
	for i, u := range users {
		norm := provision.NormalizeName(u.UserName)
		if seen[norm] {
			out[i].Err = fmt.Errorf("user name %q: an earlier user of the batch holds it: %w", u.UserName, provision.ErrConflict)
			continue
		}
		seen[norm] = true
		if u.ID == "" {
			created, err := im.dir.CreateUser(ctx, u)
			out[i] = provision.Imported{Action: provision.ActCreate, ID: created.ID, Err: err}
		} else {
			was := u.Version
			next, err := im.dir.ReplaceUser(ctx, u, was)
			out[i] = provision.Imported{Action: provision.ActNothing, ID: u.ID, Err: err}
			if err == nil && next.Version != was {
				out[i].Action = provision.ActUpdate
			}
		}
		if out[i].Err != nil {
			out[i].Action = ""
		}
		im.progress.update(im.counts, im.rate(), false)
	}
	return out
}

// userNameOf reads userName from a resource that did not decode, for the
// error line; "" when it has none.
func userNameOf(body []byte) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	for k, v := range doc {
		if s, ok := v.(string); ok && strings.EqualFold(k, "userName") {
			return s
		}
	}
	return ""
}

// maxNameShown bounds how much of a user name an error line echoes: a
// name can be as long as a resource.
const maxNameShown = 64

// shownName quotes a user name for an error line: at most maxNameShown
// characters (then "…"), control characters and bad bytes escaped, so
// that a file cannot flood or drive the terminal.
func shownName(s string) string {
	n := 0
	for i := range s {
		if n == maxNameShown {
			s = s[:i] + "…"
			break
		}
		n++
	}
	return strconv.Quote(s)
}

// tooLarge is the error of a resource over scim.max_body_bytes, worded as
// SCIM words it for a POST.
func tooLarge(max int64) error {
	return fmt.Errorf("the resource is larger than %d bytes (scim.max_body_bytes)", max)
}

// peekWindow is how much of the input the format decision may look at
// before it reads anything.
const peekWindow = 1 << 20

// readSCIMJSON reads User resources: a JSON array of them, a SCIM
// ListResponse (its Resources), or one per line (NDJSON). The first byte
// decides: '[' is an array; '{' starts a ListResponse only when that
// object's schemas lists the ListResponse URN (classify), else the input
// is NDJSON, where each line is a record of its own: a line that is not
// JSON, or is too large, fails alone and the read goes on. No resource is
// held beyond max bytes (scim.max_body_bytes): a longer one is read past
// and reported, so memory stays bounded by one resource whatever the
// input holds. warn (if not nil) is told of what does not stop the read
// but may mean the input is not whole: a ListResponse whose totalResults
// differs from the resources it holds.
func readSCIMJSON(r io.Reader, max int64, emit func(importRecord) error, warn func(string)) error {
	j := &jsonReader{br: bufio.NewReaderSize(r, peekWindow), line: 1, max: max}
	if bom, _ := j.br.Peek(3); bytes.Equal(bom, []byte("\ufeff")) {
		j.br.Discard(3) // a byte order mark some editors write
	}
	first, err := j.space()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case first == '[':
		j.next()
		if err := j.array(emit, "the array"); err != nil {
			return err
		}
		if _, err := j.space(); err != io.EOF {
			return j.syntax("want the end of the input after the array")
		}
		return nil
	case first == '{':
		switch j.classify() {
		case isListResponse:
			err := j.listResponses(emit)
			// A read that stopped says so itself; the count is moot.
			if w := j.totalsDiffer(); err == nil && w != "" && warn != nil {
				warn(w)
			}
			return err
		case isSpread:
			return fmt.Errorf("line %d: a JSON object over several lines that is not a SCIM ListResponse (whose schemas lists %s within its first %d bytes): give one User per line (NDJSON), a JSON array of Users, or a ListResponse",
				j.line, scim.URNList, peekWindow)
		}
	}
	return j.ndjson(emit)
}

// jsonReader reads JSON input byte by byte through a buffer, counting
// lines. It checks the structure of the input's envelope (an array, a
// ListResponse) itself and leaves each resource to the SCIM decoder.
type jsonReader struct {
	br   *bufio.Reader
	line int   // line of the next byte, from 1
	max  int64 // bound of one resource

	totals []int64 // the totalResults of each ListResponse that gives one
	listed int     // elements of Resources read, over all ListResponses
}

func (j *jsonReader) next() (byte, error) {
	b, err := j.br.ReadByte()
	if err == nil && b == '\n' {
		j.line++
	}
	return b, err
}

// space skips white space and returns the next byte, not consumed.
func (j *jsonReader) space() (byte, error) {
	for {
		p, err := j.br.Peek(1)
		if err != nil {
			return 0, err
		}
		if !isJSONSpace(p[0]) {
			return p[0], nil
		}
		j.next()
	}
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// syntax is an error in the input's envelope, which stops the read: past
// it, where the next resource starts cannot be told.
func (j *jsonReader) syntax(what string) error {
	return fmt.Errorf("line %d: malformed JSON: %s", j.line, what)
}

// eof words an error of the underlying read.
func (j *jsonReader) eof(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return j.syntax("unexpected end of input")
	}
	return err
}

// value reads the JSON value at the next non-space byte by its structure
// alone: a string to its closing quote, an object or an array to the
// bracket that closes it (brackets are counted, not matched: what is
// inside is checked when the value is decoded), anything else up to the
// next delimiter. It keeps at most j.max bytes; over reports a longer
// value, read to its end but not kept.
func (j *jsonReader) value() (body []byte, line int, over bool, err error) {
	b, err := j.space()
	if err != nil {
		return nil, j.line, false, j.eof(err)
	}
	line = j.line
	keep := func(c byte) {
		switch {
		case over:
		case int64(len(body)) >= j.max:
			over, body = true, nil
		default:
			body = append(body, c)
		}
	}
	switch b {
	case '{', '[':
		for depth := 0; ; {
			c, err := j.next()
			if err != nil {
				return nil, line, over, j.eof(err)
			}
			keep(c)
			switch c {
			case '"':
				if err := j.str(keep); err != nil {
					return nil, line, over, err
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return body, line, over, nil
				}
			}
		}
	case '"':
		j.next()
		keep(b)
		err := j.str(keep)
		return body, line, over, err
	case '}', ']', ',', ':':
		return nil, line, false, j.syntax(fmt.Sprintf("want a value, not %q", b))
	}
	for {
		p, err := j.br.Peek(1)
		if err == io.EOF || (err == nil && (isJSONSpace(p[0]) || bytes.IndexByte([]byte(",]}:"), p[0]) >= 0)) {
			return body, line, over, nil
		}
		if err != nil {
			return nil, line, over, err
		}
		c, _ := j.next()
		keep(c)
	}
}

// str reads the rest of a string whose opening quote was read.
func (j *jsonReader) str(keep func(byte)) error {
	for {
		c, err := j.next()
		if err != nil {
			return j.eof(err)
		}
		keep(c)
		switch c {
		case '\\':
			c, err := j.next()
			if err != nil {
				return j.eof(err)
			}
			keep(c)
		case '"':
			return nil
		}
	}
}

// record makes the import record of a value read by value.
func (j *jsonReader) record(body []byte, line int, over bool) importRecord {
	if over {
		return importRecord{line: line, err: tooLarge(j.max)}
	}
	return importRecord{line: line, body: body}
}

// array passes on the elements of an array whose '[' was read, each as
// one resource: an element that is not a User (or too large) fails alone.
func (j *jsonReader) array(emit func(importRecord) error, what string) error {
	b, err := j.space()
	if err != nil {
		return j.eof(err)
	}
	if b == ']' {
		j.next()
		return nil
	}
	for {
		body, line, over, err := j.value()
		if err != nil {
			return err
		}
		if err := emit(j.record(body, line, over)); err != nil {
			return err
		}
		b, err := j.space()
		if err != nil {
			return j.eof(err)
		}
		switch b {
		case ']':
			j.next()
			return nil
		case ',':
			j.next()
		default:
			return j.syntax("want , or ] after an element of " + what)
		}
	}
}

// maxEnvelopeKeys bounds the keys of a ListResponse (it has five).
const maxEnvelopeKeys = 64

// envelopeKeys are the members of a ListResponse (RFC 7644 §3.4.2). Any
// other key is refused, as a SCIM server refuses an unknown attribute in
// strict mode: a misspelt "Resource" or a "Resources " beside Resources
// would otherwise leave its users out without a word.
var envelopeKeys = []string{"schemas", "totalResults", "itemsPerPage", "startIndex", "Resources"}

// totalsDiffer describes a mismatch between the totalResults of the
// ListResponses read and the resources they held, or is "". Pages of one
// query concatenated all give the query's total, so the count is compared
// with that, and with the sum of the totals for unrelated lists; an
// export of its first page only matches neither.
func (j *jsonReader) totalsDiffer() string {
	if len(j.totals) == 0 {
		return ""
	}
	same, sum := true, int64(0)
	for _, t := range j.totals {
		same = same && t == j.totals[0]
		sum += t
	}
	if (same && j.totals[0] == int64(j.listed)) || sum == int64(j.listed) {
		return ""
	}
	total := sum
	if same {
		total = j.totals[0]
	}
	return fmt.Sprintf("the ListResponse gives totalResults %d but holds %d resources: is this one page of a paged export? Users not in the input were not imported", total, j.listed)
}

// listResponses reads one ListResponse object after another, passing on
// the users of their Resources. A key given twice (in any case) is refused
// as SCIM refuses it in a body, rather than both or one being read.
func (j *jsonReader) listResponses(emit func(importRecord) error) error {
	for {
		b, err := j.space()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b != '{' || j.classify() != isListResponse {
			return fmt.Errorf("line %d: after a ListResponse, want another ListResponse or the end of the input", j.line)
		}
		j.next()
		if err := j.envelope(emit); err != nil {
			return err
		}
	}
}

// envelope reads the members of a ListResponse whose '{' was read.
func (j *jsonReader) envelope(emit func(importRecord) error) error {
	var keys []string
	for {
		b, err := j.space()
		if err != nil {
			return j.eof(err)
		}
		if b == '}' && len(keys) == 0 {
			j.next()
			return nil
		}
		raw, line, over, err := j.value()
		if err != nil {
			return err
		}
		var key string
		if over || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &key) != nil {
			return fmt.Errorf("line %d: malformed JSON: want a key of the ListResponse", line)
		}
		for _, k := range keys {
			if strings.EqualFold(k, key) {
				return fmt.Errorf("line %d: the ListResponse holds the key %s twice (in any case); give it once", line, shownName(key))
			}
		}
		if !slices.ContainsFunc(envelopeKeys, func(k string) bool { return strings.EqualFold(k, key) }) {
			return fmt.Errorf("line %d: the ListResponse holds the key %s, which is not one of %s: is it misspelt?", line, shownName(key), strings.Join(envelopeKeys, ", "))
		}
		if keys = append(keys, key); len(keys) > maxEnvelopeKeys {
			return fmt.Errorf("line %d: the ListResponse holds more than %d keys", line, maxEnvelopeKeys)
		}
		if b, err := j.space(); err != nil {
			return j.eof(err)
		} else if b != ':' {
			return j.syntax("want : after a key")
		}
		j.next()
		if strings.EqualFold(key, "Resources") {
			if b, err := j.space(); err != nil {
				return j.eof(err)
			} else if b != '[' {
				return fmt.Errorf("line %d: Resources must be an array", j.line)
			}
			j.next()
			counted := func(r importRecord) error { j.listed++; return emit(r) }
			if err := j.array(counted, "Resources"); err != nil {
				return err
			}
		} else {
			v, line, over, err := j.value()
			switch {
			case err != nil:
				return err
			case over:
				return fmt.Errorf("line %d: the ListResponse's %s is larger than %d bytes", line, shownName(key), j.max)
			case !json.Valid(v):
				return fmt.Errorf("line %d: malformed JSON in the ListResponse's %s", line, shownName(key))
			case strings.EqualFold(key, "schemas") && !listsURN(v, scim.URNList):
				return fmt.Errorf("line %d: the ListResponse's schemas must list %s", line, scim.URNList)
			case strings.EqualFold(key, "totalResults"):
				var n int64
				if json.Unmarshal(v, &n) != nil || n < 0 {
					return fmt.Errorf("line %d: the ListResponse's totalResults must be a whole number, 0 or more", line)
				}
				j.totals = append(j.totals, n)
			}
		}
		b, err = j.space()
		if err != nil {
			return j.eof(err)
		}
		j.next()
		switch b {
		case '}':
			return nil
		case ',':
		default:
			return j.syntax("want , or } after a value of the ListResponse")
		}
	}
}

// listsURN reports whether v, the JSON of a schemas attribute, is an
// array listing urn.
func listsURN(v []byte, urn string) bool {
	var list []any
	if json.Unmarshal(v, &list) != nil {
		return false
	}
	for _, x := range list {
		if s, ok := x.(string); ok && strings.EqualFold(s, urn) {
			return true
		}
	}
	return false
}

// ndjson passes on each non-blank line as one resource, keeping at most
// max bytes of it (and a line end): a longer line is read past and
// reported, and the read goes on at the next line.
func (j *jsonReader) ndjson(emit func(importRecord) error) error {
	for {
		line := j.line
		var buf []byte
		over := false
		for {
			chunk, err := j.br.ReadSlice('\n')
			if !over && int64(len(buf)+len(chunk)) > j.max+2 { // +2: "\r\n"
				over, buf = true, nil
			}
			if !over {
				buf = append(buf, chunk...)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == nil {
				j.line++
			}
			if t := bytes.TrimSpace(buf); len(t) > 0 || over {
				if e := emit(j.record(t, line, over)); e != nil {
					return e
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			break
		}
	}
}

// The kinds of input an object at the start of a JSON input begins.
const (
	isNDJSON       = iota // one User per line
	isListResponse        // its schemas lists the ListResponse URN
	isSpread              // an object over several lines that is not a ListResponse
)

// classify tells what the object at the next byte ('{') begins, looking
// at no more than the buffered window and consuming nothing. It reads the
// object's members by their structure: a schemas member listing the
// ListResponse URN makes it a ListResponse, wherever it comes. An object
// that ends on the line it started on, one whose members do not parse (a
// broken first line of NDJSON) and one longer than the window on its
// first line are NDJSON, read line by line; a well-formed object over
// several lines that does not say it is a ListResponse is a User written
// out over lines, which no format here takes.
func (j *jsonReader) classify() int {
	w, err := j.br.Peek(peekWindow)
	complete := err != nil // the window holds the rest of the input
	firstLine := bytes.IndexByte(w, '\n')
	i := 1
	skip := func() {
		for i < len(w) && isJSONSpace(w[i]) {
			i++
		}
	}
	// scan moves i past the value at i, structurally; false when it
	// leaves the window.
	scan := func() bool {
		depth := 0
		for ; i < len(w); i++ {
			switch w[i] {
			case '"':
				for i++; i < len(w) && w[i] != '"'; i++ {
					if w[i] == '\\' {
						i++
					}
				}
				if i >= len(w) {
					return false
				}
				if depth == 0 {
					i++
					return true
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					return true // the end of a scalar
				}
				if depth--; depth == 0 {
					i++
					return true
				}
			case ',', ':', ' ', '\t', '\r', '\n':
				if depth == 0 {
					return true
				}
			}
		}
		return false
	}
	// undecided answers when the window ends inside the object: cut
	// short by the end of the input, or on a first line longer than the
	// window, it is read as lines (each reported); an object over lines
	// longer than the window that has not said it is a ListResponse is
	// refused as isSpread.
	undecided := func() int {
		if !complete && firstLine >= 0 {
			return isSpread
		}
		return isNDJSON
	}
	for first := true; ; first = false {
		skip()
		if i >= len(w) {
			return undecided()
		}
		if w[i] == '}' && first {
			i++
			break
		}
		if w[i] != '"' {
			return isNDJSON
		}
		start := i
		if !scan() {
			return undecided()
		}
		var key string
		if json.Unmarshal(w[start:i], &key) != nil {
			return isNDJSON
		}
		skip()
		if i >= len(w) {
			return undecided()
		}
		if w[i] != ':' {
			return isNDJSON
		}
		i++
		skip()
		start = i
		if !scan() {
			return undecided()
		}
		if strings.EqualFold(key, "schemas") && listsURN(w[start:i], scim.URNList) {
			return isListResponse
		}
		skip()
		if i >= len(w) {
			return undecided()
		}
		if w[i] == '}' {
			i++
			break
		}
		if w[i] != ',' {
			return isNDJSON
		}
		i++
	}
	if firstLine < 0 || i <= firstLine {
		return isNDJSON
	}
	return isSpread
}

// lineTracker counts lines under a reader so that an offset in the input
// can be named by its line. Offsets are asked in increasing order, so it
// keeps only the newlines not yet passed.
type lineTracker struct {
	r    io.Reader
	read int64   // bytes passed through
	nl   []int64 // offsets of newlines not yet counted
	line int     // newlines counted
}

func (t *lineTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			t.nl = append(t.nl, t.read+int64(i))
		}
	}
	t.read += int64(n)
	return n, err
}

// lineAt is the 1-based line of offset off.
func (t *lineTracker) lineAt(off int64) int {
	k := 0
	for k < len(t.nl) && t.nl[k] < off {
		k++
	}
	t.line += k
	t.nl = t.nl[k:]
	return t.line + 1
}

// csvSlack is how far past a row the CSV reader's buffer may have read
// (bufio's 4 KiB read-ahead), on top of a row's bound.
const csvSlack = 8 << 10

// maxCSVColumns bounds the columns of a header and the fields of a row:
// encoding/csv keeps a few words per field, so a row of commas alone
// would take a hundred times its size.
const maxCSVColumns = 1000

// errRowTooLarge stops a CSV read at a row over its bound.
var errRowTooLarge = errors.New("row too large")

// rowLimit lets a CSV reader read at most max bytes past the end of the
// last whole row (base), and no row of more than maxCSVColumns fields:
// encoding/csv holds a row whole, and an unclosed quote makes the rest of
// the input one field. Fields are counted as RFC 4180 quotes them (a
// quote toggles quoting; a doubled one toggles it twice), which is what
// the reader takes outside the header.
type rowLimit struct {
	r       io.Reader
	n, base int64
	max     int64
	commas  int  // commas outside quotes since the last line end
	quoted  bool // inside a quoted field
	wide    bool // a row has too many fields: trip at the next read
	tripped bool // a bound was hit
}

func (l *rowLimit) Read(p []byte) (int, error) {
	allowed := l.base + l.max - l.n
	if allowed <= 0 || l.wide {
		l.tripped = true
		return 0, errRowTooLarge
	}
	if int64(len(p)) > allowed {
		p = p[:allowed]
	}
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		switch {
		case c == '"':
			l.quoted = !l.quoted
		case l.quoted:
		case c == '\n':
			l.commas = 0
		case c == ',':
			if l.commas++; l.commas >= maxCSVColumns {
				// The rows before this one are passed on whole; the
				// reader stops at this one.
				l.wide, n, err = true, i, nil
			}
		}
		if l.wide {
			break
		}
	}
	l.n += int64(n)
	return n, err
}

// readCSV reads a header row of SCIM attribute paths and makes each row
// a User resource. An empty cell leaves its attribute out, as an absent
// attribute in JSON. The header states the schema of every row, so it is
// checked whole before any row is read: each column must name, once, an
// attribute the server declares and a client may write
// (scim.Server.UserColumn). The resource lists its schemas itself (the
// core URN and those of the extensions the header names), so rows are
// read in strict mode as well. No row is held beyond scim.max_body_bytes:
// a longer one stops the read.
func readCSV(r io.Reader, sc *scim.Server, emit func(importRecord) error) error {
	max := sc.MaxBodyBytes()
	lim := &rowLimit{r: r, max: max + csvSlack}
	lt := &lineTracker{r: lim}
	cr := csv.NewReader(lt)
	cr.ReuseRecord = true
	// A header cell may hold a filter's quotes unescaped
	// (emails[type eq "work"].value); data cells follow RFC 4180.
	cr.LazyQuotes = true
	header, err := cr.Read()
	cr.LazyQuotes = false
	if lim.tripped {
		return fmt.Errorf("header: larger than %d bytes (scim.max_body_bytes) or more than %d columns", max, maxCSVColumns)
	}
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord: the next row reuses it
	cols := make([]csvColumn, len(header))
	schemas := []any{scim.URNUser}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a spreadsheet's byte order mark
		}
		h = strings.TrimSpace(h)
		c, err := parseCSVColumn(sc, h)
		if err != nil {
			return fmt.Errorf("header column %d: %s: %w", i+1, shownName(h), err)
		}
		for k, o := range cols[:i] {
			if o.overlaps(c) {
				return fmt.Errorf("header column %d: %s writes %s, as column %d (%s) does; give it once", i+1, shownName(h), c.Attr, k+1, shownName(o.head))
			}
		}
		cols[i] = c
		if c.URN != "" && !slices.Contains(schemas, any(c.URN)) {
			schemas = append(schemas, c.URN)
		}
	}
	for {
		lim.base = cr.InputOffset()
		next := lt.lineAt(lim.base)
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if lim.tripped && lim.wide {
			return fmt.Errorf("line %d: a row of more than %d fields", next, maxCSVColumns)
		}
		if lim.tripped {
			return fmt.Errorf("line %d: a row larger than %d bytes (scim.max_body_bytes); an unclosed quote makes the rest of the input one field", next, max)
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				if e := emit(importRecord{line: pe.StartLine, err: fmt.Errorf("%d fields, the header has %d", len(row), len(cols))}); e != nil {
					return e
				}
				continue
			}
			if errors.As(err, &pe) {
				// A quote error can come before the row has a field, so
				// the position is the parse error's, never FieldPos's.
				return fmt.Errorf("line %d, column %d: %w", pe.Line, pe.Column, pe.Err)
			}
			return err
		}
		line, _ := cr.FieldPos(0) // a row read whole has at least one field
		doc := map[string]any{"schemas": schemas}
		for i, c := range cols {
			if row[i] != "" {
				c.set(doc, row[i])
			}
		}
		body, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if err := emit(importRecord{line: line, body: body}); err != nil {
			return err
		}
	}
}

// csvColumn is one header cell: the attribute it writes, and the cell as
// the header spells it.
type csvColumn struct {
	scim.Column
	head string
}

// overlaps reports whether two columns write one value, or values that
// could not both be kept: the same attribute whole in one of them, the
// same sub-attribute of the same elements, or elements of one multi-valued
// attribute given both by type and without one (one would replace the
// other's list).
func (c csvColumn) overlaps(o csvColumn) bool {
	if !strings.EqualFold(c.URN, o.URN) || !strings.EqualFold(c.Attr, o.Attr) {
		return false
	}
	return c.Sub == "" || o.Sub == "" || c.Typed != o.Typed || (c.Type == o.Type && strings.EqualFold(c.Sub, o.Sub))
}

// parseCSVColumn reads a header cell as a PATCH path is written: attr,
// attr.sub, attr[type eq "t"].sub, or any of them after a schema URN and
// a colon (urn:...:enterprise:2.0:User:department), and resolves it
// against the server's schemas.
func parseCSVColumn(sc *scim.Server, h string) (csvColumn, error) {
	var urn, attr, typ, sub string
	typed := false
	path := h
	if strings.HasPrefix(strings.ToLower(h), "urn:") {
		i := strings.LastIndex(h, ":")
		urn, path = h[:i], h[i+1:]
	}
	if open := strings.IndexByte(path, '['); open >= 0 {
		end := strings.IndexByte(path, ']')
		if end < open {
			return csvColumn{}, errors.New("unclosed [")
		}
		f := strings.Fields(path[open+1 : end])
		if len(f) != 3 || !strings.EqualFold(f[0], "type") || !strings.EqualFold(f[1], "eq") {
			return csvColumn{}, errors.New(`the only filter a column takes is [type eq "..."]`)
		}
		t, err := strconv.Unquote(f[2])
		if err != nil {
			return csvColumn{}, errors.New("the type must be a quoted string")
		}
		attr, typ, typed = path[:open], t, true
		rest := path[end+1:]
		if !strings.HasPrefix(rest, ".") || len(rest) < 2 {
			return csvColumn{}, errors.New("name a sub-attribute after the filter (.value)")
		}
		sub = rest[1:]
	} else {
		var dotted bool
		attr, sub, dotted = strings.Cut(path, ".")
		if dotted && sub == "" {
			return csvColumn{}, errors.New("not an attribute path")
		}
	}
	for _, part := range []string{attr, sub} {
		if strings.ContainsAny(part, "[]. \"") {
			return csvColumn{}, errors.New("not an attribute path")
		}
	}
	if attr == "" {
		return csvColumn{}, errors.New("not an attribute path")
	}
	col, err := sc.UserColumn(urn, attr, typ, typed, sub)
	if err != nil {
		return csvColumn{}, err
	}
	return csvColumn{Column: col, head: h}, nil
}

// set writes v at the column's place in doc. active reads true and false
// as a boolean, as a JSON body would carry it; any other value stays a
// string, for the SCIM decoder to accept or refuse.
func (c csvColumn) set(doc map[string]any, v string) {
	var val any = v
	name := c.Attr
	if c.Sub != "" {
		name = c.Sub
	}
	if strings.EqualFold(name, "active") || strings.EqualFold(name, "primary") {
		if b, err := strconv.ParseBool(v); err == nil {
			val = b
		}
	}
	target := doc
	if c.URN != "" {
		m, _ := target[c.URN].(map[string]any)
		if m == nil {
			m = map[string]any{}
			target[c.URN] = m
		}
		target = m
	}
	switch {
	case c.Typed:
		list, _ := target[c.Attr].([]any)
		for _, el := range list {
			if m := el.(map[string]any); m["type"] == c.Type {
				m[c.Sub] = val
				return
			}
		}
		target[c.Attr] = append(list, map[string]any{"type": c.Type, c.Sub: val})
	case c.Sub != "":
		m, _ := target[c.Attr].(map[string]any)
		if m == nil {
			m = map[string]any{}
			target[c.Attr] = m
		}
		m[c.Sub] = val
	default:
		target[c.Attr] = val
	}
}

// countingReader counts the bytes read, for progress through a file.
type countingReader struct {
	r io.Reader
	n atomic.Int64 // read while the writer reports progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress shows how an import goes: on a terminal one line rewritten in
// place, several times a second; elsewhere (a log) one line every five
// seconds.
type progress struct {
	w     io.Writer
	tty   bool
	in    *countingReader
	size  int64
	last  time.Time
	shown bool // a terminal line is on screen
}

func newProgress(w io.Writer, tty bool, in *countingReader, size int64) *progress {
	return &progress{w: w, tty: tty, in: in, size: size, last: time.Now()}
}

func (p *progress) update(c importCounts, rate float64, final bool) {
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if !final && time.Since(p.last) < every {
		return
	}
	if final && !p.tty {
		return // the summary follows on stdout
	}
	p.last = time.Now()
	line := fmt.Sprintf("%d users", c.done)
	if p.size > 0 {
		line += fmt.Sprintf(" (%d%% of the input)", min(100, p.in.n.Load()*100/p.size))
	}
	line += fmt.Sprintf(": %d created, %d updated, %d unchanged, %d failed, %.0f users/s", c.created, c.updated, c.unchanged, c.failed, rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		if final {
			fmt.Fprintln(p.w)
			p.shown = false
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

// clear takes the terminal line away before an error line is written.
func (p *progress) clear() {
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

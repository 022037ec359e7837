package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	counted := &countingReader{r: in}
	im.progress = newProgress(stderr, isTerminal(stderr), counted, size)

	var batch []importRecord
	flush := func() error {
		err := im.importBatch(ctx, batch)
		batch = batch[:0]
		im.progress.update(im.counts, im.rate(), false)
		return err
	}
	emit := func(r importRecord) error {
		batch = append(batch, r)
		if len(batch) >= o.batch {
			return flush()
		}
		return nil
	}
	if format == "csv" {
		err = readCSV(counted, emit)
	} else {
		err = readSCIMJSON(counted, emit)
	}
	if err == nil {
		err = flush()
	} else if len(batch) > 0 && ctx.Err() == nil {
		// What was read before the input broke is still imported.
		if ferr := flush(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	im.progress.update(im.counts, im.rate(), true)
	c := im.counts
	fmt.Fprintf(stdout, "imported %d users in %s (%.0f users/s): %d created, %d updated, %d unchanged, %d failed\n",
		c.done, time.Since(im.started).Round(time.Millisecond), im.rate(), c.created, c.updated, c.unchanged, c.failed)
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
		who = fmt.Sprintf(" (userName %q)", name)
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
		return strings.Replace(se.Detail, "request body", "the resource", 1)
	case errors.Is(err, provision.ErrVersion):
		return "the user changed while it was being imported; run the import again"
	case errors.Is(err, provision.ErrConflict):
		return "conflict: " + err.Error()
	}
	return err.Error()
}

// importBatch decodes a batch as SCIM requests are decoded and writes it:
// one read finds the users that already hold its user names, which are
// then read over the stored user as a PUT would, and the others as a POST.
func (im *importer) importBatch(ctx context.Context, batch []importRecord) error {
	if len(batch) == 0 {
		return nil
	}
	type pending struct {
		rec  importRecord
		user provision.User
	}
	var todo []pending
	var todoNames []string
	for _, r := range batch {
		if r.err != nil {
			im.failed(r, "", r.err)
			continue
		}
		u, err := im.sc.DecodeUser(r.body)
		if err != nil {
			im.failed(r, userNameOf(r.body), err)
			continue
		}
		todo = append(todo, pending{r, u})
		todoNames = append(todoNames, u.UserName)
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
				im.failed(p.rec, p.user.UserName, err)
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
			im.failed(todo[i].rec, todo[i].user.UserName, r.Err)
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

// readSCIMJSON reads User resources: a JSON array of them, a SCIM
// ListResponse (its Resources), or one per line (NDJSON), told apart by
// the first bytes. Each resource is passed on as it is read, so memory
// stays bounded by one resource. Only NDJSON can go on past malformed
// JSON (the next line starts afresh); in an array or a list a syntax
// error stops the read.
func readSCIMJSON(r io.Reader, emit func(importRecord) error) error {
	lt := &lineTracker{r: r}
	br := bufio.NewReaderSize(lt, 1<<20)
	first, err := firstByte(br)
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	switch first {
	case '[':
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			return err
		}
		return readArray(dec, lt, br, emit)
	case '{':
		if line, ok := peekLine(br); ok && json.Valid(line) && !hasResources(line) {
			return readNDJSON(br, emit)
		}
		return readObjects(json.NewDecoder(br), lt, br, emit)
	}
	return fmt.Errorf("line 1: want a JSON array, a ListResponse object or one User object per line")
}

// readNDJSON passes on each non-blank line.
func readNDJSON(br *bufio.Reader, emit func(importRecord) error) error {
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if e := emit(importRecord{line: n, body: t}); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readArray passes on the elements of the array whose '[' dec has read.
func readArray(dec *json.Decoder, lt *lineTracker, br *bufio.Reader, emit func(importRecord) error) error {
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("line %d: malformed JSON: %s", lt.lineAt(consumed(dec, lt, br)), jsonProblem(err))
		}
		start := consumed(dec, lt, br) - int64(len(raw))
		if err := emit(importRecord{line: lt.lineAt(start), body: raw}); err != nil {
			return err
		}
	}
	_, err := dec.Token() // ']'
	if err != nil {
		return fmt.Errorf("line %d: malformed JSON: %s", lt.lineAt(consumed(dec, lt, br)), jsonProblem(err))
	}
	return nil
}

// readObjects reads top-level objects: a ListResponse streams its
// Resources; any other object is one User.
func readObjects(dec *json.Decoder, lt *lineTracker, br *bufio.Reader, emit func(importRecord) error) error {
	bad := func(err error) error {
		return fmt.Errorf("line %d: malformed JSON: %s", lt.lineAt(consumed(dec, lt, br)), jsonProblem(err))
	}
	for {
		start := consumed(dec, lt, br)
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return bad(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return fmt.Errorf("line %d: want a User or ListResponse object", lt.lineAt(start))
		}
		line := lt.lineAt(start)
		fields := map[string]json.RawMessage{}
		list := false
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return bad(err)
			}
			key, _ := tok.(string)
			if strings.EqualFold(key, "Resources") {
				if t, err := dec.Token(); err != nil {
					return bad(err)
				} else if d, ok := t.(json.Delim); !ok || d != '[' {
					return fmt.Errorf("line %d: Resources must be an array", lt.lineAt(consumed(dec, lt, br)))
				}
				if err := readArray(dec, lt, br, emit); err != nil {
					return err
				}
				list = true
				continue
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return bad(err)
			}
			if !list {
				if _, dup := fields[key]; dup {
					// A repeated key would be lost in the map: let the
					// SCIM decoder see the object refused.
					return fmt.Errorf("line %d: the object holds key %q twice", line, key)
				}
				fields[key] = v
			}
		}
		if _, err := dec.Token(); err != nil { // '}'
			return bad(err)
		}
		if list {
			continue
		}
		body, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		if err := emit(importRecord{line: line, body: body}); err != nil {
			return err
		}
	}
}

// consumed is the input offset dec has reached.
func consumed(dec *json.Decoder, lt *lineTracker, br *bufio.Reader) int64 {
	return dec.InputOffset() + lt.start
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b, br.UnreadByte()
		}
	}
}

// peekLine is the first line still buffered, when it fits in the buffer.
func peekLine(br *bufio.Reader) ([]byte, bool) {
	b, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], true
	}
	return b, len(b) < br.Size()
}

// hasResources reports whether a one-line object is a ListResponse.
func hasResources(line []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return false
	}
	for k := range m {
		if strings.EqualFold(k, "Resources") {
			return true
		}
	}
	return false
}

// jsonProblem describes a JSON error without echoing input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error"
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return "unexpected end of input"
	}
	return "malformed JSON"
}

// lineTracker counts lines under a reader so that an offset in the input
// can be named by its line. Offsets are asked in increasing order, so it
// keeps only the newlines not yet passed.
type lineTracker struct {
	r     io.Reader
	read  int64   // bytes passed through
	nl    []int64 // offsets of newlines not yet counted
	line  int     // newlines counted
	start int64   // offset of the decoder's first byte (bytes skipped before it)
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

// readCSV reads a header row of SCIM attribute paths and makes each row
// a User resource (see csvColumn). An empty cell leaves its attribute
// out, as an absent attribute in JSON.
func readCSV(r io.Reader, emit func(importRecord) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	// A header cell may hold a filter's quotes unescaped
	// (emails[type eq "work"].value); data cells follow RFC 4180.
	cr.LazyQuotes = true
	header, err := cr.Read()
	cr.LazyQuotes = false
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord: the next row reuses it
	cols := make([]csvColumn, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a spreadsheet's byte order mark
		}
		c, err := parseCSVColumn(strings.TrimSpace(h))
		if err != nil {
			return fmt.Errorf("header column %d: %w", i+1, err)
		}
		if seen[c.key()] {
			return fmt.Errorf("header column %d: %s appears twice", i+1, h)
		}
		seen[c.key()] = true
		cols[i] = c
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				if e := emit(importRecord{line: pe.StartLine, err: fmt.Errorf("%d fields, the header has %d", len(row), len(cols))}); e != nil {
					return e
				}
				continue
			}
			return err
		}
		doc := map[string]any{}
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

// csvColumn is one header cell: a SCIM attribute path, as a PATCH path
// writes it: attr, attr.sub, attr[type eq "t"].sub, or any of them after
// a schema URN and a colon (urn:...:enterprise:2.0:User:department).
type csvColumn struct {
	urn, attr, typ, sub string
	typed               bool
}

func (c csvColumn) key() string {
	return strings.ToLower(c.urn + "|" + c.attr + "|" + c.typ + "|" + c.sub + "|" + strconv.FormatBool(c.typed))
}

func parseCSVColumn(h string) (csvColumn, error) {
	var c csvColumn
	path := h
	if strings.HasPrefix(strings.ToLower(h), "urn:") {
		i := strings.LastIndex(h, ":")
		c.urn, path = h[:i], h[i+1:]
	}
	if open := strings.IndexByte(path, '['); open >= 0 {
		end := strings.IndexByte(path, ']')
		if end < open {
			return c, fmt.Errorf("%q: unclosed [", h)
		}
		f := strings.Fields(path[open+1 : end])
		if len(f) != 3 || !strings.EqualFold(f[0], "type") || !strings.EqualFold(f[1], "eq") {
			return c, fmt.Errorf("%q: the only filter a column takes is [type eq \"...\"]", h)
		}
		t, err := strconv.Unquote(f[2])
		if err != nil {
			return c, fmt.Errorf("%q: the type must be a quoted string", h)
		}
		c.attr, c.typ, c.typed = path[:open], t, true
		rest := path[end+1:]
		if !strings.HasPrefix(rest, ".") || len(rest) < 2 {
			return c, fmt.Errorf("%q: name a sub-attribute after the filter (.value)", h)
		}
		c.sub = rest[1:]
	} else {
		var dotted bool
		c.attr, c.sub, dotted = strings.Cut(path, ".")
		if dotted && c.sub == "" {
			return c, fmt.Errorf("%q is not an attribute path", h)
		}
	}
	for _, part := range []string{c.attr, c.sub} {
		if strings.ContainsAny(part, "[]. \"") {
			return c, fmt.Errorf("%q is not an attribute path", h)
		}
	}
	if c.attr == "" {
		return c, fmt.Errorf("%q is not an attribute path", h)
	}
	return c, nil
}

// set writes v at the column's place in doc. active and primary read
// true and false as booleans, as a JSON body would carry them; any other
// value stays a string, for the SCIM decoder to accept or refuse.
func (c csvColumn) set(doc map[string]any, v string) {
	var val any = v
	name := c.attr
	if c.sub != "" {
		name = c.sub
	}
	if strings.EqualFold(name, "active") || strings.EqualFold(name, "primary") {
		if b, err := strconv.ParseBool(v); err == nil {
			val = b
		}
	}
	target := doc
	if c.urn != "" {
		m, _ := target[c.urn].(map[string]any)
		if m == nil {
			m = map[string]any{}
			target[c.urn] = m
		}
		target = m
	}
	switch {
	case c.typed:
		list, _ := target[c.attr].([]any)
		for _, el := range list {
			if m := el.(map[string]any); m["type"] == c.typ {
				m[c.sub] = val
				return
			}
		}
		target[c.attr] = append(list, map[string]any{"type": c.typ, c.sub: val})
	case c.sub != "":
		m, _ := target[c.attr].(map[string]any)
		if m == nil {
			m = map[string]any{}
			target[c.attr] = m
		}
		m[c.sub] = val
	default:
		target[c.attr] = val
	}
}

// countingReader counts the bytes read, for progress through a file.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
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
		line += fmt.Sprintf(" (%d%% of the input)", min(100, p.in.n*100/p.size))
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

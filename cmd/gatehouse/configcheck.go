package main

// Reading a config file into problems an operator can act on: every
// unknown key, value of the wrong type, duplicate key and misplaced
// ${ENV} reference becomes one problem with its file position and key
// path, and the validation of whatever was well-formed runs in the same
// pass. The structure is checked against the config structs' yaml tags
// by reflection, so a field added to a struct is known here at once.

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// configProblem is one thing wrong with a config.
type configProblem struct {
	Line, Col int    // where in the file; 0 when it has no place there
	Key       string // the key path, e.g. idps[1].mapping.user_name; "" for the whole file
	Msg       string
}

func (p configProblem) format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// configReport is every problem found in one config file. As an error it
// reads "<file>: N problems:" followed by one line per problem.
type configReport struct {
	File     string
	Problems []configProblem

	keys map[string]yamlPos // key path → position of its key (or list element)
	bad  []string           // paths whose value was refused as malformed
}

type yamlPos struct{ line, col int }

// add places validation errors of the form "key.path: message" at their
// key's position in the file, or at the nearest enclosing key the file
// has. A problem under a key whose value was already refused as
// malformed is not repeated.
func (r *configReport) add(errs ...error) {
	for _, err := range errs {
		for _, e := range flatten(err) {
			p := configProblem{Msg: e.Error()}
			key, msg, ok := strings.Cut(p.Msg, ": ")
			if m := keylessElement.FindStringSubmatch(p.Msg); m != nil && (!ok || !keyPath.MatchString(key)) {
				key, msg, ok = m[1], m[2], true
			}
			if ok && keyPath.MatchString(key) {
				if r.refused(key) {
					continue
				}
				p.Key, p.Msg = key, msg
				for k := key; k != ""; k = parentKey(k) {
					if pos, ok := r.keys[k]; ok {
						p.Line, p.Col = pos.line, pos.col
						break
					}
				}
			}
			r.Problems = append(r.Problems, p)
		}
	}
}

// keylessElement is a list element's problem that names no key of it,
// as "authorization[0].set allow or require" (a sentence after the dot).
var keylessElement = regexp.MustCompile(`^([a-z][a-z0-9_.]*\[\d+\])\.([a-z]+ [^:]*)$`)

var keyPath = regexp.MustCompile(`^[a-z][a-z0-9_]*(?:\.[^\s.\[\]]+|\[\d+\])*$`)

func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i > 0 {
		return k[:i]
	}
	return ""
}

func (r *configReport) refused(key string) bool {
	for _, b := range r.bad {
		if key == b || strings.HasPrefix(key, b+".") || strings.HasPrefix(key, b+"[") {
			return true
		}
	}
	return false
}

// sort puts the problems in file order; those with no place in the file
// come last, in the order found.
func (r *configReport) sort() {
	slices.SortStableFunc(r.Problems, func(a, b configProblem) int {
		switch {
		case (a.Line == 0) != (b.Line == 0):
			if a.Line == 0 {
				return 1
			}
			return -1
		case a.Line != b.Line:
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
}

// Lines is the problems, one formatted line each.
func (r *configReport) Lines() []string {
	out := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		out[i] = p.format(r.File)
	}
	return out
}

// Count is "N problem(s)" in words.
func (r *configReport) Count() string {
	if len(r.Problems) == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", len(r.Problems))
}

// Err is the report as an error, nil when there is no problem.
func (r *configReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return r
}

func (r *configReport) Error() string {
	return r.File + ": " + r.Count() + ":\n" + strings.Join(r.Lines(), "\n")
}

// readConfig reads, checks and prepares a config file: the structure
// first, then the validation of everything that was well-formed. The
// report lists every problem found; f is nil when nothing could be
// decoded.
func readConfig(path string, lookupEnv func(string) (string, bool)) (*File, *configReport) {
	data, err := readConfigFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &configReport{File: path, Problems: []configProblem{{Msg: err.Error()}}}
	}
	return checkConfig(path, data, lookupEnv)
}

func readConfigFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, maxConfigBytes+1))
}

// checkConfig is readConfig on a file's bytes; name is the file's name
// in the problems.
func checkConfig(name string, data []byte, lookupEnv func(string) (string, bool)) (*File, *configReport) {
	f, r := parseConfig(name, data)
	if f != nil {
		r.add(f.prepareEnv(lookupEnv)...)
		// "No cookie key" only restates that each key listed failed.
		if slices.ContainsFunc(r.Problems, func(p configProblem) bool { return strings.HasPrefix(p.Key, "cookie.keys[") }) {
			r.Problems = slices.DeleteFunc(r.Problems, func(p configProblem) bool {
				return p.Key == "cookie.keys" && strings.HasPrefix(p.Msg, "at least one key")
			})
		}
	}
	r.sort()
	return f, r
}

// parseConfig decodes one YAML document into a File, checking its
// structure on the way. The File holds everything that was well-formed
// (a malformed value is left at its zero value, an unknown key is
// ignored); it is nil only when the YAML itself cannot be read.
func parseConfig(name string, data []byte) (*File, *configReport) {
	r := &configReport{File: name, keys: map[string]yamlPos{}}
	fail := func(line, col int, msg string) (*File, *configReport) {
		r.Problems = append(r.Problems, configProblem{Line: line, Col: col, Msg: msg})
		return nil, r
	}
	if len(data) > maxConfigBytes {
		return fail(0, 0, fmt.Sprintf("config is larger than %d bytes", maxConfigBytes))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, 0, "config is empty")
		}
		line, msg := yamlSyntax(err)
		return fail(line, 0, msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line, _ = yamlSyntax(err)
		}
		r.Problems = append(r.Problems, configProblem{Line: line, Msg: "a second YAML document: the config is one document (remove the --- line)"})
	}
	if len(doc.Content) != 1 || doc.Content[0].ShortTag() == "!!null" {
		return fail(0, 0, "config is empty")
	}
	root := doc.Content[0]
	if resolveAlias(root).Kind != yaml.MappingNode {
		return fail(root.Line, root.Column, "the config must be a map of key: value lines, got "+describe(root))
	}
	w := &configWalker{report: r, inProgress: map[*yaml.Node]bool{}, done: map[walkKey]bool{}}
	w.walk(root, reflect.TypeFor[File](), "")
	var f File
	if err := root.Decode(&f); err != nil {
		// The walk refuses what the decoder would; this is a backstop
		// (excessive aliasing, say).
		return fail(0, 0, "cannot decode: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if pos, ok := r.keys["version"]; !ok {
		r.Problems = append(r.Problems, configProblem{Key: "version", Msg: fmt.Sprintf("required: set version: %d", configVersion)})
	} else if f.Version != configVersion && !r.refused("version") {
		r.Problems = append(r.Problems, configProblem{Line: pos.line, Col: pos.col, Key: "version", Msg: fmt.Sprintf("must be %d, got %d", configVersion, f.Version)})
	}
	return &f, r
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntax splits a YAML syntax error into its line and message.
func yamlSyntax(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, "not valid YAML: " + m[2]
	}
	return 0, "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// envKeys are the keys whose ${NAME} values resolveSecrets reads from the
// environment; anywhere else a ${NAME} would be taken literally.
var envKeys = regexp.MustCompile(`^(?:cookie\.keys\[\d+\]|store\.ldap\.bind_password|store\.(?:sqlite|postgres|sqlserver)\.dsn|state\.redis\.url|scim\.tokens\[\d+\]|idps\[\d+\]\.client_secret)$`)

const envKeysText = "cookie.keys, store.ldap.bind_password, store.<backend>.dsn, state.redis.url, scim.tokens and idps[].client_secret"

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

// configWalker checks a YAML node tree against a Go type as the YAML
// decoder would read it, reports what it would refuse or ignore, and
// removes that from the tree so the decoder reads the rest.
type configWalker struct {
	report     *configReport
	inProgress map[*yaml.Node]bool // collections being walked (an alias to one is a cycle)
	done       map[walkKey]bool    // anchored nodes already walked, with their verdict
}

func (w *configWalker) problem(n *yaml.Node, path, msg string) {
	w.report.Problems = append(w.report.Problems, configProblem{Line: n.Line, Col: n.Column, Key: path, Msg: msg})
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk checks n against t and reports false when the value as a whole
// must be dropped. Problems inside a collection are removed from it and
// the collection kept.
func (w *configWalker) walk(n *yaml.Node, t reflect.Type, path string) bool {
	node := n
	if n.Kind == yaml.AliasNode {
		if node = n.Alias; node == nil {
			w.problem(n, path, "an alias to nothing")
			return false
		}
	}
	if node.Kind == yaml.MappingNode || node.Kind == yaml.SequenceNode {
		if w.inProgress[node] {
			w.problem(n, path, "an alias to a value that contains it")
			return false
		}
		w.inProgress[node] = true
		defer delete(w.inProgress, node)
	}
	if node.Anchor != "" {
		k := walkKey{node, t}
		if ok, seen := w.done[k]; seen {
			return ok
		}
		ok := w.walkNode(node, t, path)
		w.done[k] = ok
		return ok
	}
	return w.walkNode(node, t, path)
}

func (w *configWalker) walkNode(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // the zero value, as the decoder leaves it
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || (n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textType)) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.problem(n, path, "invalid value: "+decodeMessage(err))
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.problem(n, path, wantMessage(t, n))
			return false
		}
		keys := structKeysOf(t)
		w.pairs(n, t, path, func(name string) (reflect.Type, bool) {
			if ft, ok := keys.fields[name]; ok {
				return ft, true
			}
			return keys.inline, keys.inline != nil || keys.opaque
		}, keys.names)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.problem(n, path, wantMessage(t, n))
			return false
		}
		w.pairs(n, t, path, func(string) (reflect.Type, bool) { return t.Elem(), true }, nil)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.problem(n, path, wantMessage(t, n))
			return false
		}
		for i, e := range n.Content {
			ep := fmt.Sprintf("%s[%d]", path, i)
			w.report.keys[ep] = yamlPos{e.Line, e.Column}
			if !w.walk(e, t.Elem(), ep) {
				n.Content[i] = emptyLike(e, t.Elem())
				w.report.bad = append(w.report.bad, ep)
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.problem(n, path, wantMessage(t, n))
			return false
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.problem(n, path, wantMessage(t, n))
			return false
		}
		if t.Kind() == reflect.String && envRef.MatchString(n.Value) && !envKeys.MatchString(path) {
			w.problem(n, path, fmt.Sprintf("%s is not expanded here: environment references are read only in %s", n.Value, envKeysText))
			return false
		}
	}
	return true
}

// pairs checks a mapping's keys and values. lookup gives the type of a
// key's value, or false for an unknown key; names are the known keys,
// for suggestions.
func (w *configWalker) pairs(n *yaml.Node, t reflect.Type, path string, lookup func(string) (reflect.Type, bool), names []string) {
	seen := map[string]*yaml.Node{}
	out := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			w.problem(k, path, "a key must be a name, not "+describe(k))
			continue
		}
		kp := k.Value
		if path != "" {
			kp = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			w.problem(k, kp, fmt.Sprintf("duplicate key (first on line %d); remove one", first.Line))
			continue
		}
		seen[k.Value] = k
		if k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			if w.merge(v, t, path) {
				out = append(out, n.Content[i], v)
			}
			continue
		}
		ft, ok := lookup(k.Value)
		if !ok {
			hint := suggest(k.Value, names)
			if e := elsewhere(k.Value); e != "" && !strings.HasPrefix(hint, "; did you mean") {
				hint = e
			}
			w.problem(k, kp, "unknown key"+hint)
			continue
		}
		if t.Kind() == reflect.Map && t.Key().Kind() != reflect.String {
			if err := k.Decode(reflect.New(t.Key()).Interface()); err != nil {
				w.problem(k, kp, wantMessage(t.Key(), k)+" as a key")
				continue
			}
		}
		w.report.keys[kp] = yamlPos{k.Line, k.Column}
		if ft == nil { // an opaque inline struct takes what it wants
			out = append(out, n.Content[i], v)
			continue
		}
		if !w.walk(v, ft, kp) {
			w.report.bad = append(w.report.bad, kp)
			if t.Kind() == reflect.Map {
				continue
			}
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: v.Line, Column: v.Column}
		}
		out = append(out, n.Content[i], v)
	}
	n.Content = out
}

// merge checks the value of a << merge key: a map, or a list of maps,
// each read as the enclosing map's type.
func (w *configWalker) merge(v *yaml.Node, t reflect.Type, path string) bool {
	const want = "a merge (<<) takes an alias to a map, or a list of them"
	switch resolveAlias(v).Kind {
	case yaml.MappingNode:
		return w.walk(v, t, path)
	case yaml.SequenceNode:
		if v.Kind == yaml.AliasNode {
			w.problem(v, path, want)
			return false
		}
		for _, e := range v.Content {
			if resolveAlias(e).Kind != yaml.MappingNode {
				w.problem(e, path, want)
				return false
			}
		}
		ok := true
		for _, e := range v.Content {
			ok = w.walk(e, t, path) && ok
		}
		return ok
	}
	w.problem(v, path, want)
	return false
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// emptyLike is what replaces a refused list element: null (the zero
// value), or an empty map where the list holds pointers to structs, so
// that no nil pointer reaches the validation.
func emptyLike(n *yaml.Node, t reflect.Type) *yaml.Node {
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// describe names what a node holds, for "got ..." in messages, without
// its value: a single value where a list or section is wanted may be a
// secret (cookie.keys: <the key>).
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// quoted is describe with a single value shown, for keys that take
// numbers, booleans and durations, which are no secrets.
func quoted(n *yaml.Node) string {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode {
		return describe(n)
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:40]) + "..."
	}
	return strconv.Quote(v)
}

// wantMessage says what a key of type t takes, and what it got.
func wantMessage(t reflect.Type, n *yaml.Node) string {
	n = resolveAlias(n)
	got := quoted(n)
	scalar := n.Kind == yaml.ScalarNode
	var hint string
	if scalar && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		plain := *n
		plain.Tag, plain.Style = "", 0
		if plain.Decode(reflect.New(t).Interface()) == nil {
			hint = "; write it without quotes"
		}
	}
	switch k := t.Kind(); {
	case t == durationType:
		if scalar && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			hint = "; a duration needs a unit: 30s, 5m, 24h"
		}
		return "want a duration like 24h, got " + got + hint
	case k == reflect.Bool:
		return "want true or false, got " + got + hint
	case k >= reflect.Int && k <= reflect.Int64:
		lo, hi := int64(math.MinInt64)>>(64-t.Bits()), int64(math.MaxInt64)>>(64-t.Bits())
		if scalar && hint == "" && isInteger(n.Value) {
			return fmt.Sprintf("want a whole number from %d to %d, got %s", lo, hi, n.Value)
		}
		return "want a whole number, got " + got + hint
	case k >= reflect.Uint && k <= reflect.Uintptr:
		if scalar && hint == "" && isInteger(n.Value) {
			return fmt.Sprintf("want a whole number from 0 to %d, got %s", uint64(math.MaxUint64)>>(64-t.Bits()), n.Value)
		}
		return "want a whole number, got " + got + hint
	case k == reflect.Float32 || k == reflect.Float64:
		return "want a number, got " + got + hint
	case k == reflect.String:
		return "want a single value, got " + describe(n)
	case k == reflect.Slice:
		if scalar {
			return "want a list, got a single value; put it in brackets, [like this], for a list of one"
		}
		return "want a list, got " + describe(n)
	case k == reflect.Map:
		return "want a map of name: value pairs, got " + describe(n)
	case k == reflect.Struct:
		return "want a section of key: value lines, got " + describe(n)
	}
	return "invalid value: got " + describe(n)
}

var integer = regexp.MustCompile(`^[-+]?(?:0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]+)$`)

func isInteger(s string) bool { return integer.MatchString(s) }

// decodeMessage is a decoder's error without its Go type names, for a
// type with its own unmarshaling.
func decodeMessage(err error) string {
	// The decoder's own type errors quote the value and name Go types.
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return "not a value this key takes"
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// structKeys are the keys a struct type reads, as the YAML decoder
// finds them: yaml tags, lower-cased field names, inline structs
// flattened.
type structKeys struct {
	fields map[string]reflect.Type
	names  []string     // sorted, for suggestions
	inline reflect.Type // the element type of an inline map taking every other key
	opaque bool         // an inline struct with its own unmarshaling takes any key
}

var structKeysCache sync.Map // reflect.Type → *structKeys

func structKeysOf(t reflect.Type) *structKeys {
	if k, ok := structKeysCache.Load(t); ok {
		return k.(*structKeys)
	}
	k := &structKeys{fields: map[string]reflect.Type{}}
	k.collect(t)
	for name := range k.fields {
		k.names = append(k.names, name)
	}
	slices.Sort(k.names)
	structKeysCache.Store(t, k)
	return k
}

func (k *structKeys) collect(t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(flags, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Map:
				k.inline = ft.Elem()
			case reflect.PointerTo(ft).Implements(unmarshalerType):
				k.opaque = true
			case ft.Kind() == reflect.Struct:
				k.collect(ft)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		k.fields[name] = f.Type
	}
}

// elsewhere says where in a config a key of this name belongs, when that
// is somewhere else (a top-level key written under an IdP, say).
func elsewhere(name string) string {
	homes := slices.Clone(keyHomes()[name])
	if len(homes) == 0 || len(homes) > 3 {
		return ""
	}
	var where []string
	if slices.Contains(homes, "") {
		where = append(where, "at the top level")
	}
	if homes = slices.DeleteFunc(homes, func(h string) bool { return h == "" }); len(homes) > 0 {
		where = append(where, "under "+strings.Join(homes, " or "))
	}
	return "; " + name + " goes " + strings.Join(where, " or ")
}

// keyHomes maps each key name of the config to the sections that take
// it, like idps[] or store.ldap ("" is the top level).
var keyHomes = sync.OnceValue(func() map[string][]string {
	homes := map[string][]string{}
	var visit func(t reflect.Type, path string, stack []reflect.Type)
	visit = func(t reflect.Type, path string, stack []reflect.Type) {
		for {
			switch t.Kind() {
			case reflect.Pointer:
				t = t.Elem()
				continue
			case reflect.Slice:
				t, path = t.Elem(), path+"[]"
				continue
			case reflect.Map:
				t, path = t.Elem(), path+".<name>"
				continue
			}
			break
		}
		if t.Kind() != reflect.Struct || slices.Contains(stack, t) || len(stack) > 10 {
			return
		}
		keys := structKeysOf(t)
		for _, n := range keys.names {
			homes[n] = append(homes[n], path)
			sub := n
			if path != "" {
				sub = path + "." + n
			}
			visit(keys.fields[n], sub, append(stack, t))
		}
	}
	visit(reflect.TypeFor[File](), "", nil)
	return homes
})

// suggest offers the known keys that the unknown one is likely a typo
// of: those within two edits (a swap of neighbours counts as one), or
// equal to it but for case, "_" and "-".
func suggest(key string, names []string) string {
	best, bestD := []string(nil), 3
	fold := func(s string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s)) }
	for _, name := range names {
		d := editDistance(key, name)
		if fold(key) == fold(name) {
			d = 0
		}
		if d > 2 || d >= utf8.RuneCountInString(key) && d > 0 {
			continue // a two-letter key two edits away is no typo of it
		}
		switch {
		case d < bestD:
			best, bestD = []string{name}, d
		case d == bestD:
			best = append(best, name)
		}
	}
	if len(best) == 0 {
		if len(names) > 0 && len(names) <= 8 {
			return "; valid here: " + strings.Join(names, ", ")
		}
		return ""
	}
	for i, b := range best {
		best[i] = strconv.Quote(b)
	}
	return "; did you mean " + strings.Join(best, " or ") + "?"
}

// editDistance is the optimal-string-alignment Damerau-Levenshtein
// distance, capped: anything above 2 is 3.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > 2 || d < -2 || len(ra) > 64 || len(rb) > 64 {
		return 3
	}
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], 3)
}

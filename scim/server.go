package scim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// Options are a Server's collaborators.
type Options struct {
	// BaseURL is the absolute URL of the SCIM root as clients reach it,
	// e.g. "https://app.example.com/.gatehouse/scim/v2"; it builds
	// meta.location.
	BaseURL string
	// Mount is the request path the root is served at, e.g.
	// "/.gatehouse/scim/v2".
	Mount  string
	Logger *zap.Logger
	// OnUserChange is told the ID of every user SCIM changed or deleted,
	// so that cached identities are dropped at once.
	OnUserChange func(id string)
	// OnRequest, when set, is told each request's operation, status and
	// duration (metrics).
	OnRequest func(op string, status int, d time.Duration)
	// RequestID, when set, gives the ID of the request in ctx for the
	// audit events (cmd passes proxy.RequestID).
	RequestID func(ctx context.Context) string
	// Audit receives one event per write (create, replace, patch,
	// deactivation, delete); default Logger.Named("audit").
	Audit *zap.Logger
}

// Server serves SCIM 2.0 over a provision.Directory.
type Server struct {
	cfg       Config
	store     provision.Directory
	groupDir  provision.GroupDirectory // nil when the store has no groups
	users     *resourceType
	groups    *resourceType
	base      string
	mount     string
	log       *zap.Logger
	audit     *zap.Logger
	reqID     func(context.Context) string
	hashes    [][sha256.Size]byte
	changed   func(string)
	onRequest func(op string, status int, d time.Duration)
	owned     []string
	writers   keyedLock // one PATCH of a resource at a time (serialize.go)
}

// NewServer builds the SCIM server. The store must implement
// provision.Directory; groups are served when it also implements
// provision.GroupDirectory.
func NewServer(cfg Config, store provision.Store, opts Options) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, ok := store.(provision.Directory)
	if !ok {
		return nil, errors.New("scim: the configured store does not support SCIM")
	}
	s := &Server{cfg: cfg, store: dir, base: strings.TrimSuffix(opts.BaseURL, "/"), mount: strings.TrimSuffix(opts.Mount, "/"),
		log: opts.Logger, audit: opts.Audit, changed: opts.OnUserChange, onRequest: opts.OnRequest,
		reqID: opts.RequestID}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.audit == nil {
		s.audit = s.log.Named("audit")
	}
	if s.changed == nil {
		s.changed = func(string) {}
	}
	for _, t := range cfg.Tokens {
		s.hashes = append(s.hashes, sha256.Sum256([]byte(t)))
	}
	for _, h := range cfg.TokenSHA256 {
		var d [sha256.Size]byte
		hex.Decode(d[:], []byte(h))
		s.hashes = append(s.hashes, d)
	}
	s.users = &resourceType{name: "User", endpoint: "/Users", core: userSchema(dir.Supports),
		hasExternalID: dir.Supports(provision.FieldExternalID)}
	if ent := enterpriseSchema(dir.Supports); len(ent.attrs) > 0 {
		s.users.ext = append(s.users.ext, ent)
	}
	if cfg.Extension.URN != "" {
		builtin := map[string]bool{}
		for _, sc := range s.users.schemas() {
			for _, f := range sc.fields() {
				builtin[f] = true
			}
		}
		for name, f := range cfg.Extension.Attributes {
			if builtin[f] || slices.Contains([]string{provision.FieldExternalID, provision.FieldGroups}, f) {
				return nil, fmt.Errorf("scim: extension.attributes.%s: field %q already holds a standard attribute", name, f)
			}
			if !dir.Supports(f) {
				return nil, fmt.Errorf("scim: extension.attributes.%s: the store has no place for field %q", name, f)
			}
		}
		s.users.ext = append(s.users.ext, customSchema(cfg.Extension, dir.Supports))
	}
	if g, ok := store.(provision.GroupDirectory); ok {
		s.groupDir = g
		s.groups = &resourceType{name: "Group", endpoint: "/Groups", core: groupSchema(), hasExternalID: true}
	}
	s.owned = cfg.OwnedFields
	if s.owned == nil {
		for _, sc := range s.users.schemas() {
			s.owned = append(s.owned, sc.fields()...)
		}
		if s.users.hasExternalID {
			s.owned = append(s.owned, provision.FieldExternalID)
		}
		slices.Sort(s.owned)
	}
	return s, nil
}

// OwnedFields lists the user fields SCIM may own (Login.Reserved): those
// of them SCIM has written to a user (User.SCIMFields) a login leaves alone.
func (s *Server) OwnedFields() []string { return slices.Clone(s.owned) }

// authorized checks the bearer token against every configured digest in
// constant time, and names the token that matched (see clientName).
func (s *Server) authorized(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match, which := 0, 0
	for i := range s.hashes {
		eq := subtle.ConstantTimeCompare(d[:], s.hashes[i][:])
		match |= eq
		which = subtle.ConstantTimeSelect(eq, i, which)
	}
	if match != 1 {
		return "", false
	}
	return s.clientName(which), true
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status   int
	scimType string
	client   string    // the token that authenticated the request
	note     auditNote // what a write did, for its audit event
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	op, err := s.serve(w, r)
	if err != nil {
		s.writeError(w, err)
	}
	if w.client != "" && isWrite(op) {
		s.auditWrite(r, w, op, w.client, pathID(r.URL.Path, s.mount), err)
	}
	fields := []zap.Field{zap.String("method", r.Method), zap.String("op", op), zap.Int("status", w.status),
		zap.Duration("duration", time.Since(start))}
	if s.onRequest != nil {
		s.onRequest(op, w.status, time.Since(start))
	}
	if w.scimType != "" {
		fields = append(fields, zap.String("scim_type", w.scimType))
	}
	if w.status >= 500 && w.status != http.StatusNotImplemented {
		s.log.Error("scim request", append(fields, zap.Error(err))...)
	} else {
		s.log.Info("scim request", fields...)
	}
}

// serve routes one request; op names it for the log.
func (s *Server) serve(w *statusWriter, r *http.Request) (string, error) {
	rel, ok := strings.CutPrefix(r.URL.Path, s.mount)
	if !ok {
		return "unknown", &Error{Status: 404, Detail: "not a SCIM endpoint"}
	}
	client, ok := s.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-scim"`)
		return "auth", &Error{Status: 401, Detail: "a valid bearer token is required"}
	}
	w.client = client
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	if len(seg) > 2 || seg[0] == "" {
		return "unknown", &Error{Status: 404, Detail: "no such SCIM endpoint"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	id := ""
	if len(seg) == 2 {
		id = seg[1]
	}
	if !plainText(id) {
		// No resource has such an ID, and a database would refuse it.
		return "unknown", &Error{Status: 404, Detail: "no such resource"}
	}
	switch seg[0] {
	case "ServiceProviderConfig":
		if id != "" {
			return "discovery", &Error{Status: 404, Detail: "no such SCIM endpoint"}
		}
		return "discovery", s.only(r, http.MethodGet, func() error { return s.writeJSON(w, 200, s.spConfig()) })
	case "ResourceTypes":
		return "discovery", s.only(r, http.MethodGet, func() error { return s.serveResourceTypes(w, id) })
	case "Schemas":
		return "discovery", s.only(r, http.MethodGet, func() error { return s.serveSchemas(w, id) })
	case "Me", "Bulk", ".search":
		return "unsupported", &Error{Status: 501, Detail: "/" + seg[0] + " is not implemented"}
	case "Users":
		return s.serveUsers(w, r, id)
	case "Groups":
		if s.groupDir == nil {
			return "groups", &Error{Status: 501, Detail: "the configured store does not keep groups over SCIM"}
		}
		return s.serveGroups(w, r, id)
	}
	return "unknown", &Error{Status: 404, Detail: "no such SCIM endpoint"}
}

func (s *Server) only(r *http.Request, method string, fn func() error) error {
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		return &Error{Status: 405, Detail: r.Method + " is not allowed here"}
	}
	return fn()
}

// readBody reads a capped JSON request body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, &Error{Status: 415, Detail: "send application/scim+json or application/json"}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &Error{Status: 413, Detail: fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes)}
	}
	if err != nil {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: "request body could not be read"}
	}
	return decodeJSON(b)
}

// readResource reads the body of a create or replace of rt and checks its
// schemas (checkResource).
func (s *Server) readResource(w http.ResponseWriter, r *http.Request, rt *resourceType) (map[string]any, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if err := rt.checkResource(body, s.cfg.quirks()); err != nil {
		return nil, err
	}
	return body, nil
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	w.Write(b)
	return nil
}

// writeError writes a SCIM error; store failures become 503 without
// detail (the log has it).
func (s *Server) writeError(w *statusWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, provision.ErrNotFound):
		e = &Error{Status: 404, Detail: "no such resource"}
	case errors.Is(err, provision.ErrConflict):
		e = &Error{Status: 409, Type: "uniqueness", Detail: "the name is already taken"}
	case errors.Is(err, provision.ErrVersion):
		e = &Error{Status: 412, Detail: "the resource changed since the version given in If-Match"}
	case errors.Is(err, provision.ErrInvalid):
		e = &Error{Status: 400, Type: "invalidValue", Detail: storeDetail(err)}
	case errors.Is(err, provision.ErrUnsupported):
		e = &Error{Status: 400, Type: "invalidFilter", Detail: storeDetail(err)}
	case errors.Is(err, provision.ErrTooMany):
		e = &Error{Status: 400, Type: "tooMany", Detail: "the filter reads more users than the store's time bound allows; narrow it (for example sw instead of co)"}
	default:
		e = &Error{Status: 503, Detail: "the user store is unavailable; try again later"}
	}
	body := map[string]any{"schemas": []string{URNError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.Type != "" {
		body["scimType"] = e.Type
		w.scimType = e.Type
	}
	if e.Status == 503 {
		w.Header().Set("Retry-After", "5")
	}
	s.writeJSON(w, e.Status, body)
}

// storeDetail keeps the part of a store error after the sentinel, which
// names the problem without internals.
func storeDetail(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{provision.ErrInvalid, provision.ErrUnsupported} {
		if i := strings.Index(msg, sentinel.Error()); i >= 0 {
			return strings.TrimPrefix(msg[i:], "provision: ")
		}
	}
	return "the request cannot be carried out"
}

// ifMatch reads If-Match: 0 when absent or "*".
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	v, ok := parseETag(h)
	if !ok {
		return 0, &Error{Status: 412, Detail: "If-Match does not name a version of this resource"}
	}
	return v, nil
}

func parseETag(h string) (int64, bool) {
	h = strings.TrimPrefix(strings.TrimSpace(h), "W/")
	h, ok := strings.CutPrefix(h, `"`)
	if !ok {
		return 0, false
	}
	h, ok = strings.CutSuffix(h, `"`)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(h, 10, 64)
	return v, err == nil && v > 0
}

// notModified answers If-None-Match on a single-resource GET.
func notModified(r *http.Request, version int64) bool {
	h := r.Header.Get("If-None-Match")
	if h == "" {
		return false
	}
	for _, t := range strings.Split(h, ",") {
		if v, ok := parseETag(t); ok && v == version {
			return true
		}
	}
	return false
}

package scim

import (
	"fmt"

	"gatehouse/provision"
)

// The entry points of a bulk import (gatehouse import). They take the raw
// JSON of one User resource and read it as a request body is read (size
// bound, JSON checks, schemas, extensions, canonical forms, quirks), so
// that a file and a SCIM client can never be read differently. Errors are
// *Error, worded as the request would have been answered.

// DecodeUser reads one User resource as a POST to /Users reads its body,
// with SCIMFields set to the fields it sets.
func (s *Server) DecodeUser(body []byte) (provision.User, error) {
	doc, err := s.importDoc(body)
	if err != nil {
		return provision.User{}, err
	}
	u, err := s.dec().user(s.users, doc, provision.User{Active: true})
	if err != nil {
		return provision.User{}, err
	}
	u.SCIMFields = withSCIMFields(nil, s.createdFields(u))
	return u, nil
}

// DecodeReplacement reads one User resource over the stored user cur as a
// PUT to /Users/{cur.ID} reads its body: fields its schemas own are
// replaced (absent ones cleared), fields no schema names and an absent
// active are kept, and SCIMFields gains the fields the body writes or
// clears. Version stays cur's, so that the store can refuse the write if
// cur has changed since it was read.
func (s *Server) DecodeReplacement(body []byte, cur provision.User) (provision.User, error) {
	doc, err := s.importDoc(body)
	if err != nil {
		return provision.User{}, err
	}
	u, err := s.dec().user(s.users, doc, cur)
	if err != nil {
		return provision.User{}, err
	}
	u.ID, u.Version, u.Groups = cur.ID, cur.Version, nil
	u.SCIMFields = withSCIMFields(cur.SCIMFields, s.replacedFields(cur, u))
	return u, nil
}

// importDoc applies the body bound and JSON checks of readBody.
func (s *Server) importDoc(body []byte) (map[string]any, error) {
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return nil, &Error{Status: 413, Detail: fmt.Sprintf("the resource is larger than %d bytes (scim.max_body_bytes)", s.cfg.MaxBodyBytes)}
	}
	return decodeJSON(body)
}

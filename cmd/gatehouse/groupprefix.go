package main

import (
	"fmt"
	"strings"

	"gatehouse/provision"
)

// checkGroupPrefixes refuses group prefixes of which one starts another
// (folded as group names are): with "corp:" on one IdP and "corp:eu:" on
// another, the first could assert "eu:admins" and hold the second's
// "admins". An IdP without a prefix is not checked: its bare names never
// start with another's prefix unless the operator trusts it to.
func (f *File) checkGroupPrefixes() []error {
	type prefix struct{ key, value, fold string }
	var all []prefix
	add := func(key, v string) {
		if v != "" {
			all = append(all, prefix{key, v, provision.NormalizeName(v)})
		}
	}
	for i, p := range f.IdPs {
		if !p.federation {
			add(fmt.Sprintf("idps[%d].mapping.group_prefix", i), p.Mapping.GroupPrefix)
		}
	}
	for i, fed := range f.Federations {
		add(fmt.Sprintf("federations[%d].mapping.group_prefix", i), fed.Mapping.GroupPrefix)
	}
	var errs []error
	for i, a := range all {
		for _, b := range all[i+1:] {
			if strings.HasPrefix(a.fold, b.fold) || strings.HasPrefix(b.fold, a.fold) {
				errs = append(errs, fmt.Errorf("%s: %q overlaps %s %q: one IdP could assert the other's groups", b.key, b.value, a.key, a.value))
			}
		}
	}
	return errs
}

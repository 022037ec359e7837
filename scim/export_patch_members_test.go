package scim

// SlowGroupPatch turns the group PATCH fast path off, so that a test can
// run one PATCH through both paths.
var SlowGroupPatch = &slowGroupPatch

package ldapdir

import _ "embed"

// SchemaAD is the gatehouse schema for Active Directory, in the LDIF form
// that ldifde imports on the schema master: it adds the attribute
// gatehouseState (multi-valued Unicode string, indexed) and allows it on
// users and containers. Its DNs end in the placeholder DC=X, which ldifde's
// -c option (or the caller) replaces with the forest root's DN.
//
//go:embed gatehouse-schema-ad.ldif
var SchemaAD string

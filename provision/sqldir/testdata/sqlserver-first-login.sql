SELECT u.id, u.user_name, u.external_id, u.email, u.display_name, u.given_name, u.family_name, u.extra, u.status, u.owner, u.scim_fields, u.version, u.created_at, u.updated_at FROM gatehouse_identities i JOIN gatehouse_users u ON u.id = i.user_id WHERE i.idp = @p1 AND i.key_kind = @p2 AND i.subject = @p3
BEGIN
SELECT u.id, u.user_name, u.external_id, u.email, u.display_name, u.given_name, u.family_name, u.extra, u.status, u.owner, u.scim_fields, u.version, u.created_at, u.updated_at FROM gatehouse_identities i WITH (UPDLOCK, SERIALIZABLE) JOIN gatehouse_users u WITH (UPDLOCK, SERIALIZABLE) ON u.id = i.user_id WHERE i.idp = @p1 AND i.key_kind = @p2 AND i.subject = @p3
SELECT count(*) FROM gatehouse_tombstones WHERE (idp = @p1 AND key_kind = @p2 AND subject = @p3) OR user_name_norm = @p4
INSERT INTO gatehouse_users (id, user_name, user_name_norm, external_id, email, email_norm, display_name, display_name_norm, given_name, family_name, extra, status, owner, version, created_at, updated_at) VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, 'active', 'jit', 1, @p12, @p13)
INSERT INTO gatehouse_identities (idp, key_kind, subject, user_id, created_at) VALUES (@p1, @p2, @p3, @p4, @p5)
INSERT INTO gatehouse_groups (id, name, name_norm, created_at, updated_at) SELECT @p1, @p2, @p3, @p4, @p5 WHERE NOT EXISTS (SELECT 1 FROM gatehouse_groups WITH (UPDLOCK, SERIALIZABLE) WHERE name_norm = @p6)
SELECT id FROM gatehouse_groups WHERE name_norm = @p1
INSERT INTO gatehouse_memberships (user_id, group_id, source, created_at) SELECT @p1, @p2, @p3, @p4 WHERE NOT EXISTS (SELECT 1 FROM gatehouse_memberships WITH (UPDLOCK, SERIALIZABLE) WHERE user_id = @p5 AND group_id = @p6 AND source = @p7)
SELECT g.name, g.name_norm, m.source FROM gatehouse_memberships m JOIN gatehouse_groups g ON g.id = m.group_id WHERE m.user_id = @p1 ORDER BY g.name
COMMIT

SELECT user_key FROM gatehouse_mapped_identities WHERE idp = @p1 AND key_kind = @p2 AND subject = @p3
BEGIN
SELECT user_key FROM gatehouse_mapped_identities WITH (UPDLOCK, SERIALIZABLE) WHERE idp = @p1 AND key_kind = @p2 AND subject = @p3
SELECT CAST(a.[UserID] AS nvarchar(4000)) FROM [dbo].[AppUsers] a WHERE a.[LoginName] = @p1
SELECT user_key FROM gatehouse_mapped_users WHERE user_name_norm = @p1
SELECT CAST(a.[UserID] AS nvarchar(4000)) FROM [dbo].[AppUsers] a WHERE lower(CAST(a.[LoginName] AS nvarchar(4000))) = @p1
DECLARE @k TABLE (k nvarchar(4000)); INSERT INTO [dbo].[AppUsers] ([Mail], [LoginName], [IsLocked]) OUTPUT CAST(INSERTED.[UserID] AS nvarchar(4000)) INTO @k VALUES (@p1, @p2, @p3); SELECT k FROM @k;
INSERT INTO gatehouse_mapped_users (user_key, user_name_norm, owner, status, version, created_at, updated_at) VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7)
INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (@p1, @p2, @p3, @p4, @p5)
DECLARE @r int; EXEC @r = sp_getapplock @Resource = @p1, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 10000; IF @r < 0 THROW 51000, 'gatehouse: could not take an application lock', 1;
SELECT CAST([RoleID] AS nvarchar(4000)) FROM [dbo].[Roles] WHERE [RoleName] = @p1 ORDER BY [RoleID]
SELECT CAST([RoleID] AS nvarchar(4000)) FROM [dbo].[Roles] WHERE lower(CAST([RoleName] AS nvarchar(4000))) = @p1 ORDER BY [RoleID]
DECLARE @k TABLE (k nvarchar(4000)); INSERT INTO [dbo].[Roles] ([RoleName]) OUTPUT CAST(INSERTED.[RoleID] AS nvarchar(4000)) INTO @k VALUES (@p1); SELECT k FROM @k;
SELECT count(*) FROM [dbo].[UserRoles] WHERE [UserID] = @p1 AND [RoleID] = @p2
SELECT count(*) FROM gatehouse_mapped_memberships WHERE user_key = @p1 AND group_key = @p2
INSERT INTO [dbo].[UserRoles] ([UserID], [RoleID]) VALUES (@p1, @p2)
INSERT INTO gatehouse_mapped_memberships (user_key, group_key, source, created_at) SELECT @p1, @p2, @p3, @p4 WHERE NOT EXISTS (SELECT 1 FROM gatehouse_mapped_memberships WITH (UPDLOCK, SERIALIZABLE) WHERE user_key = @p5 AND group_key = @p6 AND source = @p7)
SELECT CAST(g.[RoleID] AS nvarchar(4000)), CAST(g.[RoleName] AS nvarchar(4000)) FROM [dbo].[UserRoles] am JOIN [dbo].[Roles] g ON g.[RoleID] = am.[RoleID] WHERE am.[UserID] = @p1
SELECT group_key FROM gatehouse_mapped_memberships WHERE user_key = @p1 AND source = @p2
COMMIT

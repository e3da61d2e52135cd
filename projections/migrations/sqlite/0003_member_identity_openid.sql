-- Bindings are looked up by openid alone (the batch's openids, either kind): the primary key
-- (kind, openid) cannot serve that lookup.
CREATE INDEX member_identity_openid ON member_identity (openid);

-- Every change of a subscription refreshes its user's subscription status, which asks whether
-- the user has a subscription in each status. Indexed by (user_id, status), each question is one
-- index probe, however many subscriptions the user holds; by user_id alone it read them all. The
-- new index serves every lookup by user_id that the old one did.
CREATE INDEX subscriptions_user_id_status_idx ON subscriptions (user_id, status);
DROP INDEX subscriptions_user_id_idx;

---- create above / drop below ----

CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id);
DROP INDEX subscriptions_user_id_status_idx;

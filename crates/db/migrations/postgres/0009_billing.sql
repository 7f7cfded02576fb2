-- The account's subscription, wherever it was bought: the plan and status stay in
-- `subscription_plan` / `subscription_status` (`inactive` is "no subscription", as v1 shows it);
-- the store it came from, the end of the paid period and a pending cancellation join them.
-- One Stripe customer per account, ever.
ALTER TABLE users ADD COLUMN subscription_store TEXT CHECK (subscription_store IN ('stripe', 'apple', 'google'));
ALTER TABLE users ADD COLUMN current_period_end TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN stripe_customer_id TEXT;
CREATE UNIQUE INDEX users_stripe_customer_idx ON users (stripe_customer_id);

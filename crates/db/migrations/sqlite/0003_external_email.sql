-- An email address an external identity provider asserted without verifying it. It is shown
-- on the account (marked unverified) but is not unique and never signs in, receives a reset
-- link or links accounts; `email` holds only addresses the account may be reached and
-- recovered by.
ALTER TABLE users ADD COLUMN unverified_email TEXT;

-- External accounts (no password) provisioned before this rule kept unverified addresses in
-- the unique column, where they block the address's owner from registering: move them out.
UPDATE users SET unverified_email = email, email = NULL
WHERE email IS NOT NULL
  AND NOT email_verified
  AND hashed_password IS NULL
  AND id IN (SELECT user_id FROM user_identities);

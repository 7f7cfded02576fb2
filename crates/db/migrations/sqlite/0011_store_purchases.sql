-- In-app purchases (App Store, Google Play) and the account each belongs to: one purchase, one
-- account. `purchase_id` is Apple's `originalTransactionId`, or the SHA-256 (hex) of a Google
-- Play purchase token (a new token that names its predecessor in `linkedPurchaseToken` joins the
-- same account). `last_signed_at` is the time of the newest state applied (Apple's `signedDate`;
-- for Google, when the Publisher API was asked), so an older state arriving late is ignored.
CREATE TABLE store_purchases (
    id             BLOB PRIMARY KEY NOT NULL,
    store          TEXT NOT NULL CHECK (store IN ('apple', 'google')),
    purchase_id    TEXT NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id     TEXT NOT NULL,
    last_signed_at TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (store, purchase_id)
);

CREATE INDEX store_purchases_user_idx ON store_purchases (user_id);

-- Usage per account, metric and calendar month (`YYYY-MM`, UTC), and the same by dimension,
-- kept in the transactions that add to `usage_daily` and `usage_daily_dimensions`: reports
-- read the whole months of a range from here and only the days outside them from the daily
-- tables, and the busiest accounts of a period from one row per account.
CREATE TABLE usage_monthly (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric  TEXT NOT NULL,
    period  TEXT NOT NULL,
    value   BIGINT NOT NULL,
    PRIMARY KEY (user_id, metric, period)
);

-- The busiest accounts of a month, in order: `top-users` reads only the first rows.
CREATE INDEX usage_monthly_metric_period_idx ON usage_monthly (metric, period, value DESC, user_id);

INSERT INTO usage_monthly (user_id, metric, period, value)
SELECT user_id, metric, to_char(day, 'YYYY-MM'), SUM(value) FROM usage_daily GROUP BY user_id, metric, to_char(day, 'YYYY-MM');

CREATE TABLE usage_monthly_dimensions (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric  TEXT NOT NULL,
    period  TEXT NOT NULL,
    name    TEXT NOT NULL,
    item    TEXT NOT NULL,
    value   BIGINT NOT NULL,
    PRIMARY KEY (user_id, metric, period, name, item)
);

INSERT INTO usage_monthly_dimensions (user_id, metric, period, name, item, value)
SELECT user_id, metric, to_char(day, 'YYYY-MM'), name, item, SUM(value) FROM usage_daily_dimensions
GROUP BY user_id, metric, to_char(day, 'YYYY-MM'), name, item;

-- `top-users` reads `usage_monthly` now.
DROP INDEX usage_daily_metric_day_idx;


-- A summary reads an account's days outside whole months, every metric at once.
CREATE INDEX usage_daily_user_day_idx ON usage_daily (user_id, day, metric, value);

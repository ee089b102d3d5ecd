-- The development catalog: a few one-off products, a monthly plan with a trial and a yearly plan
-- charged up front.
-- Applied when SEED_DEV_CATALOG=true (make dev and tests); an upsert, so it is safe to re-run.
INSERT INTO products (sku, name, kind, price_amount, currency, billing_interval, trial_days, active) VALUES
    ('tshirt-classic', 'Classic T-shirt',        'one_off',      2500, 'usd', NULL,    0,  true),
    ('mug-enamel',     'Enamel mug',             'one_off',      1200, 'usd', NULL,    0,  true),
    ('sticker-pack',   'Sticker pack',           'one_off',       500, 'usd', NULL,    0,  true),
    ('poster-retired', 'Retired poster',         'one_off',      1500, 'usd', NULL,    0,  false),
    ('plan-monthly',   'cartflow Plus, monthly', 'subscription',  900, 'usd', 'month', 14, true),
    ('plan-yearly',    'cartflow Plus, yearly',  'subscription', 9000, 'usd', 'year',  0,  true)
ON CONFLICT (sku) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind, price_amount = EXCLUDED.price_amount,
    currency = EXCLUDED.currency, billing_interval = EXCLUDED.billing_interval,
    trial_days = EXCLUDED.trial_days, active = EXCLUDED.active, updated_at = now();

-- The ERP item master, one row per product, by sku.
-- unit_price comes as stored: text in SQLite (the mapper parses it exactly), NUMERIC on servers.
-- No watermark: the item master has no updated_at, so every run reads it whole (which also
-- lets a job in mirror mode, missing: deactivate, deactivate SKUs that left the ERP).
SELECT
    p.sku,
    p.name,
    p.unit_price
FROM products p
ORDER BY p.sku

-- Order headers with the money the ERP computed (a historical migration keeps it, CONTRACT
-- §3.5), one row per ERP order, by order_id (order_lines_totals.sql uses the same order).
-- :watermark_from  NULL on a full read; else only orders changed at or after it. The comparison
--                  comes first: PostgreSQL takes the parameter's type from its first use.
-- Money (ship_total, subtotal, tax, order_total) comes as stored: NUMERIC on servers, text in
-- SQLite.
SELECT
    o.order_id,
    o.order_number,
    o.customer_number,
    o.order_date,
    o.status,
    o.po_number,
    o.channel,
    o.currency,
    o.terms,
    o.notes,
    o.ship_method,
    o.ship_total,
    o.subtotal,
    o.tax,
    o.order_total,
    o.rep_number,
    o.updated_at
FROM orders o
WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY o.order_id

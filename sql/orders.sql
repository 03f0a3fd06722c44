-- Order headers, one row per ERP order, by order_id (order_lines.sql uses the same order, so
-- a merge of the two streams groups lines into orders one order at a time).
-- :watermark_from  NULL on a full read; else only orders changed at or after it. The comparison
--                  comes first: PostgreSQL takes the parameter's type from its first use.
-- Money (ship_total) and order_date come as stored: NUMERIC/TIMESTAMP on servers, text in SQLite.
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
    o.rep_number,
    o.updated_at
FROM orders o
WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY o.order_id

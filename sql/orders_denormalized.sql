-- One row per order line carrying its order's header columns, sorted by order_id, line_no so
-- that each order's rows are contiguous. LEFT JOIN keeps an order without lines (its line
-- columns are NULL) so that validation can reject it by name instead of losing it silently.
-- :watermark_from  NULL on a full read; else orders changed at or after it, with all their lines.
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
    o.updated_at,
    l.line_no,
    l.sku,
    l.qty,
    l.unit_price
FROM orders o
LEFT JOIN order_lines l ON l.order_id = o.order_id
WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY o.order_id, l.line_no

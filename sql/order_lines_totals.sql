-- Order lines with the ERP's pricing: the line's discount percentage (disc_pct) and the line
-- total it computed from it (line_total, for checking; the job derives lineTotal from the
-- discount). Sorted by order_id then line_no, as orders_totals.sql is by order_id, so lines are
-- merged into orders in bounded memory.
-- :watermark_from  NULL on a full read; else the lines of orders changed at or after it (a
--                  re-import replaces an order's items, so a changed order sends all its lines).
-- A line without a pricing row has no discount (disc_pct NULL).
SELECT
    l.order_id,
    l.line_no,
    l.sku,
    l.qty,
    l.unit_price,
    p.disc_pct,
    p.line_total
FROM order_lines l
JOIN orders o ON o.order_id = l.order_id
LEFT JOIN order_line_pricing p ON p.order_id = l.order_id AND p.line_no = l.line_no
WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY l.order_id, l.line_no

-- Order lines, sorted by order_id then line_no: an order's lines are contiguous, which is how
-- they are grouped into orders (alongside orders.sql, also by order_id) in bounded memory.
-- :watermark_from  NULL on a full read; else the lines of orders changed at or after it (a
--                  re-import replaces an order's items, so a changed order sends all its lines).
-- Lines whose order header is missing are not returned: they cannot be imported.
SELECT
    l.order_id,
    l.line_no,
    l.sku,
    l.qty,
    l.unit_price
FROM order_lines l
JOIN orders o ON o.order_id = l.order_id
WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY l.order_id, l.line_no

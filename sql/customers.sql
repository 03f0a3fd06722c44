-- Customers (business accounts), by customer_number.
-- :watermark_from  NULL on a full read; else only customers changed at or after it.
SELECT
    c.customer_number,
    c.company_name,
    c.email,
    c.phone,
    c.price_tier,
    c.terms,
    c.currency,
    c.rep_number,
    c.updated_at
FROM customers c
WHERE c.updated_at >= :watermark_from OR :watermark_from IS NULL
ORDER BY c.customer_number

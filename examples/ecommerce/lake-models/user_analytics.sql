-- User analytics: each customer's orders, lifetime value and segment (from the current rows).
SELECT c.id AS customer_id, c.country,
       count(o.id)::BIGINT AS orders,
       coalesce(sum(o.total_amount::DECIMAL(18,2)), 0)::DECIMAL(18,2) AS lifetime_value,
       CASE WHEN coalesce(sum(o.total_amount::DECIMAL(18,2)), 0) >= 1000 THEN 'vip'
            WHEN coalesce(sum(o.total_amount::DECIMAL(18,2)), 0) >= 200 THEN 'regular'
            WHEN count(o.id) > 0 THEN 'occasional'
            ELSE 'prospect' END AS segment
FROM silver.customers c LEFT JOIN silver.orders o ON o.customer_id = c.id
GROUP BY c.id, c.country

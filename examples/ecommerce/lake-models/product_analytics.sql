-- Product analytics: units sold, revenue and popularity rank of each product.
SELECT p.id AS product_id, p.name,
       coalesce(sum(i.quantity), 0)::BIGINT AS units_sold,
       coalesce(sum(i.quantity * i.price::DECIMAL(18,2)), 0)::DECIMAL(18,2) AS revenue,
       count(DISTINCT i.order_id)::BIGINT AS orders,
       rank() OVER (ORDER BY coalesce(sum(i.quantity), 0) DESC, p.id) AS popularity_rank
FROM silver.products p LEFT JOIN silver.order_items i ON i.product_id = p.id
GROUP BY p.id, p.name

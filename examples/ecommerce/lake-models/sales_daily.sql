-- Sales trends by day (order creation time, UTC): orders and revenue.
SELECT date_trunc('day', created_at)::DATE AS day,
       count(*)::BIGINT AS orders,
       sum(total_amount::DECIMAL(18,2))::DECIMAL(18,2) AS revenue
FROM silver.orders
WHERE created_at IS NOT NULL
GROUP BY 1

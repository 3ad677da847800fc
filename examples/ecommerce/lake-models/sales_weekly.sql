-- Sales trends by ISO week (Monday), from the daily model.
SELECT date_trunc('week', day)::DATE AS week,
       sum(orders)::BIGINT AS orders,
       sum(revenue)::DECIMAL(18,2) AS revenue
FROM gold.sales_daily
GROUP BY 1

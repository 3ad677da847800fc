-- The e-commerce demo schema (customers, products, orders, order_items), as in the seed systems.
CREATE TABLE IF NOT EXISTS customers (
    id SERIAL PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    country CHAR(2) NOT NULL DEFAULT 'US',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    id SERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    price DECIMAL(10,2) NOT NULL,
    stock_quantity INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS orders (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    total_amount DECIMAL(10,2) NOT NULL,
    status VARCHAR(50) NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS order_items (
    id SERIAL PRIMARY KEY,
    order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE,
    product_id INTEGER REFERENCES products(id),
    quantity INTEGER NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX IF NOT EXISTS order_items_order_id ON order_items (order_id);
CREATE INDEX IF NOT EXISTS orders_customer_id ON orders (customer_id);

-- Seed rows, once.
INSERT INTO customers (email, name, country)
SELECT 'customer' || g || '@example.com', 'Customer ' || g, (ARRAY['US','DE','FR','JP','BR'])[1 + g % 5]
FROM generate_series(1, 200) g
WHERE NOT EXISTS (SELECT 1 FROM customers);

INSERT INTO products (name, description, price, stock_quantity)
SELECT c.color || ' ' || c.item,
       'A ' || lower(c.color) || ' ' || lower(c.item) || ' for home and office, catalogue number ' || g,
       round((5 + (g * 37 % 500))::numeric + 0.99, 2), 1000
FROM generate_series(1, 100) g,
     LATERAL (SELECT (ARRAY['Amber','Oak','Slate','Red','Ivory','Teal','Walnut','Copper','Linen','Cobalt'])[1 + g % 10] AS color,
                     (ARRAY['Desk Lamp','Chair','Kettle','Notebook','Backpack','Mug','Rug','Clock','Shelf','Blanket'])[1 + (g / 10) % 10] AS item) c
WHERE NOT EXISTS (SELECT 1 FROM products);

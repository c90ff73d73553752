"""A small but realistic shop database for the demo: customers with personal data, orders,
products, payments with card numbers, and two views. Deterministic, so it can be rebuilt."""

import random
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT,
    date_of_birth DATE,
    street_address TEXT,
    city TEXT,
    postal_code TEXT,
    country TEXT NOT NULL DEFAULT 'DE',
    marketing_opt_in BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ordered_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    shipping_address TEXT,
    total_cents INTEGER NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    cardholder_name TEXT NOT NULL,
    card_number TEXT NOT NULL,
    card_expiry TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    paid_at TIMESTAMP NOT NULL,
    client_ip TEXT
);
CREATE VIEW customer_order_totals AS
    SELECT c.id AS customer_id, c.email, COUNT(o.id) AS order_count,
           COALESCE(SUM(o.total_cents), 0) AS lifetime_value_cents
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.email;
CREATE VIEW daily_revenue AS
    SELECT date(p.paid_at) AS day, COUNT(*) AS payments, SUM(p.amount_cents) AS revenue_cents
    FROM payments p GROUP BY date(p.paid_at);
"""

FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elif",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katja",
    "Luca",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sami",
    "Tara",
    "Umut",
]
LAST = [
    "Schmidt",
    "Müller",
    "Weber",
    "Fischer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
]
CITIES = [
    ("Berlin", "10115"),
    ("Hamburg", "20095"),
    ("München", "80331"),
    ("Köln", "50667"),
    ("Leipzig", "04109"),
    ("Dresden", "01067"),
    ("Bremen", "28195"),
]
STREETS = ["Hauptstraße", "Gartenweg", "Bahnhofstraße", "Lindenallee", "Schillerstraße"]
PRODUCTS = [
    ("Espresso beans 1kg", "coffee", 1890),
    ("Pour-over kettle", "equipment", 4500),
    ("Ceramic mug", "tableware", 1200),
    ("Hand grinder", "equipment", 8900),
    ("Oat milk 1l", "grocery", 249),
    ("Filter papers (100)", "equipment", 599),
    ("Decaf beans 500g", "coffee", 1150),
    ("Travel cup", "tableware", 2200),
]
STATUSES = ["paid", "paid", "paid", "shipped", "delivered", "cancelled"]


def luhn_complete(prefix, length=16):
    """A card number with a valid Luhn check digit: realistic, and never a real card."""
    digits = [int(d) for d in prefix]
    while len(digits) < length - 1:
        digits.append(0)
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def build_shop_database(path, customers=200, seed=7):
    """(Re)create the shop database at path; returns the row counts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    rng = random.Random(seed)  # noqa: S311  (sample data, not secrets)
    db = sqlite3.connect(tmp)
    db.executescript(SCHEMA)
    start = datetime(2025, 1, 1, 9, 0)
    for cid in range(1, customers + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, postal = rng.choice(CITIES)
        db.execute(
            "INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                cid,
                first,
                last,
                f"{first}.{last}.{cid}@example.com".lower(),
                f"+49 30 {rng.randint(1000000, 9999999)}",
                (date(1950, 1, 1) + timedelta(days=rng.randint(0, 18000))).isoformat(),
                f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
                city,
                postal,
                "DE",
                rng.random() < 0.4,
                (start + timedelta(hours=cid * 7)).isoformat(" "),
            ),
        )
    for pid, (name, category, price) in enumerate(PRODUCTS, start=1):
        db.execute(
            "INSERT INTO products VALUES (?,?,?,?,?,?,?)",
            (
                pid,
                f"SKU-{pid:04d}",
                name,
                category,
                f"{name} from our range.",
                price,
                rng.randint(0, 500),
            ),
        )
    order_id = item_id = 0
    for cid in range(1, customers + 1):
        for _ in range(rng.randint(0, 4)):
            order_id += 1
            when = start + timedelta(hours=rng.randint(0, 24 * 600))
            items = [
                (rng.randint(1, len(PRODUCTS)), rng.randint(1, 3)) for _ in range(rng.randint(1, 4))
            ]
            total = sum(PRODUCTS[p - 1][2] * q for p, q in items)
            db.execute(
                "INSERT INTO orders VALUES (?,?,?,?,?,?)",
                (
                    order_id,
                    cid,
                    when.isoformat(" "),
                    rng.choice(STATUSES),
                    f"{rng.choice(STREETS)} {rng.randint(1, 120)}, {rng.choice(CITIES)[0]}",
                    total,
                ),
            )
            for product_id, quantity in items:
                item_id += 1
                db.execute(
                    "INSERT INTO order_items VALUES (?,?,?,?,?)",
                    (item_id, order_id, product_id, quantity, PRODUCTS[product_id - 1][2]),
                )
            db.execute(
                "INSERT INTO payments VALUES (?,?,?,?,?,?,?,?)",
                (
                    order_id,
                    order_id,
                    f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    luhn_complete(
                        rng.choice(["4", "51", "55", "37"]) + str(rng.randint(10**8, 10**9 - 1))
                    ),
                    f"{rng.randint(1, 12):02d}/{rng.randint(26, 31)}",
                    total,
                    (when + timedelta(minutes=3)).isoformat(" "),
                    f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                    f"{rng.randint(1, 254)}",
                ),
            )
    db.commit()
    counts = {
        table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("customers", "products", "orders", "order_items", "payments")
    }
    db.close()
    tmp.replace(path)
    return counts

-- The customer master (UpsertCustomer, GetCustomer, ListCustomers): who an
-- order is for, the defaults an order takes when it leaves them empty, and
-- the rules the departments apply to the customer's orders. Each order keeps
-- the customer it was made for and a copy of those rules as they stood then.

-- Customers are replaced whole by UpsertCustomer and never deleted (orders
-- refer to them). Enum and list columns hold what the service validated;
-- the checks back the bounds that a change to the service could forget.
CREATE TABLE customers (
    -- Caller-chosen code, 1-64 characters of A-Z a-z 0-9 . _ - ("NORDWIND").
    customer_id                TEXT PRIMARY KEY,
    -- Trimmed, unique regardless of case (customers_name_unique below), so
    -- a typo in the case of a name cannot make a second customer.
    name                       TEXT NOT NULL,
    -- ISO 3166-1 alpha-2, upper case.
    country                    TEXT NOT NULL,
    -- Defaults for orders that leave them empty: ISO 4217 code, payment
    -- terms, Incoterms 2020 code.
    currency                   TEXT NOT NULL,
    payment_terms              TEXT NOT NULL,
    incoterm                   TEXT NOT NULL,
    -- Where the notice webhook posts this customer's notices; '' = the
    -- deployment's GENDAN_ORDERS__NOTICE_WEBHOOK_URL.
    notice_webhook_url         TEXT NOT NULL DEFAULT '',
    -- gendan.v1.InspectionLevel number (0 = general level II). Only refuses
    -- negatives: a level added to the proto later needs no migration.
    inspection_level           INTEGER NOT NULL DEFAULT 0 CHECK (inspection_level >= 0),
    -- Final-inspection AQL for major defects; NULL = the product's plan decides.
    major_aql                  DOUBLE PRECISION,
    -- Failed final inspections before a person decides; 0 = the deployment's default.
    final_inspection_failures  INTEGER NOT NULL DEFAULT 0
                               CHECK (final_inspection_failures BETWEEN 0 AND 10),
    -- Reminder days after a due date; empty = finance's schedule.
    dunning_reminder_days      INTEGER[] NOT NULL DEFAULT '{}',
    -- Minor units of `currency`; 0 = no limit.
    credit_limit_minor         BIGINT NOT NULL DEFAULT 0
                               CHECK (credit_limit_minor BETWEEN 0 AND 1000000000000000),
    -- Basis points; 0 = no minimum margin.
    min_margin_bp              INTEGER NOT NULL DEFAULT 0 CHECK (min_margin_bp BETWEEN 0 AND 10000),
    -- created_at is kept when the customer is replaced; updated_at is the
    -- last UpsertCustomer.
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);

-- One name per customer regardless of case; CreateOrder looks customers up
-- by lower(name) through it. The service maps a violation of this index (by
-- its name) to an invalid `name`.
CREATE UNIQUE INDEX customers_name_unique ON customers (lower(name));

-- customer_id: the customer master's id of the order's customer (NULL for
-- orders created before the master existed; those keep only `customer`).
-- customer_rules: the encoded gendan.v1.CustomerRules copied from the
-- customer when the order was created, so a later change to the customer
-- does not change an order already made (NULL for those older orders).
-- Adding columns rewrites no row, so the closed-order trigger is not involved.
ALTER TABLE orders
    ADD COLUMN customer_id     TEXT REFERENCES customers (customer_id),
    ADD COLUMN customer_rules  BYTEA;

-- ListOrders by customer id, newest first (by name: orders_by_customer).
CREATE INDEX orders_by_customer_id ON orders (customer_id, created_at DESC, order_id DESC);

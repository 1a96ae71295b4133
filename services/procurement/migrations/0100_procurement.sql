-- Quantities are BIGINT thousandths of the material's unit (_milli) and
-- scrap allowances basis points, so netting is exact integer arithmetic;
-- money is BIGINT minor units of the supplier's currency.

CREATE TABLE materials (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE suppliers (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE supplier_offers (
    supplier          TEXT NOT NULL REFERENCES suppliers (code),
    material          TEXT NOT NULL REFERENCES materials (code),
    lead_time_days    INTEGER NOT NULL CHECK (lead_time_days >= 0),
    unit_price_minor  BIGINT NOT NULL CHECK (unit_price_minor >= 0),
    moq_milli         BIGINT NOT NULL CHECK (moq_milli >= 0),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier, material)
);

CREATE INDEX supplier_offers_by_material ON supplier_offers (material);

-- SetBillOfMaterials replaces all lines of a product at once.
CREATE TABLE boms (
    product     TEXT PRIMARY KEY,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE bom_lines (
    product         TEXT NOT NULL REFERENCES boms (product) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    material        TEXT NOT NULL REFERENCES materials (code),
    per_unit_milli  BIGINT NOT NULL CHECK (per_unit_milli > 0),
    scrap_bp        BIGINT NOT NULL CHECK (scrap_bp BETWEEN 0 AND 10000),
    PRIMARY KEY (product, material)
);

-- Accepted stock on hand. Reserved quantities are part of it.
CREATE TABLE stock (
    material       TEXT PRIMARY KEY REFERENCES materials (code),
    on_hand_milli  BIGINT NOT NULL CHECK (on_hand_milli >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per order that ProcureMaterials handled (or CancelMaterials
-- reached first): the idempotency key of both commands.
CREATE TABLE procurements (
    order_id                   TEXT PRIMARY KEY,
    status                     TEXT NOT NULL CHECK (status IN ('ordered', 'ready', 'cancelled')),
    expected_ready_date        DATE NOT NULL,
    ready_on                   DATE,
    purchase_orders_cancelled  INTEGER NOT NULL DEFAULT 0,
    reservations_released      INTEGER NOT NULL DEFAULT 0,
    cancel_reason              TEXT,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Gross requirement per material as exploded when procured.
CREATE TABLE requirements (
    order_id        TEXT NOT NULL REFERENCES procurements (order_id),
    material        TEXT NOT NULL REFERENCES materials (code),
    required_milli  BIGINT NOT NULL CHECK (required_milli >= 0),
    PRIMARY KEY (order_id, material)
);

-- Stock held for an order: from free stock when procured, and what its
-- purchase orders delivered once accepted.
CREATE TABLE reservations (
    order_id        TEXT NOT NULL,
    material        TEXT NOT NULL REFERENCES materials (code),
    quantity_milli  BIGINT NOT NULL CHECK (quantity_milli >= 0),
    PRIMARY KEY (order_id, material)
);

CREATE INDEX reservations_by_material ON reservations (material);

CREATE TABLE purchase_orders (
    po_id             UUID PRIMARY KEY,
    order_id          TEXT NOT NULL,
    supplier          TEXT NOT NULL REFERENCES suppliers (code),
    material          TEXT NOT NULL REFERENCES materials (code),
    quantity_milli    BIGINT NOT NULL CHECK (quantity_milli > 0),
    unit_price_minor  BIGINT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    expected_date     DATE NOT NULL,
    confirmed_eta     DATE,
    status            TEXT NOT NULL
                      CHECK (status IN ('open', 'confirmed', 'received', 'cancelled')),
    accepted_milli    BIGINT NOT NULL DEFAULT 0 CHECK (accepted_milli >= 0),
    rejected_milli    BIGINT NOT NULL DEFAULT 0 CHECK (rejected_milli >= 0),
    replaces          UUID REFERENCES purchase_orders (po_id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX purchase_orders_by_order ON purchase_orders (order_id);
CREATE INDEX purchase_orders_open_by_material ON purchase_orders (material)
    WHERE status IN ('open', 'confirmed');

-- Which order counts on how much of a purchase order. The order a PO was
-- placed for is allocated its shortage; the MOQ surplus stays unallocated
-- and a later order may claim it. received_milli is the part already
-- accepted and turned into the order's reservation.
CREATE TABLE po_allocations (
    po_id           UUID NOT NULL REFERENCES purchase_orders (po_id),
    order_id        TEXT NOT NULL,
    quantity_milli  BIGINT NOT NULL CHECK (quantity_milli > 0),
    received_milli  BIGINT NOT NULL DEFAULT 0
                    CHECK (received_milli >= 0 AND received_milli <= quantity_milli),
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (po_id, order_id)
);

CREATE INDEX po_allocations_by_order ON po_allocations (order_id);

-- Lots the WMS received against purchase orders, and their incoming
-- inspection.
CREATE TABLE lots (
    po_id                    UUID NOT NULL REFERENCES purchase_orders (po_id),
    lot                      TEXT NOT NULL,
    material                 TEXT NOT NULL,
    quantity_milli           BIGINT NOT NULL CHECK (quantity_milli > 0),
    received_at              TIMESTAMPTZ NOT NULL,
    status                   TEXT NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'passed', 'failed')),
    inspection_id            TEXT,
    decided_at               TIMESTAMPTZ,
    returned_to_supplier_at  TIMESTAMPTZ,
    replacement_po_id        UUID REFERENCES purchase_orders (po_id),
    PRIMARY KEY (po_id, lot)
);

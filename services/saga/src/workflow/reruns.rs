//! The steps that run again, by what sets them off: a remake after a
//! failed final inspection, the rework loop, an amendment (the review
//! always, then what the change touches), and a claim settled by making its
//! goods good. The engine runs each listed step with its next revision when
//! its gates allow; a step listed twice for one change still runs once.

/// Steps a remake runs again: a new production run of the whole lot, the
/// materials for it (what the order held went into the scrapped goods), then
/// its inspection.
pub(super) const REMAKE: &[&str] = &[
    "plan_production",
    "procure_materials",
    "materials_ready",
    "production_completed",
    "plan_rework",
    "rework_done",
    "request_final_inspection",
    "final_inspection_passed",
];

/// Steps an amendment always runs again: the review of the amended order
/// (materials, capacity, the customer asked if the date cannot be met, the
/// cost estimate and a person asked if its margin is too thin) and its
/// confirmation with the new promise.
pub const AMEND_REVIEW: &[&str] = &[
    "check_materials",
    "capacity_check",
    "clarify_delivery_date",
    "quote_freight",
    "estimate_inspection",
    "estimate_costs",
    "review_margin",
    "confirm_order",
];

/// Steps an amendment of the goods (products, specs, quantities) runs
/// again when they have run: each department adjusts its work to the
/// amended order (see docs/exceptions.md). Steps not yet started simply run
/// with the amended order when their turn comes.
pub const AMEND_ADJUST: &[&str] = &[
    "open_receivable",
    "plan_production",
    "procure_materials",
    "materials_ready",
    "production_completed",
    "request_final_inspection",
    "final_inspection_passed",
    "prepare_packing",
    "packing_checked",
    "prepare_documents",
];

/// Steps an amendment of prices alone runs again when they have run: the
/// receivable, the documents (the commercial invoice), and the estimate and
/// its margin question (a new price is a new margin; the review runs them
/// again anyway, and the engine runs a step once).
pub const AMEND_PRICES: &[&str] = &[
    "open_receivable",
    "prepare_documents",
    "estimate_costs",
    "review_margin",
];

/// Steps a claim settled by replacement runs again for the claimed goods:
/// made from new material, inspected, packed, shipped and delivered, then
/// the claim resolved.
pub(super) const REPLACE_CLAIMED: &[&str] = &[
    "plan_production",
    "procure_materials",
    "materials_ready",
    "production_completed",
    "request_final_inspection",
    "final_inspection_passed",
    "prepare_packing",
    "packing_checked",
    "prepare_documents",
    "book_shipment",
    "shipped",
    "delivered",
    "resolve_redelivery",
];

/// Steps a claim settled by rework runs again for the claimed goods: the
/// returned goods reworked, then as for a replacement.
pub(super) const REWORK_CLAIMED: &[&str] = &[
    "plan_rework",
    "rework_done",
    "request_final_inspection",
    "final_inspection_passed",
    "prepare_packing",
    "packing_checked",
    "prepare_documents",
    "book_shipment",
    "shipped",
    "delivered",
    "resolve_redelivery",
];

/// Steps the rework loop runs again after a failed final inspection.
pub(super) const REWORK_LOOP: &[&str] = &[
    "plan_rework",
    "rework_done",
    "request_final_inspection",
    "final_inspection_passed",
];

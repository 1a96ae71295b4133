//! Payloads of the procurement service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    CheckMaterials,
    ProcureMaterials,
    CancelMaterials,
    MaterialsChecked,
    MaterialsOrdered,
    MaterialsDelayed,
    MaterialsReady,
    MaterialsCancelled,
    ProcurementFailed,
    GoodsReceived,
    PurchaseOrderPlaced,
    WmsGoodsReceived,
    PurchaseOrderLate,
    ResourceMaterials,
    MaterialsResourced,
    AcceptSupplierDelay,
    SupplierDelayAccepted,
);

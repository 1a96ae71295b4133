//! Payloads of the logistics service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    PreparePacking,
    PrepareDocuments,
    BookShipment,
    CancelShipment,
    PackingListReady,
    PackingChecked,
    DocumentsReady,
    DocumentsRejected,
    ShipmentBooked,
    Shipped,
    Delivered,
    ShipmentCancelled,
    TrackingUpdated,
    WmsPacked,
    WmsShipped,
    CarrierTracking,
    CarrierDelivered,
);

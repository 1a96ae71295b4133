//! Payloads of the logistics service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    PreparePacking,
    PrepareDocuments,
    BookShipment,
    CancelShipment,
    PackingListReady,
    PackingListFailed,
    PackingChecked,
    DocumentsReady,
    DocumentsRejected,
    ShipmentBooked,
    ShipmentBookingFailed,
    Shipped,
    Delivered,
    ShipmentCancelled,
    TrackingUpdated,
    WmsPacked,
    WmsShipped,
    CarrierTracking,
    CarrierDelivered,
    ShipmentLate,
    CarrierCargoException,
    CargoClaimOpened,
);

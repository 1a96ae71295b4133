//! Payloads of the logistics service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    PreparePacking,
    PrepareDocuments,
    BookShipment,
    QuoteFreight,
    CancelShipment,
    PackingListReady,
    PackingListFailed,
    PackingChecked,
    DocumentsReady,
    DocumentsRejected,
    ShipmentBooked,
    ShipmentBookingFailed,
    FreightQuoted,
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

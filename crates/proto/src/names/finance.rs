//! Payloads of the finance service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    OpenReceivable,
    InvoiceBalance,
    CancelReceivable,
    ReceivableOpened,
    InvoiceIssued,
    DepositReceived,
    PaymentReceived,
    OrderPaidInFull,
    ReceivableCancelled,
    CostOverrun,
    ReceivableOpeningFailed,
    NoInvoiceDue,
    PaymentReminder,
    PaymentEscalated,
    ExtendPaymentDue,
    PaymentDueExtended,
    ReferToCollection,
    ReferredToCollection,
    RefundPaid,
    IssueCreditNote,
    CreditNoteIssued,
);

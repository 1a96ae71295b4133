//! Payloads of the quality service (commands to it, events from it, and the
//! external messages it consumes).

type_names!(
    RequestFinalInspection,
    EstimateInspection,
    InspectionEstimated,
    FinalInspectionOpened,
    FinalInspectionPassed,
    FinalInspectionFailed,
    IncomingInspectionPassed,
    IncomingInspectionFailed,
    IncomingInspectionOpened,
    NonconformanceClosed,
    InProcessInspectionOpened,
    InProcessInspectionPassed,
    InProcessInspectionFailed,
);

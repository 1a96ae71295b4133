//! Generated protobuf types and gRPC stubs for the `gendan.v1` package.
//!
//! Every message on the bus is an [`v1::Envelope`] whose payload is one of the
//! messages here; [`Message`](prost::Message) + [`TypeName`] give each payload a
//! stable fully qualified type name (`gendan.v1.OrderCreated`) that consumers
//! dispatch on. [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.
//! [`money`] and the date helpers turn the messages' minor units and dates
//! into what people read; [`minor_exponent`] says how many digits a
//! currency's minor unit has.

pub mod v1 {
    tonic::include_proto!("gendan.v1");
}

mod convert;
mod money;

pub use convert::{date_from_str, date_to_string, timestamp_from, timestamp_to};
pub use money::{amount, minor_exponent, money};

/// Encoded `FileDescriptorSet` of every gendan proto file.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gendan_descriptor");

/// Fully qualified protobuf names of bus payloads (`gendan.v1.<Message>`).
///
/// prost implements [`prost::Name`] when asked for it; a small trait of our own
/// keeps the name next to the message without extra build configuration.
pub trait TypeName {
    const TYPE_NAME: &'static str;
}

macro_rules! type_names {
    ($($message:ident),* $(,)?) => {
        $(impl $crate::TypeName for $crate::v1::$message {
            const TYPE_NAME: &'static str = concat!("gendan.v1.", stringify!($message));
        })*
    };
}

// One file per service's bus payloads, so each service's messages are
// registered next to each other.
mod names;

/// Lower-case names of the shared vocabularies, as logs, the CLI and the
/// read models show them (`EXCEPTION_KIND_FINAL_INSPECTION_FAILED` →
/// `final_inspection_failed`), and back.
macro_rules! short_names {
    ($($enum:ident => $prefix:literal),* $(,)?) => {
        $(impl v1::$enum {
            pub fn short_name(self) -> String {
                self.as_str_name().trim_start_matches($prefix).to_lowercase()
            }

            /// Inverse of `short_name`; `None` for unknown names and for
            /// the unspecified value.
            pub fn from_short_name(name: &str) -> Option<Self> {
                let full = format!("{}{}", $prefix, name.trim().to_uppercase());
                Self::from_str_name(&full).filter(|value| *value as i32 != 0)
            }
        })*
    };
}

short_names!(
    ExceptionKind => "EXCEPTION_KIND_",
    Department => "DEPARTMENT_",
    DecisionKind => "DECISION_KIND_",
    ClaimKind => "CLAIM_KIND_",
    InspectionLevel => "INSPECTION_LEVEL_",
);

impl v1::Phase {
    /// Lower-case name used in logs, the CLI and the saga tables ("review").
    pub fn short_name(self) -> &'static str {
        match self {
            v1::Phase::Unspecified => "unspecified",
            v1::Phase::Received => "received",
            v1::Phase::Review => "review",
            v1::Phase::Confirmed => "confirmed",
            v1::Phase::Materials => "materials",
            v1::Phase::Production => "production",
            v1::Phase::FinalInspection => "final_inspection",
            v1::Phase::Packing => "packing",
            v1::Phase::Documents => "documents",
            v1::Phase::Shipping => "shipping",
            v1::Phase::Acceptance => "acceptance",
            v1::Phase::Settlement => "settlement",
            v1::Phase::Closed => "closed",
            v1::Phase::Cancelled => "cancelled",
        }
    }

    /// Inverse of [`short_name`](Self::short_name).
    pub fn from_short_name(name: &str) -> Option<Self> {
        (0..=13)
            .filter_map(|n| v1::Phase::try_from(n).ok())
            .find(|phase| phase.short_name() == name)
    }
}

//! Which milestone is which: its [`Kind`] and what it is about, written
//! `kind` or `kind:subject` (also its key in the saved JSON).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a milestone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Confirmed,
    MaterialsIn,
    ProductionStart,
    StageDone,
    InProcessInspection,
    FinalInspection,
    PackingDone,
    DocumentsReady,
    ExFactory,
    Delivered,
    Accepted,
    PaymentDue,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Confirmed,
        Kind::MaterialsIn,
        Kind::ProductionStart,
        Kind::StageDone,
        Kind::InProcessInspection,
        Kind::FinalInspection,
        Kind::PackingDone,
        Kind::DocumentsReady,
        Kind::ExFactory,
        Kind::Delivered,
        Kind::Accepted,
        Kind::PaymentDue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Confirmed => "confirmed",
            Kind::MaterialsIn => "materials_in",
            Kind::ProductionStart => "production_start",
            Kind::StageDone => "stage_done",
            Kind::InProcessInspection => "in_process_inspection",
            Kind::FinalInspection => "final_inspection",
            Kind::PackingDone => "packing_done",
            Kind::DocumentsReady => "documents_ready",
            Kind::ExFactory => "ex_factory",
            Kind::Delivered => "delivered",
            Kind::Accepted => "accepted",
            Kind::PaymentDue => "payment_due",
        }
    }
}

/// One milestone of one order: its kind and what it is about (a stage as
/// `<product>/<stage>`, a payment by its label; empty for the others).
/// Written `kind` or `kind:subject`, which is also its key in JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: Kind,
    pub subject: String,
}

impl Key {
    pub fn of(kind: Kind) -> Key {
        Key {
            kind,
            subject: String::new(),
        }
    }

    pub fn stage(product: &str, stage: &str) -> Key {
        Key {
            kind: Kind::StageDone,
            subject: format!("{product}/{stage}"),
        }
    }

    pub fn in_process(product: &str, stage: &str) -> Key {
        Key {
            kind: Kind::InProcessInspection,
            subject: format!("{product}/{stage}"),
        }
    }

    pub fn payment(label: &str) -> Key {
        Key {
            kind: Kind::PaymentDue,
            subject: label.to_owned(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            f.write_str(self.kind.name())
        } else {
            write!(f, "{}:{}", self.kind.name(), self.subject)
        }
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(text: &str) -> Result<Key, String> {
        let (kind, subject) = text.split_once(':').unwrap_or((text, ""));
        let kind = Kind::ALL
            .into_iter()
            .find(|candidate| candidate.name() == kind)
            .ok_or_else(|| format!("unknown milestone kind {kind:?}"))?;
        Ok(Key {
            kind,
            subject: subject.to_owned(),
        })
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

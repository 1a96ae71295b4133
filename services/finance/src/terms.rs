//! Payment terms as data: [`parse`] turns the order's free-text
//! `payment_terms` into [`Term`]s (share, trigger, due days), and
//! [`installments`] prices them against the order total with
//! largest-remainder rounding ([`split`]), so the parts always add up to the
//! total to the minor unit.
//!
//! Terms are a comma (or `;`, `+`, ` and `) separated list of parts, each a
//! percentage and what the payment is against:
//!
//! | text | schedule |
//! | --- | --- |
//! | `30% T/T deposit, 70% against B/L copy` | 30% on confirmation (due in 7 days), 70% at shipment |
//! | `30% deposit, balance on delivery` | the last part may say `balance` for "the rest" |
//! | `NET30`, `NET 30`, `net 60 days` | 100% invoiced at shipment, due N days later |
//! | `100% T/T in advance` | 100% on confirmation |
//! | `CAD` (cash against documents) | 100% at shipment |
//! | `30% deposit, 70% before shipment` | the balance is due when the goods ship |
//!
//! Anything else (a letter of credit, a part naming no trigger, shares not
//! adding up to 100%) is a [`TermsError`] naming the text: a person has to
//! read such terms, finance must not guess.
//!
//! The words finance sends other services (an installment's trigger, an
//! invoice's kind, a balance's milestone) also travel as protobuf enums;
//! their one mapping from and to these types is here too
//! (`From<Trigger> for v1::PaymentTrigger`, [`invoice_kind`],
//! `From<Milestone> for v1::BillingMilestone`, [`Milestone::from_billing`]).
//! The string fields keep being sent as well, for older readers.

use gendan_proto::v1;

/// Basis points in 100%: shares are kept in hundredths of a percent so
/// `12.5%` is exact.
pub const FULL_BP: u32 = 10_000;

/// Days a deposit invoice is due after it is issued, unless the terms say.
pub const DEFAULT_DEPOSIT_DUE_DAYS: u32 = 7;

/// Longest net term we accept; anything longer is a typo or a loan.
const MAX_DUE_DAYS: u32 = 365;

/// What a payment is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A deposit (advance, prepayment) invoiced when the order is confirmed.
    OnConfirmation,
    /// Against a copy of the bill of lading: due when the goods ship.
    AgainstBlCopy,
    /// Cash against documents: due when the goods ship.
    AgainstDocuments,
    /// Paid before the goods leave the factory.
    BeforeShipment,
    /// Invoiced at shipment, due `due_days` after the invoice.
    NetDays,
    /// Due when the customer receives the goods.
    OnDelivery,
}

impl Trigger {
    pub const ALL: [Trigger; 6] = [
        Trigger::OnConfirmation,
        Trigger::AgainstBlCopy,
        Trigger::AgainstDocuments,
        Trigger::BeforeShipment,
        Trigger::NetDays,
        Trigger::OnDelivery,
    ];

    /// The wire and database name (`Installment.trigger`).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::OnConfirmation => "on_confirmation",
            Trigger::AgainstBlCopy => "against_bl_copy",
            Trigger::AgainstDocuments => "against_documents",
            Trigger::BeforeShipment => "before_shipment",
            Trigger::NetDays => "net_days",
            Trigger::OnDelivery => "on_delivery",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The milestone at which an installment with this trigger is invoiced.
    pub fn milestone(self) -> Milestone {
        match self {
            Trigger::OnConfirmation => Milestone::Confirmation,
            Trigger::AgainstBlCopy
            | Trigger::AgainstDocuments
            | Trigger::BeforeShipment
            | Trigger::NetDays => Milestone::Shipment,
            Trigger::OnDelivery => Milestone::Delivery,
        }
    }

    /// `"deposit"` for money asked before any work, else `"balance"`.
    pub fn kind(self) -> &'static str {
        match self {
            Trigger::OnConfirmation => KIND_DEPOSIT,
            _ => KIND_BALANCE,
        }
    }
}

/// As the shared vocabulary (`Installment.payment_trigger`).
impl From<Trigger> for v1::PaymentTrigger {
    fn from(trigger: Trigger) -> Self {
        match trigger {
            Trigger::OnConfirmation => v1::PaymentTrigger::OnConfirmation,
            Trigger::AgainstBlCopy => v1::PaymentTrigger::AgainstBlCopy,
            Trigger::AgainstDocuments => v1::PaymentTrigger::AgainstDocuments,
            Trigger::BeforeShipment => v1::PaymentTrigger::BeforeShipment,
            Trigger::NetDays => v1::PaymentTrigger::NetDays,
            Trigger::OnDelivery => v1::PaymentTrigger::OnDelivery,
        }
    }
}

pub const KIND_DEPOSIT: &str = "deposit";
pub const KIND_BALANCE: &str = "balance";

/// A stored kind ([`KIND_DEPOSIT`], [`KIND_BALANCE`]) as the shared
/// vocabulary (`Installment.invoice_kind`, `InvoiceIssued.invoice_kind`);
/// unspecified for anything else.
pub fn invoice_kind(kind: &str) -> v1::InvoiceKind {
    match kind {
        KIND_DEPOSIT => v1::InvoiceKind::Deposit,
        KIND_BALANCE => v1::InvoiceKind::Balance,
        _ => v1::InvoiceKind::Unspecified,
    }
}

/// When invoices are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Confirmation,
    Shipment,
    Delivery,
}

impl Milestone {
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Confirmation => "confirmation",
            Milestone::Shipment => "shipment",
            Milestone::Delivery => "delivery",
        }
    }

    /// The milestones an `InvoiceBalance` command may name.
    pub fn from_balance_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "shipment" => Some(Milestone::Shipment),
            "delivery" => Some(Milestone::Delivery),
            _ => None,
        }
    }

    /// The milestone of `InvoiceBalance.billing_milestone`; `None` when it
    /// is unspecified.
    pub fn from_billing(milestone: v1::BillingMilestone) -> Option<Self> {
        match milestone {
            v1::BillingMilestone::Unspecified => None,
            v1::BillingMilestone::Shipment => Some(Milestone::Shipment),
            v1::BillingMilestone::Delivery => Some(Milestone::Delivery),
        }
    }
}

/// As the shared vocabulary (`NoInvoiceDue.billing_milestone`).
impl From<Milestone> for v1::BillingMilestone {
    fn from(milestone: Milestone) -> Self {
        match milestone {
            // Deposits are invoiced when the receivable opens, never by
            // `InvoiceBalance`, so confirmation is no billing milestone.
            Milestone::Confirmation => v1::BillingMilestone::Unspecified,
            Milestone::Shipment => v1::BillingMilestone::Shipment,
            Milestone::Delivery => v1::BillingMilestone::Delivery,
        }
    }
}

/// One part of the terms: a share of the total, when it is invoiced and how
/// long the customer has to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub share_bp: u32,
    pub trigger: Trigger,
    pub due_days: u32,
}

/// A term priced against an order total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installment {
    pub seq: u32,
    pub kind: &'static str,
    pub trigger: Trigger,
    pub share_bp: u32,
    pub amount_minor: i64,
    pub due_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment terms {text:?} are not understood: {problem}")]
pub struct TermsError {
    pub text: String,
    pub problem: String,
}

fn error(text: &str, problem: impl Into<String>) -> TermsError {
    TermsError {
        text: text.to_owned(),
        problem: problem.into(),
    }
}

/// Parses payment terms into their parts, in the order written.
pub fn parse(text: &str) -> Result<Vec<Term>, TermsError> {
    let normalized = text.trim().to_lowercase();
    if normalized.is_empty() {
        return Err(error(text, "no terms given"));
    }
    let parts: Vec<&str> = normalized
        .split([',', ';', '+', '\n'])
        .flat_map(|part| part.split(" and "))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(error(text, "no terms given"));
    }

    let mut terms = Vec::with_capacity(parts.len());
    let mut balance_part = None;
    for (index, part) in parts.iter().enumerate() {
        let (share, phrase) = take_share(part).map_err(|problem| error(text, problem))?;
        let (trigger, due_days) = classify(&phrase).map_err(|problem| error(text, problem))?;
        let share_bp = match share {
            Some(bp) => bp,
            None if parts.len() == 1 => FULL_BP,
            // "30% deposit, balance against B/L": the last part takes the rest.
            None if index == parts.len() - 1 && has_word(&phrase, "balance") => {
                balance_part = Some(index);
                0
            }
            None => {
                return Err(error(text, format!("part {part:?} has no percentage")));
            }
        };
        terms.push(Term {
            share_bp,
            trigger,
            due_days,
        });
    }

    let stated: u32 = terms.iter().map(|t| t.share_bp).sum();
    if let Some(index) = balance_part {
        if stated >= FULL_BP {
            return Err(error(
                text,
                format!(
                    "the stated shares already make {}, nothing is left for the balance",
                    percent(stated)
                ),
            ));
        }
        terms[index].share_bp = FULL_BP - stated;
    } else if stated != FULL_BP {
        return Err(error(
            text,
            format!("the shares add up to {}, not 100%", percent(stated)),
        ));
    }
    if let Some(zero) = terms.iter().find(|t| t.share_bp == 0) {
        return Err(error(
            text,
            format!("a {} part of 0% makes no sense", zero.trigger.as_str()),
        ));
    }
    Ok(terms)
}

fn percent(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        format!("{}%", bp / 100)
    } else {
        format!("{}.{:02}%", bp / 100, bp % 100)
    }
}

/// Finds the part's percentage (`30%`, `12.5 %`) anywhere in it; returns it
/// in basis points and the part without it.
fn take_share(part: &str) -> Result<(Option<u32>, String), String> {
    let Some(percent_at) = part.find('%') else {
        return Ok((None, part.to_owned()));
    };
    let before = part[..percent_at].trim_end();
    let number_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
        .last()
        .map(|(i, _)| i)
        .ok_or_else(|| format!("part {part:?} has a % without a number"))?;
    let number = &before[number_start..];
    let share = parse_bp(number).ok_or_else(|| format!("{number:?}% is not a percentage"))?;
    if share == 0 || share > FULL_BP {
        return Err(format!("{number}% is not between 0% and 100%"));
    }
    if part[percent_at + 1..].contains('%') {
        return Err(format!("part {part:?} has more than one percentage"));
    }
    let rest = format!("{} {}", &before[..number_start], &part[percent_at + 1..]);
    Ok((Some(share), rest))
}

/// `"30"` → 3000, `"12.5"` → 1250, `"12.55"` → 1255; more decimals: `None`.
fn parse_bp(number: &str) -> Option<u32> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || whole.len() > 3 || fraction.len() > 2 {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let fraction: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(fraction)
}

/// The phrase as space-separated words with a space at each end, so a
/// marker matches whole words only (`" bl "` is not in `" blue "`).
fn words(phrase: &str) -> String {
    let cleaned: String = phrase
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '/' {
                c
            } else {
                ' '
            }
        })
        .collect();
    format!(
        " {} ",
        cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn has_word(phrase: &str, word: &str) -> bool {
    words(phrase).contains(&format!(" {word} "))
}

const DEPOSIT_MARKERS: &[&str] = &[
    "deposit",
    "advance",
    "advanced",
    "prepayment",
    "prepaid",
    "down payment",
    "downpayment",
    "upfront",
    "up front",
    "with order",
    "on confirmation",
    "upon confirmation",
    "before production",
    "cia",
    "cwo",
];
const BL_MARKERS: &[&str] = &["b/l", "bl", "bill of lading", "bills of lading"];
const DOCUMENT_MARKERS: &[&str] = &[
    "cad",
    "cash against documents",
    "against documents",
    "d/p",
    "documents against payment",
];
const SHIPMENT_MARKERS: &[&str] = &[
    "before shipment",
    "prior to shipment",
    "before loading",
    "before delivery from factory",
];
const DELIVERY_MARKERS: &[&str] = &["delivery", "arrival", "receipt of goods", "goods received"];

/// What one part is against, and its due days.
fn classify(phrase: &str) -> Result<(Trigger, u32), String> {
    let text = words(phrase);
    let has = |markers: &[&str]| markers.iter().any(|m| text.contains(&format!(" {m} ")));
    if has(&["l/c", "lc", "letter of credit"]) {
        return Err(format!(
            "{:?} is a letter of credit, which finance does not schedule",
            phrase.trim()
        ));
    }
    let mut found = Vec::new();
    if has(DEPOSIT_MARKERS) {
        found.push(Trigger::OnConfirmation);
    }
    if has(BL_MARKERS) {
        found.push(Trigger::AgainstBlCopy);
    }
    if has(DOCUMENT_MARKERS) && !found.contains(&Trigger::AgainstBlCopy) {
        // "against documents incl. B/L copy" is still against the B/L.
        found.push(Trigger::AgainstDocuments);
    }
    if has(SHIPMENT_MARKERS) {
        found.push(Trigger::BeforeShipment);
    } else if has(DELIVERY_MARKERS) {
        found.push(Trigger::OnDelivery);
    }
    let net_days = net_days(&text)?;
    let days = days_after(&text);

    let trigger = match (found.as_slice(), net_days) {
        ([], Some(_)) => Trigger::NetDays,
        ([one], _) => *one,
        ([], None) => {
            return Err(format!(
                "{:?} names no trigger (deposit, B/L copy, documents, shipment, delivery, net days)",
                phrase.trim()
            ));
        }
        (many, _) => {
            let names: Vec<&str> = many.iter().map(|t| t.as_str()).collect();
            return Err(format!(
                "{:?} is ambiguous: it names {}",
                phrase.trim(),
                names.join(" and ")
            ));
        }
    };
    let due_days = match net_days.or(days) {
        Some(days) => days,
        None if trigger == Trigger::OnConfirmation => DEFAULT_DEPOSIT_DUE_DAYS,
        // Net terms always carry their number, so only "due at the event"
        // parts get here.
        None => 0,
    };
    if due_days > MAX_DUE_DAYS {
        return Err(format!(
            "{due_days} days is longer than the {MAX_DUE_DAYS} days finance accepts"
        ));
    }
    Ok((trigger, due_days))
}

/// `net 30`, `net30`, `net 60 days`.
fn net_days(text: &str) -> Result<Option<u32>, String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    for (i, token) in tokens.iter().enumerate() {
        let Some(rest) = token.strip_prefix("net") else {
            continue;
        };
        let number = if rest.is_empty() {
            tokens.get(i + 1).copied().unwrap_or("")
        } else {
            rest
        };
        return number
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("\"net\" must be followed by a number of days, got {number:?}"));
    }
    Ok(None)
}

/// `within 10 days`, `30 days after B/L`: the number before `day(s)`.
fn days_after(text: &str) -> Option<u32> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    for (i, token) in tokens.iter().enumerate() {
        if (*token == "days" || *token == "day")
            && i > 0
            && let Ok(days) = tokens[i - 1].parse::<u32>()
        {
            return Some(days);
        }
    }
    None
}

/// Splits `total_minor` into parts proportional to `shares_bp` (which sum to
/// [`FULL_BP`]) by the largest-remainder method: every part is its exact
/// share rounded down, and the minor units left over go one each to the
/// parts with the largest remainders (the earlier part on a tie). The parts
/// always sum to the total and each is within one minor unit of its exact
/// share. `None` for a negative total or shares not summing to 100%.
pub fn split(total_minor: i64, shares_bp: &[u32]) -> Option<Vec<i64>> {
    if total_minor < 0 || shares_bp.iter().map(|s| u64::from(*s)).sum::<u64>() != u64::from(FULL_BP)
    {
        return None;
    }
    let total = i128::from(total_minor);
    let full = i128::from(FULL_BP);
    let mut parts: Vec<i128> = Vec::with_capacity(shares_bp.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(shares_bp.len());
    for (index, share) in shares_bp.iter().enumerate() {
        let exact = total * i128::from(*share);
        parts.push(exact / full);
        remainders.push((exact % full, index));
    }
    let left = total - parts.iter().sum::<i128>();
    debug_assert!(left >= 0 && left < shares_bp.len().max(1) as i128);
    // Largest remainder first; the stable sort keeps earlier parts first on a tie.
    remainders.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (_, index) in remainders.into_iter().take(usize::try_from(left).ok()?) {
        parts[index] += 1;
    }
    parts.into_iter().map(|p| i64::try_from(p).ok()).collect()
}

/// Prices `terms` against the order total.
pub fn installments(terms: &[Term], total_minor: i64) -> Option<Vec<Installment>> {
    let shares: Vec<u32> = terms.iter().map(|t| t.share_bp).collect();
    let amounts = split(total_minor, &shares)?;
    Some(
        terms
            .iter()
            .zip(amounts)
            .enumerate()
            .map(|(seq, (term, amount_minor))| Installment {
                seq: seq as u32,
                kind: term.trigger.kind(),
                trigger: term.trigger,
                share_bp: term.share_bp,
                amount_minor,
                due_days: term.due_days,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn term(share_bp: u32, trigger: Trigger, due_days: u32) -> Term {
        Term {
            share_bp,
            trigger,
            due_days,
        }
    }

    #[test]
    fn deposit_and_balance_against_bl_copy() {
        assert_eq!(
            parse("30% T/T deposit, 70% against B/L copy").unwrap(),
            vec![
                term(3000, Trigger::OnConfirmation, 7),
                term(7000, Trigger::AgainstBlCopy, 0)
            ]
        );
        assert_eq!(
            parse("40% deposit within 10 days; 60% balance 5 days after B/L copy").unwrap(),
            vec![
                term(4000, Trigger::OnConfirmation, 10),
                term(6000, Trigger::AgainstBlCopy, 5)
            ]
        );
    }

    #[test]
    fn net_terms() {
        for text in ["NET30", "NET 30", "net 30 days", "Net30"] {
            assert_eq!(
                parse(text).unwrap(),
                vec![term(FULL_BP, Trigger::NetDays, 30)],
                "{text}"
            );
        }
        assert_eq!(
            parse("net 60 days").unwrap(),
            vec![term(FULL_BP, Trigger::NetDays, 60)]
        );
    }

    #[test]
    fn advance_delivery_and_documents() {
        assert_eq!(
            parse("100% T/T in advance").unwrap(),
            vec![term(FULL_BP, Trigger::OnConfirmation, 7)]
        );
        assert_eq!(
            parse("30% deposit, 70% on delivery").unwrap(),
            vec![
                term(3000, Trigger::OnConfirmation, 7),
                term(7000, Trigger::OnDelivery, 0)
            ]
        );
        assert_eq!(
            parse("CAD").unwrap(),
            vec![term(FULL_BP, Trigger::AgainstDocuments, 0)]
        );
        assert_eq!(
            parse("cash against documents").unwrap(),
            vec![term(FULL_BP, Trigger::AgainstDocuments, 0)]
        );
        assert_eq!(
            parse("30% deposit, balance before shipment").unwrap(),
            vec![
                term(3000, Trigger::OnConfirmation, 7),
                term(7000, Trigger::BeforeShipment, 0)
            ]
        );
        assert_eq!(
            parse("12.5% deposit + 87.5% against B/L").unwrap(),
            vec![
                term(1250, Trigger::OnConfirmation, 7),
                term(8750, Trigger::AgainstBlCopy, 0)
            ]
        );
    }

    #[test]
    fn bad_terms_are_errors_naming_the_text() {
        for (text, problem) in [
            ("", "no terms"),
            ("30% deposit, 60% against B/L copy", "add up to 90%"),
            ("irrevocable L/C at sight", "letter of credit"),
            ("pay when you like", "names no trigger"),
            ("30% deposit, against B/L copy", "has no percentage"),
            ("NET", "number of days"),
            ("30% deposit on delivery", "ambiguous"),
            ("0% deposit, 100% CAD", "between 0% and 100%"),
            ("120% deposit", "between 0% and 100%"),
            ("net 900", "longer than"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.text, text);
            assert!(err.to_string().contains(problem), "{text}: {err}");
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn triggers_map_to_milestones_and_kinds() {
        assert_eq!(Trigger::OnConfirmation.kind(), "deposit");
        assert_eq!(Trigger::NetDays.kind(), "balance");
        assert_eq!(Trigger::NetDays.milestone(), Milestone::Shipment);
        assert_eq!(Trigger::AgainstDocuments.milestone(), Milestone::Shipment);
        assert_eq!(Trigger::OnDelivery.milestone(), Milestone::Delivery);
        for trigger in Trigger::ALL {
            assert_eq!(Trigger::from_name(trigger.as_str()), Some(trigger));
        }
        assert_eq!(
            Milestone::from_balance_name(" Shipment"),
            Some(Milestone::Shipment)
        );
        assert_eq!(Milestone::from_balance_name("confirmation"), None);
    }

    #[test]
    fn triggers_map_to_the_payment_trigger_of_the_same_name() {
        let mut sent = std::collections::HashSet::new();
        for trigger in Trigger::ALL {
            let payment_trigger = v1::PaymentTrigger::from(trigger);
            // Tied to the proto by name: a value added there for a trigger
            // still mapped to unspecified fails here until it is mapped.
            let same_name = v1::PaymentTrigger::from_str_name(&format!(
                "PAYMENT_TRIGGER_{}",
                trigger.as_str().to_ascii_uppercase()
            ));
            assert_eq!(
                payment_trigger,
                same_name.unwrap_or(v1::PaymentTrigger::Unspecified),
                "{trigger:?}"
            );
            if payment_trigger != v1::PaymentTrigger::Unspecified {
                assert!(sent.insert(payment_trigger), "{trigger:?} is not distinct");
            }
        }
        // Every trigger has its value in the proto.
        let unmapped: Vec<Trigger> = Trigger::ALL
            .into_iter()
            .filter(|t| v1::PaymentTrigger::from(*t) == v1::PaymentTrigger::Unspecified)
            .collect();
        assert!(unmapped.is_empty(), "{unmapped:?}");
        assert_eq!(
            v1::PaymentTrigger::from(Trigger::OnDelivery),
            v1::PaymentTrigger::OnDelivery
        );
    }

    #[test]
    fn kinds_and_milestones_map_to_the_shared_vocabulary() {
        assert_eq!(invoice_kind(KIND_DEPOSIT), v1::InvoiceKind::Deposit);
        assert_eq!(invoice_kind(KIND_BALANCE), v1::InvoiceKind::Balance);
        assert_eq!(invoice_kind("refund"), v1::InvoiceKind::Unspecified);
        for trigger in Trigger::ALL {
            let expected = if trigger == Trigger::OnConfirmation {
                v1::InvoiceKind::Deposit
            } else {
                v1::InvoiceKind::Balance
            };
            assert_eq!(invoice_kind(trigger.kind()), expected, "{trigger:?}");
        }

        for milestone in [Milestone::Shipment, Milestone::Delivery] {
            let billing = v1::BillingMilestone::from(milestone);
            assert_ne!(billing, v1::BillingMilestone::Unspecified);
            assert_eq!(Milestone::from_billing(billing), Some(milestone));
            assert_eq!(
                Milestone::from_balance_name(milestone.as_str()),
                Some(milestone)
            );
        }
        assert_eq!(
            v1::BillingMilestone::from(Milestone::Confirmation),
            v1::BillingMilestone::Unspecified
        );
        assert_eq!(
            Milestone::from_billing(v1::BillingMilestone::Unspecified),
            None
        );
    }

    #[test]
    fn split_uses_largest_remainders() {
        assert_eq!(
            split(1_000_001, &[3000, 7000]),
            Some(vec![300_000, 700_001])
        );
        assert_eq!(split(100, &[3333, 3333, 3334]), Some(vec![33, 33, 34]));
        assert_eq!(split(2, &[3333, 3333, 3334]), Some(vec![1, 0, 1]));
        assert_eq!(split(1, &[5000, 5000]), Some(vec![1, 0]));
        assert_eq!(split(i64::MAX, &[FULL_BP]), Some(vec![i64::MAX]));
        assert_eq!(split(-1, &[FULL_BP]), None);
        assert_eq!(split(10, &[5000]), None);
        let priced = installments(
            &parse("30% deposit, 70% against B/L copy").unwrap(),
            750_000,
        )
        .unwrap();
        assert_eq!(priced[0].amount_minor, 225_000);
        assert_eq!(priced[1].amount_minor, 525_000);
        assert_eq!(priced[1].kind, "balance");
    }

    /// Random shares in basis points summing to 100%.
    fn shares() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(1u32..=FULL_BP, 1..8).prop_map(|weights| {
            let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
            let mut shares: Vec<u32> = weights
                .iter()
                .map(|w| (u64::from(*w) * u64::from(FULL_BP) / sum) as u32)
                .collect();
            let assigned: u32 = shares.iter().sum();
            shares[0] += FULL_BP - assigned;
            shares
        })
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_total_within_one_unit_each(
            total in 0i64..=i64::MAX,
            shares in shares(),
        ) {
            let parts = split(total, &shares).unwrap();
            prop_assert_eq!(parts.len(), shares.len());
            prop_assert_eq!(parts.iter().map(|p| i128::from(*p)).sum::<i128>(), i128::from(total));
            for (part, share) in parts.iter().zip(&shares) {
                prop_assert!(*part >= 0);
                // |part - total * share / 100%| < 1 minor unit
                let exact = i128::from(total) * i128::from(*share);
                let scaled = i128::from(*part) * i128::from(FULL_BP);
                prop_assert!((scaled - exact).abs() < i128::from(FULL_BP));
            }
        }

        #[test]
        fn small_totals_too(total in 0i64..1_000, shares in shares()) {
            let parts = split(total, &shares).unwrap();
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            prop_assert!(parts.iter().all(|p| *p >= 0));
        }

        #[test]
        fn written_percentages_round_trip(a in 1u32..100) {
            let text = format!("{a}% T/T deposit, {}% against B/L copy", 100 - a);
            let terms = parse(&text).unwrap();
            prop_assert_eq!(terms[0].share_bp, a * 100);
            prop_assert_eq!(terms[1].share_bp, (100 - a) * 100);
        }

        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = parse(&text);
        }
    }
}
